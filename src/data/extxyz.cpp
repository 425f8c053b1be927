#include "data/extxyz.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <utility>

#include "core/atomic_file.hpp"
#include "core/error.hpp"

namespace atomforge::data {

namespace {

using Matrix = std::array<double, 9>;  // row-major 3 x 3

// Where a problem is, for error messages: frames are counted from 0 (ASE's index), lines from 1.
struct Where {
  const std::string& path;
  int64_t frame;
  int64_t line;
  std::string str() const { return fmt::format("'{}' frame {} (line {})", path, frame, line); }
};

std::vector<std::string_view> split_lines(const std::string& text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::size_t stop = end;
    if (stop > start && text[stop - 1] == '\r') --stop;
    lines.emplace_back(text.data() + start, stop - start);
    start = end + 1;
  }
  return lines;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// ASE splits array values on whitespace and commas.
std::vector<std::string_view> split_fields(std::string_view s) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  const auto is_sep = [](char c) { return std::isspace(static_cast<unsigned char>(c)) || c == ','; };
  while (i < s.size()) {
    while (i < s.size() && is_sep(s[i])) ++i;
    const std::size_t start = i;
    while (i < s.size() && !is_sep(s[i])) ++i;
    if (i > start) fields.push_back(s.substr(start, i - start));
  }
  return fields;
}

// from_chars is locale-independent and round-trips the shortest representation exactly.
std::optional<double> to_double(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::vector<double> parse_numbers(std::string_view text, std::size_t expected_a, std::size_t expected_b,
                                  const char* key, const Where& where) {
  std::vector<double> values;
  for (const std::string_view field : split_fields(text)) {
    const std::optional<double> v = to_double(field);
    if (!v) fail("{}: {} value '{}' is not a finite number", where.str(), key, std::string(field));
    values.push_back(*v);
  }
  if (values.size() != expected_a && values.size() != expected_b) {
    if (expected_a == expected_b) {
      fail("{}: {} needs {} numbers, got {} ('{}')", where.str(), key, expected_a, values.size(), std::string(text));
    }
    fail("{}: {} needs {} or {} numbers, got {} ('{}')", where.str(), key, expected_a, expected_b, values.size(),
         std::string(text));
  }
  return values;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The comment line: key=value, key="quoted value", key={braced value} or a bare key (true).
std::vector<std::pair<std::string, std::string>> parse_comment(std::string_view line, const Where& where) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t i = 0;
  const auto at_space = [&] { return i < line.size() && std::isspace(static_cast<unsigned char>(line[i])); };
  while (true) {
    while (at_space()) ++i;
    if (i >= line.size()) break;
    const std::size_t key_start = i;
    while (i < line.size() && line[i] != '=' && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    std::string key(line.substr(key_start, i - key_start));
    while (at_space()) ++i;
    if (i >= line.size() || line[i] != '=') {
      pairs.emplace_back(std::move(key), "T");
      continue;
    }
    ++i;
    while (at_space()) ++i;
    std::string value;
    const char open = i < line.size() ? line[i] : '\0';
    const char close = open == '"' ? '"' : open == '\'' ? '\'' : open == '{' ? '}' : open == '[' ? ']' : '\0';
    if (close != '\0') {
      ++i;
      while (i < line.size() && line[i] != close) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        value.push_back(line[i++]);
      }
      if (i >= line.size()) fail("{}: unterminated {} in the value of '{}'", where.str(), open, key);
      ++i;
    } else {
      while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) value.push_back(line[i++]);
    }
    pairs.emplace_back(std::move(key), std::move(value));
  }
  return pairs;
}

bool parse_bool(std::string_view s, const Where& where) {
  const std::string v = lower(s);
  if (v == "t" || v == "true") return true;
  if (v == "f" || v == "false") return false;
  fail("{}: '{}' is not a logical value (T or F)", where.str(), std::string(s));
}

struct Columns {
  std::size_t total = 0;
  std::size_t species = 0, pos = 0;
  std::optional<std::size_t> forces;
  std::optional<std::size_t> velocities;
};

// Properties=name:type:ncols:... ; columns we do not use are skipped but counted.
Columns parse_properties(std::string_view spec, const Where& where) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t colon = spec.find(':', start);
    parts.push_back(spec.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() % 3 != 0) fail("{}: Properties '{}' is not a list of name:type:ncols", where.str(), std::string(spec));
  Columns columns;
  bool have_species = false, have_pos = false;
  for (std::size_t p = 0; p < parts.size(); p += 3) {
    const std::string name = lower(parts[p]);
    const std::string type(parts[p + 1]);
    std::size_t ncols = 0;
    const auto [end, ec] = std::from_chars(parts[p + 2].data(), parts[p + 2].data() + parts[p + 2].size(), ncols);
    if (ec != std::errc() || end != parts[p + 2].data() + parts[p + 2].size() || ncols == 0 ||
        (type != "R" && type != "I" && type != "S" && type != "L")) {
      fail("{}: Properties '{}': bad entry '{}:{}:{}'", where.str(), std::string(spec), std::string(parts[p]), type,
           std::string(parts[p + 2]));
    }
    const auto need = [&](const char* want_type, std::size_t want_cols) {
      if (type != want_type || ncols != want_cols) {
        fail("{}: Properties '{}': '{}' must be {}:{}", where.str(), std::string(spec), std::string(parts[p]),
             want_type, want_cols);
      }
    };
    if (name == "species") {
      need("S", 1);
      columns.species = columns.total;
      have_species = true;
    } else if (name == "pos") {
      need("R", 3);
      columns.pos = columns.total;
      have_pos = true;
    } else if (name == "forces" || name == "force") {
      need("R", 3);
      columns.forces = columns.total;
    } else if (name == "velocities" || name == "vel") {
      need("R", 3);
      columns.velocities = columns.total;
    }
    columns.total += ncols;
  }
  if (!have_species || !have_pos) {
    fail("{}: Properties '{}' must contain species:S:1 and pos:R:3", where.str(), std::string(spec));
  }
  return columns;
}

