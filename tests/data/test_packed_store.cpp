// The packed data store against its sources: every array read back bit for bit, random frames,
// views that are not copies, sharding that covers each frame once, the prefetching data set equal
// to the plain one, and damaged files refused with errors naming the file.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/atomic_file.hpp"
#include "core/checksum.hpp"
#include "data/extxyz.hpp"
#include "data/load_systems.hpp"
#include "data/packed_store.hpp"
#include "data/prefetcher.hpp"
#include "data/shard.hpp"
#include "test_util.hpp"

namespace atomforge::data {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::TempDir;

std::string bundled(const std::string& relative) { return std::string(ATOMFORGE_SOURCE_DIR) + "/examples/data/" + relative; }

// Bit-level equality: EXPECT_EQ on doubles would accept -0.0 for 0.0.
void expect_same_bits(const std::vector<double>& a, const std::vector<double>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)), 0) << what;
}

void expect_same_system(const System& stored, const System& source) {
  const System copy = resident(stored);
  EXPECT_EQ(copy.type_map, source.type_map) << source.path;
  EXPECT_EQ(copy.types, source.types) << source.path;
  EXPECT_EQ(copy.pbc, source.pbc) << source.path;
  EXPECT_EQ(copy.nframes, source.nframes) << source.path;
  for (const FrameArray& a : frame_arrays(source)) {
    EXPECT_EQ((stored.stored.*a.stored) != nullptr, a.present) << source.path << " " << a.name;
    expect_same_bits(copy.*a.values, source.*a.values, source.path + " " + a.name);
  }
}

// A small system with every array, velocities included, and negative zeros to catch conversions.
System every_array_system() {
  System s;
  s.path = "synthetic";
  s.type_map = {"Cu", "O"};
  s.types = {0, 1, 0};
  s.pbc = true;
  s.nframes = 5;
  for (int64_t f = 0; f < s.nframes; ++f) {
    for (int k = 0; k < 9; ++k) {
      s.coord.push_back(0.1 * f + 0.37 * k);
      s.force.push_back(k == 4 ? -0.0 : 1e-3 * (k - f));
      s.velocity.push_back(0.01 * (k + f));
      s.box.push_back(k % 4 == 0 ? 5.0 + f : 0.0);
      s.virial.push_back(0.5 * k - f);
    }
    s.energy.push_back(-10.0 - f);
  }
  return s;
}

std::vector<System> bundled_sources() {
  std::vector<System> systems = load_systems(bundled(""));
  systems.push_back(every_array_system());
  for (System& s : read_extxyz(std::string(ATOMFORGE_SOURCE_DIR) + "/tests/data/fixtures/ase_frames.xyz"))
    systems.push_back(std::move(s));
  return systems;
}

std::string pack(const std::vector<System>& systems, const std::string& path) {
  PackedStoreWriter writer(path);
  for (const System& s : systems) writer.add(s, s.path);
  writer.finish();
  return path;
}

TEST(PackedStore, EveryBundledArrayReadsBackBitForBit) {
  TempDir dir;
  const std::vector<System> sources = bundled_sources();
  ASSERT_GT(sources.size(), 10u);
  const PackedStore store = open_packed_store(pack(sources, dir / "all.afd"));
  ASSERT_EQ(store.systems.size(), sources.size());
  int64_t frames = 0;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const System& s = store.systems[i];
    EXPECT_TRUE(s.is_stored());
    EXPECT_TRUE(s.coord.empty() && s.force.empty());  // nothing copied on open
    EXPECT_EQ(s.path, dir / "all.afd" + "[" + sources[i].path + "]");
    expect_same_system(s, sources[i]);
    frames += sources[i].nframes;
  }
  EXPECT_EQ(store.total_frames(), frames);
  EXPECT_EQ(store.file_size, fs::file_size(dir / "all.afd"));
}

