// Shared pieces of the subcommands: the config options every config-driven command takes, and
// the registration functions, one per subcommand file. A subcommand's callback calls one
// library function; errors are thrown and turned into messages only in run_cli().
#pragma once

#include <charconv>
#include <limits>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "config/config.hpp"
#include "config/input_format.hpp"

namespace ml::cli {

// --config, repeated --set, --print-config, and the --device/--threads shortcuts.
struct ConfigOptions {
  std::string path;
  std::vector<std::string> overrides;
  bool print_config = false;
  std::string device;
  int threads = -1;

  // --threads always (CSV parsing uses it); --device only `with_device` (commands that compute).
  void add_to(CLI::App& command, bool with_device);
  // Loads with overrides applied. With --print-config, prints the resolved config to stdout and
  // returns false: the command should stop there.
  bool load(config::Config& out) const;
};

// The --device and --threads options of every compute command, worded once. `overrides` names
// the config key they replace (train/inspect) or is empty (commands that read a run).
void add_device_option(CLI::App& command, std::string& device, const char* overrides = "");
void add_threads_option(CLI::App& command, int& threads, const char* overrides = "");

// The format options of a command's own CSV (config/input_format.hpp): --delimiter, --header /
// --no-header, --time-format, --bad-rows and --column ROLE=COLUMN, for the file of
// `file_option` ("--input"), into `format`.
void add_input_format_options(CLI::App& command, config::InputFormat& format,
                              const std::string& file_option);
// A UsageError when a format option is given without `file` (the file it describes).
void check_input_format(const config::InputFormat& format, const std::string& file,
                        const std::string& file_option);

// For options naming ids from the data (--task, --user): the data's ids hold bytes that are not
// UTF-8 as `\xHH` (util/utf8.hpp), so an argument holding such raw bytes is rewritten the same
// way and finds the id its bytes came from.
CLI::Validator as_data_names();

// Reads a --shots value: a whole number >= `minimum`, or "all" (config::kSupportAll).
CLI::Validator shots_option(int minimum);
// A whole number of type T from `minimum` to `maximum`, refused in plain words ("'-1' is not a
// whole number from 0 to 2147483647"). CLI11's own checks print DBL_MAX as a 309-digit bound
// (NonNegativeNumber, PositiveNumber), saturate 64-bit values that overflow and wrap "-1" for
// unsigned ones; with the default bounds this only refuses what T cannot hold.
template <typename T = int>
CLI::Validator whole_number(T minimum = std::numeric_limits<T>::min(),
                            T maximum = std::numeric_limits<T>::max()) {
  const std::string range = "from " + std::to_string(minimum) + " to " + std::to_string(maximum);
  return CLI::Validator(
      [minimum, maximum, range](std::string& value) -> std::string {
        const char* begin = value.data() + (value.size() > 1 && value[0] == '+' ? 1 : 0);
        const char* end = value.data() + value.size();
        T n{};
        const auto [stop, error] = std::from_chars(begin, end, n);
        if (error == std::errc() && stop == end && n >= minimum && n <= maximum) return "";
        return "'" + value + "' is not a whole number " + range;
      },
      "");
}
// A number >= 0 that fits a 32-bit float (config::fits_float), e.g. a learning rate.
CLI::Validator non_negative_float();

// Refuses an empty value (--shots '', --json-out ''), which CLI11 would read as 0 or as an
// option not given: a value the user did not mean.
inline CLI::Validator non_empty_value() {
  return CLI::Validator(
      [](std::string& value) {
        return value.empty() ? std::string("an empty value; give one or leave the option out")
                             : std::string();
      },
      "");
}

void add_synth_command(CLI::App& app);
// Hidden: `metalearn completion bash`. Add it last, after every command it describes.
void add_completion_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_adapt_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_explain_command(CLI::App& app);
void add_embeddings_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_config_docs_command(CLI::App& app);  // hidden

// A bash completion script for `app`: its visible subcommands and every option of each, with
// file-name completion after options that take a value.
std::string bash_completion_script(const CLI::App& app);

// Parses and runs; returns the process exit code (see util/errors.hpp ExitCode).
int run_cli(int argc, char** argv);

}  // namespace ml::cli