double det3(const Matrix& m) {
  return m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
}

// ASE reads and writes 9-value arrays in Fortran order: value k is matrix element (k % 3, k / 3).
Matrix from_fortran(const std::vector<double>& v) {
  Matrix m{};
  for (int k = 0; k < 9; ++k) m[(k % 3) * 3 + k / 3] = v[static_cast<std::size_t>(k)];
  return m;
}

Matrix stress_to_virial(const std::vector<double>& stress, const Matrix& box, const Where& where) {
  Matrix s{};
  if (stress.size() == 9) {
    s = from_fortran(stress);
  } else {  // Voigt: xx yy zz yz xz xy
    s = {stress[0], stress[5], stress[4], stress[5], stress[1], stress[3], stress[4], stress[3], stress[2]};
  }
  const double volume = std::abs(det3(box));
  if (!(volume > 0)) fail("{}: stress given but the Lattice has zero volume (or is missing)", where.str());
  Matrix w{};
  for (int k = 0; k < 9; ++k) w[k] = -s[k] * volume;
  return w;
}

struct Frame {
  int64_t index = 0;
  int64_t line = 0;
  std::vector<std::string> species;
  std::vector<double> coord;
  std::vector<double> force;
  std::vector<double> velocity;
  Matrix box{};
  bool pbc = false;
  std::optional<double> energy;
  std::optional<Matrix> virial;
};

struct Header {
  std::optional<Matrix> lattice;
  std::optional<bool> pbc;
  Columns columns;
  std::optional<double> energy;
  std::optional<std::vector<double>> virial, stress;
};