TEST(PackedStore, RandomFramesEqualTheSourceFrames) {
  TempDir dir;
  const std::vector<System> sources = load_systems(bundled("water"));
  const std::vector<System> stored = load_systems(pack(sources, dir / "water.afd"));
  ASSERT_EQ(stored.size(), sources.size());
  uint64_t x = 12345;
  for (int trial = 0; trial < 200; ++trial) {
    x = splitmix64(x);
    const std::size_t s = x % sources.size();
    const int64_t f = static_cast<int64_t>(splitmix64(x + 1) % static_cast<uint64_t>(sources[s].nframes));
    const System want = take_frames(sources[s], {f, 0, f});
    const System got = take_frames(stored[s], {f, 0, f});
    for (const FrameArray& a : frame_arrays(want)) expect_same_bits(got.*a.values, want.*a.values, a.name);
    // The accessors point straight into the mapping.
    EXPECT_EQ(std::memcmp(stored[s].frame_force(f), sources[s].frame_force(f), 3 * sizeof(double) * sources[s].natoms()), 0);
    EXPECT_EQ(*stored[s].frame_energy(f), *sources[s].frame_energy(f));
  }
}

TEST(PackedStore, StoresRepackAndConvertLikeTheirSources) {
  TempDir dir;
  const System source = every_array_system();
  const std::vector<System> first = open_packed_store(pack({source}, dir / "a.afd")).systems;
  const std::vector<System> again = open_packed_store(pack(first, dir / "b.afd")).systems;
  expect_same_system(again.front(), source);
  write_extxyz(dir / "stored.extxyz", first.front());
  write_extxyz(dir / "source.extxyz", source);
  EXPECT_EQ(read_file(dir / "stored.extxyz"), read_file(dir / "source.extxyz"));
  write_deepmd_system(dir / "npy", first.front());
  const System npy = read_deepmd_system(dir / "npy");
  expect_same_bits(npy.coord, source.coord, "coord");
  expect_same_bits(npy.virial, source.virial, "virial");
}

TEST(PackedStore, UnfinishedWriterLeavesNothing) {
  TempDir dir;
  {
    PackedStoreWriter writer(dir / "x.afd");
    writer.add(every_array_system(), "one");
  }
  EXPECT_TRUE(fs::is_empty(dir.str()));
  System bad = every_array_system();
  bad.force.pop_back();
  expect_error([&] { pack({bad}, dir / "y.afd"); }, {"cannot pack system 'synthetic'", "force"});
  EXPECT_TRUE(fs::is_empty(dir.str()));
}

