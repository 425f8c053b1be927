#pragma once
// Each verb lives in its own file and adds itself to the app; main.cpp lists them.
namespace CLI {
class App;
}

namespace atomforge::cli {

void add_train_command(CLI::App& app);
void add_test_command(CLI::App& app);
void add_doc_train_input_command(CLI::App& app);
void add_show_command(CLI::App& app);
void add_freeze_command(CLI::App& app);
void add_change_bias_command(CLI::App& app);
void add_md_command(CLI::App& app);
void add_doc_md_input_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_pack_command(CLI::App& app);
// Also adds doc-distill-input.
void add_distill_command(CLI::App& app);

}  // namespace atomforge::cli