Header parse_header(std::string_view line, const Where& where) {
  Header header;
  std::string properties = "species:S:1:pos:R:3";  // ASE's default
  for (const auto& [key, value] : parse_comment(line, where)) {
    const std::string k = lower(key);
    if (k == "lattice") {
      const std::vector<double> v = parse_numbers(value, 9, 9, "Lattice", where);
      // Lattice lists the cell vectors a, b, c one after the other, i.e. the rows of our box.
      header.lattice = Matrix{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]};
    } else if (k == "properties") {
      properties = value;
    } else if (k == "pbc") {
      std::vector<bool> flags;
      for (const std::string_view f : split_fields(value)) flags.push_back(parse_bool(f, where));
      if (flags.size() == 1) flags.assign(3, flags[0]);
      if (flags.size() != 3) fail("{}: pbc needs 1 or 3 logical values, got '{}'", where.str(), value);
      if (flags[0] != flags[1] || flags[1] != flags[2]) {
        fail("{}: mixed periodicity pbc=\"{}\" is not supported (all three must be T or all F)", where.str(), value);
      }
      header.pbc = flags[0];
    } else if (k == "energy") {
      header.energy = parse_numbers(value, 1, 1, "energy", where)[0];
    } else if (k == "virial") {
      header.virial = parse_numbers(value, 9, 9, "virial", where);
    } else if (k == "stress") {
      header.stress = parse_numbers(value, 9, 6, "stress", where);
    }
  }
  header.columns = parse_properties(properties, where);
  return header;
}

// Fills the frame-level fields from the comment line, with ASE's defaults: pbc is T T T when a
// Lattice is given and F F F otherwise.
void apply_header(Frame& frame, const Header& header, const Where& where) {
  frame.pbc = header.pbc.value_or(header.lattice.has_value());
  if (frame.pbc && !header.lattice) fail("{}: pbc is T but there is no Lattice", where.str());
  if (header.lattice) frame.box = *header.lattice;
  frame.energy = header.energy;
  if (header.virial) {
    frame.virial = from_fortran(*header.virial);
    // Both are written by write_extxyz; a stress edited by another tool must not be silently
    // overridden by a stale virial.
    if (header.stress) {
      const Matrix from_stress = stress_to_virial(*header.stress, frame.box, where);
      double scale = 1.0;
      for (const double w : *frame.virial) scale = std::max(scale, std::abs(w));
      for (int k = 0; k < 9; ++k) {
        if (std::abs(from_stress[k] - (*frame.virial)[k]) > 1e-6 * scale) {
          fail("{}: virial and stress disagree (virial {} vs -stress*volume {} at component {})", where.str(),
               (*frame.virial)[k], from_stress[k], k);
        }
      }
    }
  } else if (header.stress) {
    frame.virial = stress_to_virial(*header.stress, frame.box, where);
  }
}

void parse_atom_line(Frame& frame, std::string_view line, const Columns& columns, const Where& where) {
  const std::vector<std::string_view> fields = split_fields(line);
  if (fields.size() != columns.total) {
    fail("{}: atom {} has {} columns, Properties announce {} ('{}')", where.str(), frame.species.size(),
         fields.size(), columns.total, std::string(line));
  }
  const auto number = [&](std::size_t col) {
    const std::optional<double> v = to_double(fields[col]);
    if (!v) fail("{}: atom {}: '{}' is not a finite number", where.str(), frame.species.size(), std::string(fields[col]));
    return *v;
  };
  for (std::size_t d = 0; d < 3; ++d) frame.coord.push_back(number(columns.pos + d));
  if (columns.forces) {
    for (std::size_t d = 0; d < 3; ++d) frame.force.push_back(number(*columns.forces + d));
  }
  if (columns.velocities) {
    for (std::size_t d = 0; d < 3; ++d) frame.velocity.push_back(number(*columns.velocities + d));
  }
  // ASE capitalises symbols ("CU" and "cu" are both Cu).
  std::string symbol = lower(fields[columns.species]);
  if (!symbol.empty()) symbol[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(symbol[0])));
  frame.species.push_back(std::move(symbol));
}

