// Logging: spdlog to stderr (results go to stdout), plus an optional log file in a run
// directory. Levels: trace, debug, info, warn, error, off.
#pragma once

#include <memory>
#include <string>

namespace spdlog::sinks {
class sink;
}  // namespace spdlog::sinks

namespace ml {

// Throws UsageError for an unknown level name.
void setup_logging(const std::string& level);

// Copies the default logger's lines into `path` (appending) for as long as it lives, e.g. a
// run's train.log for the duration of that run: a command that trains a baseline in-process
// keeps the rest of its log out of the baseline's file. Throws IoError naming the file and
// the reason when it cannot be opened for writing.
class ScopedLogFile {
 public:
  explicit ScopedLogFile(const std::string& path);
  ~ScopedLogFile();
  ScopedLogFile(const ScopedLogFile&) = delete;
  ScopedLogFile& operator=(const ScopedLogFile&) = delete;

 private:
  std::shared_ptr<spdlog::sinks::sink> sink_;
};

}  // namespace ml
