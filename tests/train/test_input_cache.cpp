// Model inputs kept across epochs: equal to inputs built afresh, bounded by their budget, and a
// training run that keeps them is bit for bit the run that builds every batch.
#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include "../cli_test_util.hpp"
#include "core/config_schema.hpp"
#include "core/tensor_file.hpp"
#include "data/dataset.hpp"
#include "data/prefetcher.hpp"
#include "data/system.hpp"
#include "model/registry.hpp"
#include "train/input_cache.hpp"

namespace atomforge::testing {
namespace {

model::EnergyModel water_model(const nlohmann::ordered_json& descriptor) {
  nlohmann::ordered_json section = {{"type_map", {"O", "H"}}, {"descriptor", descriptor}, {"fitting_net", {{"neuron", {8}}}}};
  return model::EnergyModel(model::EnergyModel::single_task_config(config::resolve(model::model_schema(), section)), 1);
}

void expect_same_input(const model::ModelInput& a, const model::ModelInput& b, const std::string& where) {
  EXPECT_EQ(a.nframes, b.nframes) << where;
  EXPECT_EQ(a.nloc, b.nloc) << where;
  EXPECT_EQ(a.nghost, b.nghost) << where;
  EXPECT_EQ(a.truncated_centres, b.truncated_centres) << where;
  const std::vector<std::pair<const char*, std::pair<at::Tensor, at::Tensor>>> tensors = {
      {"atype", {a.atype, b.atype}},           {"atom_frame", {a.atom_frame, b.atom_frame}},
      {"edge_center", {a.edge_center, b.edge_center}}, {"edge_neighbor", {a.edge_neighbor, b.edge_neighbor}},
      {"edge_frame", {a.edge_frame, b.edge_frame}},   {"edge_vec", {a.edge_vec, b.edge_vec}},
      {"slot_index", {a.slot_index, b.slot_index}},   {"triplet_kj", {a.triplet_kj, b.triplet_kj}},
      {"triplet_ji", {a.triplet_ji, b.triplet_ji}}};
  for (const auto& [name, pair] : tensors) {
    ASSERT_EQ(pair.first.defined(), pair.second.defined()) << where << " " << name;
    if (pair.first.defined()) {
      EXPECT_TRUE(at::equal(pair.first, pair.second)) << where << " " << name;
    }
  }
}

// Two epochs of batches of 3 frames out of 7: every input, fresh or kept, equals the one built
// for the whole batch at once, for sel-based slots and for triplets.
TEST(InputCache, EqualsTheBatchBuiltAtOnce) {
  const data::System water = data::take_frames(data::read_deepmd_system(bundled("water/data_0")), {0, 1, 2, 3, 4, 5, 6});
  const std::vector<nlohmann::ordered_json> descriptors = {
      {{"type", "se_e2_a"}, {"sel", {24, 48}}, {"rcut", 4.0}, {"neuron", {4}}, {"axis_neuron", 2}},
      small_dimenet(3.0)};
  for (const auto& descriptor : descriptors) {
    const model::EnergyModel model = water_model(descriptor);
    train::InputCache cache(int64_t{1} << 30);
    data::Prefetcher batches(data::DataSet({water}, {3}, {1.0}, 5));
    std::set<int64_t> drawn;
    for (int step = 0; step < 6; ++step) {  // 18 frames drawn: some twice
      const data::LoadedBatch batch = batches.next();
      drawn.insert(batch.batch.frames.begin(), batch.batch.frames.end());
      const std::string where = descriptor["type"].get<std::string>() + " step " + std::to_string(step);
      expect_same_input(cache.get(model, 0, batch), model.prepare(batch.data, batch.rows()), where);
    }
    EXPECT_EQ(cache.hits() + cache.misses(), 18);
    EXPECT_EQ(cache.misses(), static_cast<int64_t>(drawn.size())) << "every frame built once";
    EXPECT_GT(cache.hits(), 0);
  }
}

// The budget bounds what is kept: frames beyond it are built every time, and a zero budget
// keeps nothing.
TEST(InputCache, KeepsNoMoreThanItsBudget) {
  const data::System water = data::take_frames(data::read_deepmd_system(bundled("water/data_0")), {0, 1, 2, 3});
  const model::EnergyModel model =
      water_model({{"type", "se_e2_a"}, {"sel", {24, 48}}, {"rcut", 4.0}, {"neuron", {4}}, {"axis_neuron", 2}});
  train::InputCache probe(int64_t{1} << 30);
  data::LoadedBatch first;
  first.batch = {0, {0}};
  first.data = data::take_frames(water, {0});
  (void)probe.get(model, 0, first);
  const int64_t frame_bytes = probe.bytes();
  ASSERT_GT(frame_bytes, 0);

  for (const int64_t kept : {0, 2}) {
    train::InputCache cache(kept * frame_bytes + frame_bytes / 2);
    for (int epoch = 0; epoch < 3; ++epoch)
      for (int64_t f = 0; f < 4; ++f) {
        data::LoadedBatch batch;
        batch.batch = {0, {f}};
        batch.data = data::take_frames(water, {f});
        expect_same_input(cache.get(model, 0, batch), model.prepare(batch.data, batch.rows()), "frame " + std::to_string(f));
      }
    EXPECT_LE(cache.bytes(), kept * frame_bytes + frame_bytes / 2) << kept;
    EXPECT_EQ(cache.hits(), 2 * kept) << "the first " << kept << " frames are reused in epochs 2 and 3";
    EXPECT_EQ(cache.misses(), 12 - 2 * kept);
  }
}

// Frames are told apart by data set and system, not by their number alone.
TEST(InputCache, KeysFramesByDataSetAndSystem) {
  const data::System water = data::read_deepmd_system(bundled("water/data_0"));
  const data::System other = data::read_deepmd_system(bundled("water/data_3"));
  const model::EnergyModel model =
      water_model({{"type", "se_e2_a"}, {"sel", {24, 48}}, {"rcut", 4.0}, {"neuron", {4}}, {"axis_neuron", 2}});
  train::InputCache cache(int64_t{1} << 30);
  const auto batch = [](const data::System& s, int system) {
    data::LoadedBatch b;
    b.batch = {system, {0}};
    b.data = data::take_frames(s, {0});
    return b;
  };
  for (const auto& [set, system, data] : {std::tuple{0, 0, &water}, std::tuple{0, 1, &other}, std::tuple{1, 0, &other}})
    expect_same_input(cache.get(model, set, batch(*data, system)), model.prepare(*data, {0}),
                      "set " + std::to_string(set) + " system " + std::to_string(system));
  EXPECT_EQ(cache.misses(), 3);
}

// input_cache_mb changes nothing but speed: a run that keeps its inputs writes the learning
// curve and ends with the parameters and optimiser state of one that builds every batch.
TEST(InputCache, TrainingRunsBitForBitAsWithoutIt) {
  TempDir dir;
  const data::System water = data::read_deepmd_system(bundled("water/data_0"));
  data::write_deepmd_system(dir / "few", data::take_frames(water, {0, 1, 2, 3, 4}));
  auto input = small_water_input({dir / "few"}, {bundled("water/data_3")});
  input["training"]["training_data"]["batch_size"] = 2;
  input["training"]["numb_steps"] = 12;
  input["training"]["save_freq"] = 12;
  std::map<std::string, Result> runs;
  for (const double mb : {0.0, 64.0}) {
    input["training"]["input_cache_mb"] = mb;
    const std::string name = mb > 0 ? "kept" : "fresh";
    runs[name] = train(dir, input, name);
    ASSERT_EQ(runs[name].code, 0) << runs[name].output;
  }
  EXPECT_NE(runs["kept"].output.find("reused"), std::string::npos) << runs["kept"].output;
  EXPECT_NE(runs["fresh"].output.find(", 0 reused"), std::string::npos) << runs["fresh"].output;
  EXPECT_EQ(read_text(dir / "kept/lcurve.out"), read_text(dir / "fresh/lcurve.out"));
  const TensorFile kept = load_tensor_file(dir / "kept/model.ckpt-12.pt");
  const TensorFile fresh = load_tensor_file(dir / "fresh/model.ckpt-12.pt");
  ASSERT_EQ(kept.blobs.size(), fresh.blobs.size());
  for (const auto& [name, blob] : fresh.blobs) {
    ASSERT_TRUE(kept.blobs.count(name)) << name;
    EXPECT_EQ(kept.blobs.at(name).bytes, blob.bytes) << name;
  }
}

}  // namespace
}  // namespace atomforge::testing
