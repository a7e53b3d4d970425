// Logging: spdlog to stderr (results go to stdout), plus an optional log file in a run
// directory. Levels: trace, debug, info, warn, error, off.
#pragma once

#include <string>

namespace ml {

// Throws UsageError for an unknown level name.
void setup_logging(const std::string& level);
void add_log_file(const std::string& path);

}  // namespace ml