// Writes `bytes` over the file at `offset`.
void patch(const std::string& path, uint64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Inverts every bit of the byte at `offset`.
void flip(const std::string& path, uint64_t offset) {
  patch(path, offset, std::string(1, static_cast<char>(~read_file(path)[offset])));
}

template <typename T>
std::string raw(T value) {
  return std::string(reinterpret_cast<const char*>(&value), sizeof value);
}

template <typename T>
T read_at(const std::string& path, uint64_t offset) {
  T value{};
  std::memcpy(&value, read_file(path).data() + offset, sizeof value);
  return value;
}

class DamagedStore : public ::testing::Test {
 protected:
  TempDir dir;
  std::string path = pack({every_array_system()}, dir / "s.afd");
  void expect_refused(const std::vector<std::string>& parts) {
    std::vector<std::string> all = parts;
    all.push_back(path);
    expect_error([&] { open_packed_store(path); }, all);
  }
  // Replaces the header JSON and rewrites the preamble so that only the header's content is wrong.
  void rewrite_header(const std::function<void(nlohmann::json&)>& edit) {
    pack({every_array_system()}, path);  // each edit on a sound file
    const auto offset = read_at<uint64_t>(path, 16), size = read_at<uint64_t>(path, 24);
    nlohmann::json header = nlohmann::json::parse(read_file(path).substr(offset, size));
    edit(header);
    const std::string text = header.dump();
    fs::resize_file(path, offset);
    patch(path, offset, text);
    patch(path, 24, raw<uint64_t>(text.size()) + raw<uint64_t>(checksum64(text.data(), text.size())) +
                        raw<uint64_t>(offset + text.size()));
    const std::string preamble = read_file(path).substr(0, 48);
    patch(path, 48, raw<uint64_t>(checksum64(preamble.data(), preamble.size())));
  }
};

TEST_F(DamagedStore, SoundFileOpens) { EXPECT_EQ(open_packed_store(path).systems.size(), 1u); }

TEST_F(DamagedStore, Truncated) {
  fs::resize_file(path, fs::file_size(path) - 10);
  expect_refused({"truncated", "were written"});
  fs::resize_file(path, 20);
  expect_refused({"truncated", "64-byte preamble"});
}

TEST_F(DamagedStore, TrailingBytes) {
  std::ofstream(path, std::ios::app) << "extra";
  expect_refused({"5 bytes after the end"});
}

TEST_F(DamagedStore, BadMagic) {
  patch(path, 1, "XYZ");
  expect_refused({"not an atomforge packed data store"});
  write_file_atomic(path, "a text file that is long enough to hold a preamble of sixty-four bytes.\n");
  expect_refused({"not an atomforge packed data store"});
}

TEST_F(DamagedStore, OtherFormatVersion) {
  patch(path, 8, raw<uint32_t>(2));
  expect_refused({"format version 2", "reads version 1"});
}

TEST_F(DamagedStore, CorruptPreambleOrHeader) {
  const auto header_offset = read_at<uint64_t>(path, 16);
  patch(path, header_offset + 5, "#");
  expect_refused({"header's checksum"});
  patch(path, 40, raw<uint64_t>(1));  // the file size
  expect_refused({"preamble's checksum"});
}

TEST_F(DamagedStore, HeaderNotMatchingTheData) {
  rewrite_header([](nlohmann::json& h) { h["systems"][0]["arrays"]["force"][0] = 1u << 30; });
  expect_refused({"corrupt packed data store header", "array force", "inside the data"});
  rewrite_header([](nlohmann::json& h) { h["systems"][0]["arrays"]["force"][0] = 64 + 8; });
  expect_refused({"array force", "not 64-byte aligned"});
  rewrite_header([](nlohmann::json& h) { h["systems"][0]["nframes"] = 6; });
  expect_refused({"array coord", "not 6 frames"});
  rewrite_header([](nlohmann::json& h) { h["systems"][0]["types"] = {0, 5, 0}; });
  expect_refused({"atom 1 has type 5"});
  rewrite_header([](nlohmann::json& h) { h["systems"][0].erase("pbc"); });
  expect_refused({"corrupt packed data store header", "pbc"});
  rewrite_header([](nlohmann::json& h) { h["systems"][0]["arrays"].erase("box"); });
  expect_refused({"periodic but has no box"});
}

TEST_F(DamagedStore, DamagedFrameIsNamedWhenRead) {
  const std::vector<System> systems = load_systems(path);
  const System& s = systems.front();
  const auto offset = static_cast<uint64_t>(reinterpret_cast<const char*>(s.frame_force(3)) -
                                            reinterpret_cast<const char*>(s.frame_coord(0))) +
                      64;  // coord is the first array, at 64
  flip(path, offset + 2);
  const System reopened = load_systems(path).front();
  EXPECT_NO_THROW(take_frames(reopened, {0, 1, 2, 4}));
  expect_error([&] { take_frames(reopened, {1, 3}); }, {path, "frame 3 is damaged"});
  expect_error([&] { PackedStoreWriter w(dir / "copy.afd"); w.add(reopened, "x"); }, {"frame 3 is damaged"});
}

std::vector<System> mixed_systems(const std::string& dir) {
  // Resident and stored systems, frame counts 5, 3, 1, 7.
  System a = every_array_system(), b = take_frames(a, {4, 2, 0}), c = take_frames(a, {1});
  System d = take_frames(a, {0, 1, 2, 3, 4, 0, 1});
  const PackedStore store = open_packed_store(pack({b, d}, dir + "/m.afd"));
  return {a, store.systems[0], c, store.systems[1]};
}

TEST(Shard, EveryFrameGoesToExactlyOneRankInOrder) {
  TempDir dir;
  const std::vector<System> systems = mixed_systems(dir.str());
  std::vector<System> all_frames;  // one single-frame system per frame, in global order
  for (const System& s : systems)
    for (int64_t f = 0; f < s.nframes; ++f) all_frames.push_back(take_frames(s, {f}));
  const int64_t total = static_cast<int64_t>(all_frames.size());
  for (int world = 1; world <= 20; ++world) {
    std::size_t next = 0;
    int64_t smallest = total, largest = 0;
    for (int rank = 0; rank < world; ++rank) {
      const FrameRange range = shard_range(total, rank, world);
      EXPECT_EQ(range.begin, static_cast<int64_t>(next));
      smallest = std::min(smallest, range.end - range.begin);
      largest = std::max(largest, range.end - range.begin);
      int64_t frames = 0;
      for (const System& part : shard_systems(systems, rank, world)) {
        ASSERT_GT(part.nframes, 0);
        for (int64_t f = 0; f < part.nframes; ++f, ++next, ++frames) {
          ASSERT_LT(next, all_frames.size());
          const System got = take_frames(part, {f});
          for (const FrameArray& a : frame_arrays(got)) expect_same_bits(got.*a.values, all_frames[next].*a.values, a.name);
        }
      }
      EXPECT_EQ(frames, range.end - range.begin) << rank << "/" << world;
    }
    EXPECT_EQ(next, all_frames.size()) << world;
    EXPECT_LE(largest - smallest, 1) << world;
  }
  EXPECT_TRUE(shard_systems(systems, 19, 20).empty());  // 16 frames, 20 ranks
  expect_error([&] { shard_range(10, 2, 2); }, {"rank 2 of 2"});
}

TEST(Shard, StoredSharesAreViewsNotCopies) {
  TempDir dir;
  const std::vector<System> systems = mixed_systems(dir.str());
  // Frames 0-4, 5-7, 8, 9-15 are systems 0-3; rank 1 of 2 has 8..15, rank 3 of 4 has 12..15.
  const std::vector<System> half = shard_systems(systems, 1, 2);
  ASSERT_EQ(half.size(), 2u);
  EXPECT_FALSE(half[0].is_stored());
  EXPECT_TRUE(half[1].is_stored());
  EXPECT_EQ(half[1].frame_coord(0), systems[3].frame_coord(0));
  const std::vector<System> quarter = shard_systems(systems, 3, 4);
  ASSERT_EQ(quarter.size(), 1u);
  EXPECT_EQ(quarter[0].nframes, 4);
  EXPECT_EQ(quarter[0].frame_force(0), systems[3].frame_force(3));
  EXPECT_EQ(quarter[0].frame_energy(3), systems[3].frame_energy(6));
}

DataSet data_set(const std::vector<System>& systems, uint64_t seed) {
  return DataSet(systems, {2, 3, 1, 4}, {0.4, 0.1, 0.2, 0.3}, seed);
}

void expect_same_batch(const LoadedBatch& got, const Batch& want, const std::vector<System>& systems) {
  ASSERT_EQ(got.batch.system, want.system);
  ASSERT_EQ(got.batch.frames, want.frames);
  const System expected = take_frames(systems[static_cast<std::size_t>(want.system)], want.frames);
  for (const FrameArray& a : frame_arrays(expected)) expect_same_bits(got.data.*a.values, expected.*a.values, a.name);
}

TEST(Prefetcher, SameBatchesAndStatesAsTheDataSet) {
  TempDir dir;
  const std::vector<System> systems = mixed_systems(dir.str());
  DataSet plain = data_set(systems, 7);
  Prefetcher prefetched(data_set(systems, 7));
  for (int k = 0; k < 60; ++k) {
    expect_same_batch(prefetched.next(), plain.next(), systems);
    EXPECT_EQ(prefetched.state(), plain.state()) << k;  // the batch drawn ahead does not show
  }
}

TEST(Prefetcher, RestoreContinuesTheStream) {
  TempDir dir;
  const std::vector<System> systems = mixed_systems(dir.str());
  Prefetcher first(data_set(systems, 11));
  for (int k = 0; k < 17; ++k) first.next();
  const nlohmann::json saved = first.state();
  std::vector<LoadedBatch> expected;
  for (int k = 0; k < 20; ++k) expected.push_back(first.next());
  // A fresh run restored from the state, and the same object rewound after it ran ahead.
  Prefetcher resumed(data_set(systems, 99));
  resumed.restore(saved);
  first.restore(saved);
  for (const LoadedBatch& want : expected) {
    expect_same_batch(resumed.next(), want.batch, systems);
    expect_same_batch(first.next(), want.batch, systems);
  }
}

TEST(Prefetcher, ErrorsReachTheCaller) {
  TempDir dir;
  const std::string path = pack({every_array_system()}, dir / "s.afd");
  const System s = load_systems(path).front();
  flip(path, 64);  // frame 0's coordinates
  Prefetcher prefetcher(DataSet({s}, {5}, {1.0}, 1));
  expect_error([&] { prefetcher.next(); }, {"frame 0 is damaged"});
  expect_error([&] { prefetcher.next(); }, {"frame 0 is damaged"});
}

}  // namespace
}  // namespace atomforge::data