std::vector<Frame> parse_frames(const std::string& path, const std::string& text) {
  const std::vector<std::string_view> lines = split_lines(text);
  std::vector<Frame> frames;
  std::size_t i = 0;
  while (true) {
    while (i < lines.size() && trim(lines[i]).empty()) ++i;  // blank lines between or after frames
    if (i >= lines.size()) break;
    Frame frame;
    frame.index = static_cast<int64_t>(frames.size());
    frame.line = static_cast<int64_t>(i) + 1;
    const Where at_count{path, frame.index, frame.line};
    const std::string_view count_text = trim(lines[i]);
    int64_t natoms = 0;
    const auto [end, ec] = std::from_chars(count_text.data(), count_text.data() + count_text.size(), natoms);
    if (ec != std::errc() || end != count_text.data() + count_text.size() || natoms <= 0) {
      fail("{}: expected the number of atoms, got '{}'", at_count.str(), std::string(lines[i]));
    }
    if (i + 1 >= lines.size()) fail("{}: the file ends before the comment line", at_count.str());
    const Where at_comment{path, frame.index, static_cast<int64_t>(i) + 2};
    const Header header = parse_header(lines[i + 1], at_comment);
    apply_header(frame, header, at_comment);
    i += 2;
    for (int64_t a = 0; a < natoms; ++a, ++i) {
      if (i >= lines.size()) {
        fail("{}: the file ends after {} of {} atom lines", at_count.str(), a, natoms);
      }
      parse_atom_line(frame, lines[i], header.columns, Where{path, frame.index, static_cast<int64_t>(i) + 1});
    }
    frames.push_back(std::move(frame));
  }
  if (frames.empty()) fail("'{}': no frames (the file is empty)", path);
  return frames;
}

void check_same_labels(const Frame& first, const Frame& frame, const std::string& path) {
  const auto check = [&](bool a, bool b, const char* what) {
    if (a != b) {
      fail("'{}' frame {} {} {}, but frame {} (same atoms, same system) {}", path, frame.index,
           b ? "has" : "lacks", what, first.index, a ? "has it" : "does not");
    }
  };
  check(first.energy.has_value(), frame.energy.has_value(), "an energy");
  check(!first.force.empty(), !frame.force.empty(), "forces");
  check(first.virial.has_value(), frame.virial.has_value(), "a virial/stress");
  check(!first.velocity.empty(), !frame.velocity.empty(), "velocities");
}

// Consecutive frames with the same species sequence (and periodicity) are one System.
std::vector<System> group_frames(const std::string& path, const std::vector<Frame>& frames) {
  std::vector<std::string> type_map;  // shared by all systems of the file, in order of appearance
  for (const Frame& frame : frames) {
    for (const std::string& s : frame.species) {
      if (std::find(type_map.begin(), type_map.end(), s) == type_map.end()) type_map.push_back(s);
    }
  }
  std::vector<System> systems;
  std::size_t begin = 0;
  while (begin < frames.size()) {
    std::size_t end = begin + 1;
    while (end < frames.size() && frames[end].species == frames[begin].species && frames[end].pbc == frames[begin].pbc) {
      ++end;
    }
    System system;
    system.path = fmt::format("{} [frames {}-{}]", path, begin, end - 1);
    system.type_map = type_map;
    for (const std::string& s : frames[begin].species) {
      system.types.push_back(static_cast<int32_t>(std::find(type_map.begin(), type_map.end(), s) - type_map.begin()));
    }
    system.pbc = frames[begin].pbc;
    for (std::size_t f = begin; f < end; ++f) {
      const Frame& frame = frames[f];
      check_same_labels(frames[begin], frame, path);
      system.coord.insert(system.coord.end(), frame.coord.begin(), frame.coord.end());
      system.box.insert(system.box.end(), frame.box.begin(), frame.box.end());
      if (frame.energy) system.energy.push_back(*frame.energy);
      system.force.insert(system.force.end(), frame.force.begin(), frame.force.end());
      system.velocity.insert(system.velocity.end(), frame.velocity.begin(), frame.velocity.end());
      if (frame.virial) system.virial.insert(system.virial.end(), frame.virial->begin(), frame.virial->end());
    }
    system.nframes = static_cast<int64_t>(end - begin);
    systems.push_back(std::move(system));
    begin = end;
  }
  return systems;
}

std::string join_numbers(const double* values, int n) {
  std::string out;
  for (int k = 0; k < n; ++k) out += fmt::format(k ? " {}" : "{}", values[k]);
  return out;
}

}  // namespace

std::vector<System> read_extxyz(const std::string& path) { return group_frames(path, parse_frames(path, read_file(path))); }

