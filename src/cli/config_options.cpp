// Options shared by config-driven subcommands: see command.hpp.
#include <iostream>

#include "cli/command.hpp"
#include "config/choices.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"
#include "util/utf8.hpp"

namespace ml::cli {

void add_device_option(CLI::App& command, std::string& device, const char* overrides) {
  std::string help = "cpu, cuda, cuda:N or auto";
  if (*overrides) help += std::string(" (overrides ") + overrides + ")";
  // A name that is no device is a bad option (exit 2); a device that is absent is exit 6.
  const CLI::Validator device_name(
      [](std::string& value) {
        return config::parse_device_spec(value)
                   ? std::string()
                   : "'" + value + "' is no device: expected cpu, cuda, cuda:N or auto";
      },
      "");
  command.add_option("--device", device, help)
      ->check(device_name)
      ->default_str(*overrides ? overrides : "auto");
}

void add_threads_option(CLI::App& command, int& threads, const char* overrides) {
  // runtime::resolve_threads applies this precedence; the README's Speed section says it too.
  std::string help =
      "CPU thread budget (task workers, episodes side by side, CSV parsing); 0 = "
      "OMP_NUM_THREADS, else OPENBLAS_NUM_THREADS, else the usable cores (CPU affinity, "
      "cgroup quota), measured against one thread before training spends them";
  if (*overrides) help += std::string(" (overrides ") + overrides + ")";
  command.add_option("--threads", threads, help)
      ->check(whole_number(0, config::kMaxThreads))
      ->default_str(*overrides ? overrides : "0");
}

void add_input_format_options(CLI::App& command, config::InputFormat& format,
                              const std::string& file_option) {
  // Each stands for a config key, for this file alone; the default is the run's setting.
  const std::string file = "the " + file_option + " file's";
  // "" would read as "not given": say so instead of using the run's setting.
  const CLI::Validator not_empty(
      [](std::string& value) { return value.empty() ? std::string("must not be empty") : ""; }, "");
  command
      .add_option("--delimiter", format.delimiter,
                  file +
                      " delimiter, if not the run's log's: auto, \",\", \"\\t\" (tab), \";\", "
                      "\" \" (space) or \"|\" (data.format.delimiter)")
      ->check(not_empty);
  // Two flags rather than CLI11's "--header,!--no-header", whose help reads
  // "--header,--no-header{false}".
  auto* header = command.add_flag_function(
      "--header", [&format](std::int64_t) { format.header = true; },
      file + " first line names its columns, if the run's log has none (data.format.header)");
  // A flag takes no value: CLI11 would read "--header=false" as --header.
  header->disable_flag_override();
  command
      .add_flag_function(
          "--no-header", [&format](std::int64_t) { format.header = false; },
          file + " first line is a row: columns by 1-based position (data.format.header)")
      ->excludes(header)
      ->disable_flag_override();
  command
      .add_option("--time-format", format.time_format,
                  "how " + file +
                      " timestamps are written, if not as in the run's log: auto, unix, "
                      "unix_ms, unix_us, unix_ns or iso8601 (data.time_format)")
      ->check(not_empty);
  command
      .add_option("--bad-rows", format.bad_rows,
                  "skip or fail: what a malformed row of " + file.substr(0, file.size() - 2) +
                      " does, if not as the run's config says (data.bad_rows)")
      ->check(not_empty);
  command
      .add_option("--column", format.columns,
                  "read the run's ROLE column from COLUMN of " + file.substr(0, file.size() - 2) +
                      " (a name or 1-based position; repeatable); ROLE is " +
                      config::column_roles_text())
      ->type_name("ROLE=COLUMN");
}

void check_input_format(const config::InputFormat& format, const std::string& file,
                        const std::string& file_option) {
  if (!file.empty()) return;
  std::vector<std::string> given;
  if (!format.delimiter.empty()) given.push_back("--delimiter");
  if (format.header) given.push_back(*format.header ? "--header" : "--no-header");
  if (!format.time_format.empty()) given.push_back("--time-format");
  if (!format.bad_rows.empty()) given.push_back("--bad-rows");
  if (!format.columns.empty()) given.push_back("--column");
  if (!given.empty())
    throw UsageError(join(given, ", ") + (given.size() == 1 ? " describes" : " describe") +
                     " the " + file_option +
                     " file; give it, or leave them out (the run's log is read as its config "
                     "says)");
}

CLI::Validator as_data_names() {
  return CLI::Validator(
      [](std::string& value) {
        if (!is_valid_utf8(value)) value = utf8_escaped(value);
        return std::string();
      },
      "");
}

CLI::Validator shots_option(int minimum) {
  return CLI::Validator(
      [minimum](std::string& value) -> std::string {
        if (value == "all") {
          value = std::to_string(config::kSupportAll);
          return "";
        }
        const auto n = parse_int(value);
        if (!n || *n < minimum || *n > config::kMaxEpisodeExamples)
          return "'" + value + "' is neither a whole number from " + std::to_string(minimum) +
                 " to " + std::to_string(config::kMaxEpisodeExamples) + " nor \"all\"";
        return "";
      },
      "");
}

CLI::Validator non_negative_float() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        const auto x = parse_double(value);
        if (!x || !(*x >= 0)) return "'" + value + "' is not a number >= 0";
        if (!config::fits_float(*x)) return "'" + value + "' does not " + config::kFitsFloat;
        return "";
      },
      "");
}

void ConfigOptions::add_to(CLI::App& command, bool with_device) {
  command.add_option("-c,--config", path, "JSON config file")->required();
  command.add_option("--set", overrides,
                     "override a config value, e.g. --set task.support=5 (repeatable; the value "
                     "is JSON or a plain string)");
  command.add_flag("--print-config", print_config,
                   "print the resolved config (defaults filled in, data paths absolute: it can be "
                   "saved and used as a --config file) and exit");
  if (with_device) add_device_option(command, device, "run.device");
  add_threads_option(command, threads, "run.threads");
}

bool ConfigOptions::load(config::Config& out) const {
  std::vector<std::string> all = overrides;
  if (!device.empty()) all.push_back("run.device=\"" + device + "\"");
  if (threads >= 0) all.push_back("run.threads=" + std::to_string(threads));
  out = config::load_config(path, all);
  if (print_config) {
    config::Json j;
    to_json(j, out);
    std::cout << j.dump(2) << "\n";
    return false;
  }
  return true;
}

}  // namespace ml::cli
