#include "distill/run_distill.hpp"

#include <filesystem>

#include <spdlog/spdlog.h>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/tensor_file.hpp"
#include "data/load_systems.hpp"
#include "distill/explore.hpp"
#include "distill/label.hpp"
#include "distill/report.hpp"
#include "distill/select.hpp"
#include "distill/student.hpp"

namespace atomforge::distill {

namespace fs = std::filesystem;

namespace {

std::string chosen_head(const model::EnergyModel& teacher, const DistillOptions& o) {
  if (o.head.empty()) return teacher.only_head();
  if (!teacher.has_head(o.head)) fail("head: '{}' has no head '{}'", o.teacher, o.head);
  return o.head;
}

// Labels and writes each non-empty system as folder/name; returns the folders written.
std::vector<std::string> label_and_write(const model::EnergyModel& teacher, const std::string& head,
                                         std::vector<data::System>& systems, const std::vector<std::string>& names,
                                         const fs::path& folder, int64_t chunk) {
  std::vector<std::string> written;
  for (std::size_t k = 0; k < systems.size(); ++k) {
    if (systems[k].nframes == 0) continue;
    label(teacher, head, systems[k], chunk);
    const std::string dir = fs::absolute(folder / names[k]).lexically_normal().string();
    data::write_deepmd_system(dir, systems[k]);
    written.push_back(dir);
  }
  return written;
}

int64_t frame_count(const std::vector<data::System>& systems) {
  int64_t n = 0;
  for (const auto& s : systems) n += s.nframes;
  return n;
}

}  // namespace

config::json run_distill(const DistillOptions& o, const std::string& output_dir) {
  const fs::path out(output_dir);
  // Checked before the exploration, which takes long: labelled systems are never overwritten.
  if (fs::exists(out / "labelled") && !fs::is_empty(out / "labelled"))
    fail("'{}' already holds labelled frames; choose another output folder", (out / "labelled").string());
  const auto teacher = model::EnergyModel::load(load_tensor_file(o.teacher), o.teacher);
  const std::string head = chosen_head(*teacher, o);
  // The student section is checked now too, with stand-in data folders.
  student_training_input(o.student, teacher->type_map(), {"labelled/train"}, {"labelled/valid"});
  const std::vector<data::System> starts = read_start_frames(o.start_systems, o.start_frames);

  const std::vector<data::System> runs = explore(*teacher, head, starts, o.explore);
  Selection sel = select_frames(runs, o.select);
  spdlog::info("distill: {} frames explored, {} dropped above max_force, {} beyond max_frames; {} train, {} valid",
               sel.explored, sel.dropped_max_force, sel.dropped_max_frames, frame_count(sel.train),
               frame_count(sel.valid));
  const auto train_dirs = label_and_write(*teacher, head, sel.train, sel.names, out / "labelled/train", o.chunk);
  const auto valid_dirs = label_and_write(*teacher, head, sel.valid, sel.names, out / "labelled/valid", o.chunk);

  const config::json input = student_training_input(o.student, teacher->type_map(), train_dirs, valid_dirs);
  const auto student = train_student(input, (out / "student").string());
  TensorFile file;
  student->save(file);
  file.meta["source"] = {{"distilled_from", o.teacher}, {"head", head}};
  save_tensor_file((out / "student.pth").string(), file);
  const std::string student_head = student->only_head();

  config::json report;
  report["frames"] = {{"explored", sel.explored},
                      {"dropped_max_force", sel.dropped_max_force},
                      {"dropped_max_frames", sel.dropped_max_frames},
                      {"train", frame_count(sel.train)},
                      {"valid", frame_count(sel.valid)}};
  const Accuracy held_out = accuracy(*student, student_head, sel.valid, o.chunk);
  report["held_out"] = {{"student_vs_teacher", held_out.to_json()}, {"teacher_force_rms", force_rms(sel.valid)}};
  spdlog::info("held-out teacher labels ({} frames): student force RMSE {:.4g} eV/A (teacher force RMS {:.4g}), "
               "energy RMSE {:.4g} eV/atom",
               held_out.frames, held_out.force_rmse.value_or(0), force_rms(sel.valid),
               held_out.energy_rmse_per_atom.value_or(0));
  if (!o.original_data.empty()) {
    std::vector<data::System> original;
    for (const auto& path : o.original_data)
      for (auto& s : data::load_systems(path)) original.push_back(data::resident(s));  // accuracy() reads the vectors
    const Accuracy t = accuracy(*teacher, head, original, o.chunk), s = accuracy(*student, student_head, original, o.chunk);
    report["original_data"] = {{"teacher", t.to_json()}, {"student", s.to_json()}};
    const auto& r = report["original_data"];
    spdlog::info("original data ({} frames): force RMSE teacher {} student {} eV/A; energy RMSE teacher {} student {} "
                 "eV/atom",
                 t.frames, r["teacher"]["force_rmse"].dump(), r["student"]["force_rmse"].dump(),
                 r["teacher"]["energy_rmse_per_atom"].dump(), r["student"]["energy_rmse_per_atom"].dump());
  }
  const double t_teacher = seconds_per_frame(*teacher, head, starts.front(), o.timing_repeats);
  const double t_student = seconds_per_frame(*student, student_head, starts.front(), o.timing_repeats);
  report["timing"] = {{"natoms", starts.front().natoms()},
                      {"teacher_seconds_per_frame", t_teacher},
                      {"student_seconds_per_frame", t_student},
                      {"speed_ratio", t_teacher / t_student}};
  spdlog::info("speed: teacher {:.4g} s, student {:.4g} s per {}-atom frame: the student is {:.2f}x as fast", t_teacher,
               t_student, starts.front().natoms(), t_teacher / t_student);
  write_file_atomic((out / "report.json").string(), report.dump(2) + "\n");
  return report;
}

}  // namespace atomforge::distill