std::string format_extxyz_frame(const std::vector<std::string>& type_map, const std::vector<int32_t>& types,
                                const double* coord, const double* box, bool pbc, const double* energy,
                                const double* force, const double* virial, const double* velocity) {
  const bool has_box = box != nullptr && std::any_of(box, box + 9, [](double v) { return v != 0.0; });
  if (pbc && !has_box) fail("extxyz: a periodic frame needs a non-zero box");
  std::string out = fmt::format("{}\n", types.size());
  if (has_box) out += fmt::format("Lattice=\"{}\" ", join_numbers(box, 9));
  out += "Properties=species:S:1:pos:R:3";
  if (force != nullptr) out += ":forces:R:3";
  if (velocity != nullptr) out += ":velocities:R:3";
  if (energy != nullptr) out += fmt::format(" energy={}", *energy);
  if (virial != nullptr) {
    // ASE's 9-value arrays are in Fortran order (transpose of our row-major virial).
    double fortran[9];
    for (int k = 0; k < 9; ++k) fortran[k] = virial[(k % 3) * 3 + k / 3];
    out += fmt::format(" virial=\"{}\"", join_numbers(fortran, 9));
    // Stress only makes sense for a periodic cell; ASE's calculators read this key, and the
    // virial above keeps the exact values (stress = -virial / volume is not bit-exact).
    if (pbc) {
      Matrix b{};
      std::copy(box, box + 9, b.begin());
      const double volume = std::abs(det3(b));
      double stress[9];
      for (int k = 0; k < 9; ++k) stress[k] = 0.0 - fortran[k] / volume;  // 0.0 - x: no "-0" in the file
      out += fmt::format(" stress=\"{}\"", join_numbers(stress, 9));
    }
  }
  out += pbc ? " pbc=\"T T T\"\n" : " pbc=\"F F F\"\n";
  for (std::size_t i = 0; i < types.size(); ++i) {
    const int32_t t = types[i];
    if (t < 0 || t >= static_cast<int32_t>(type_map.size())) {
      fail("extxyz: atom {} has type {}, outside the type_map of {} elements", i, t, type_map.size());
    }
    out += fmt::format("{} {}", type_map[static_cast<std::size_t>(t)], join_numbers(coord + 3 * i, 3));
    if (force != nullptr) out += " " + join_numbers(force + 3 * i, 3);
    if (velocity != nullptr) out += " " + join_numbers(velocity + 3 * i, 3);
    out += "\n";
  }
  return out;
}

void write_extxyz(const std::string& path, const System& system) {
  if (system.type_map.empty()) fail("cannot write system '{}' to '{}': it has no type_map (element names)", system.path, path);
  const auto n = static_cast<std::size_t>(system.nframes);
  const auto na = static_cast<std::size_t>(system.natoms());
  if (!system.is_stored() &&
      (system.coord.size() != n * na * 3 || (!system.box.empty() && system.box.size() != n * 9) ||
       (system.has_energy() && system.energy.size() != n) || (system.has_force() && system.force.size() != n * na * 3) ||
       (system.has_virial() && system.virial.size() != n * 9) ||
       (!system.velocity.empty() && system.velocity.size() != n * na * 3))) {
    fail("cannot write system '{}' to '{}': array sizes do not match {} frames of {} atoms", system.path, path, n, na);
  }
  std::string text;
  for (std::size_t f = 0; f < n; ++f) {
    const auto fi = static_cast<int64_t>(f);
    try {
      text += format_extxyz_frame(system.type_map, system.types, system.frame_coord(fi),
                                  system.has_box() ? system.frame_box(fi) : nullptr, system.pbc,
                                  system.has_energy() ? system.frame_energy(fi) : nullptr,
                                  system.has_force() ? system.frame_force(fi) : nullptr,
                                  system.has_virial() ? system.frame_virial(fi) : nullptr,
                                  system.has_velocity() ? system.frame_velocity(fi) : nullptr);
    } catch (const Error&) {
      rethrow_with_context(fmt::format("writing '{}' frame {} of system '{}'", path, f, system.path));
    }
  }
  write_file_atomic(path, text);
}

}  // namespace atomforge::data
