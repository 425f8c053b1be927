#pragma once
// Console logging through spdlog; a progress line that rewrites itself on a terminal.
#include <string>

namespace atomforge {

void init_logging(bool verbose);
// Writes `line` over the previous progress line on a terminal, or as a plain line otherwise.
void progress_line(const std::string& line);
void end_progress_line();

}  // namespace atomforge
