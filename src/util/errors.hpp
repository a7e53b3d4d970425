// Typed errors thrown by library code. Only main() turns them into one message line and an
// exit code, so every user mistake ends the same way: no stack trace, no abort.
#pragma once

#include <csignal>
#include <stdexcept>
#include <string>

namespace ml {

// Documented in README.md ("Exit codes"); keep the two in sync.
enum class ExitCode : int {
  kOk = 0,
  kRuntime = 1,     // an unexpected failure inside the tool
  kUsage = 2,       // bad command line
  kConfig = 3,      // config file missing, malformed, unknown key or invalid value
  kData = 4,        // input data missing, malformed, or too small for the asked task sizes
  kCheckpoint = 5,  // checkpoint missing, truncated, not a checkpoint, or of a newer format
  kDevice = 6,      // device asked for is not available
  kNumeric = 7,     // training diverged, or a run that diverged was given to use
  kNotImplemented = 8,
  kIo = 9,             // a file or folder cannot be written or accessed (permissions, disk full)
  kDistributed = 10,   // torchrun's variables are wrong, a rank cannot connect, lost a peer, or
                       // the ranks started with another config or other data
  kInterrupted = 130,  // SIGINT (Ctrl-C): 128 + the signal number, as shells report it
  kTerminated = 143,   // SIGTERM
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const { return code_; }

 private:
  ExitCode code_;
};

struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(ExitCode::kUsage, m) {}
};
struct ConfigError : Error {
  explicit ConfigError(const std::string& m) : Error(ExitCode::kConfig, m) {}
};
struct DataError : Error {
  explicit DataError(const std::string& m) : Error(ExitCode::kData, m) {}
};
struct CheckpointError : Error {
  explicit CheckpointError(const std::string& m) : Error(ExitCode::kCheckpoint, m) {}
};
struct DeviceError : Error {
  explicit DeviceError(const std::string& m) : Error(ExitCode::kDevice, m) {}
};
struct NumericError : Error {
  explicit NumericError(const std::string& m) : Error(ExitCode::kNumeric, m) {}
};
struct NotImplementedError : Error {
  explicit NotImplementedError(const std::string& m) : Error(ExitCode::kNotImplemented, m) {}
};
// The operating system refused a file operation: the message names the path and errno's text.
struct IoError : Error {
  explicit IoError(const std::string& m) : Error(ExitCode::kIo, m) {}
};
// A data-parallel run (runtime/distributed.hpp) cannot go on as one group: the message says
// which variable, rank, timeout or difference, so that every rank ends with one clear line.
struct DistributedError : Error {
  explicit DistributedError(const std::string& m) : Error(ExitCode::kDistributed, m) {}
};
// The command stopped on SIGINT or SIGTERM (util/interrupt.hpp) after leaving its outputs
// consistent; the exit code is 128 + the signal, what a shell reports for a killed process.
struct InterruptedError : Error {
  InterruptedError(int signal, const std::string& m)
      : Error(signal == SIGTERM ? ExitCode::kTerminated : ExitCode::kInterrupted, m) {}
};

}  // namespace ml
