// The atomforge command: one sub-command per verb, each in its own file.
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include "cli/commands.hpp"
#include "core/allocator.hpp"
#include "cli/run_command.hpp"
#include "model/huge_page_allocator.hpp"

int main(int argc, char** argv) {
  atomforge::keep_freed_memory_for_reuse();
  atomforge::model::map_large_tensors_on_huge_pages();
  CLI::App app{"atomforge: pre-train, fine-tune, distil and serve large atomic models"};
  app.require_subcommand(1);
  app.add_flag_callback("-v,--verbose", [] { atomforge::cli::set_verbose(true); }, "debug output");
  app.add_option_function<int>(
         "--threads", [](int n) { at::set_num_threads(n); },
         "intra-op threads of every verb (default: OMP_NUM_THREADS, else all cores; training.num_threads, when set, "
         "wins for train)")
      ->check(CLI::Range(1, 4096));
  atomforge::cli::add_train_command(app);
  atomforge::cli::add_test_command(app);
  atomforge::cli::add_show_command(app);
  atomforge::cli::add_freeze_command(app);
  atomforge::cli::add_change_bias_command(app);
  atomforge::cli::add_md_command(app);
  atomforge::cli::add_convert_command(app);
  atomforge::cli::add_pack_command(app);
  atomforge::cli::add_distill_command(app);
  atomforge::cli::add_doc_train_input_command(app);
  atomforge::cli::add_doc_md_input_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
