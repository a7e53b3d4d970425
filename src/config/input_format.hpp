// A CSV that a command reads in the log's place (predict --input, adapt --support-csv) may be
// written unlike the training log (another delimiter, other column names), and the run's config
// is not the user's to change for it. The command's format options (--delimiter, --header /
// --no-header, --time-format, --bad-rows, --column ROLE=COLUMN) each override one key of the
// run's config for that file alone, read and checked by the config's own code; messages about
// the file then name those options, where messages about the config's log name its keys.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace ml::config {

// The format options as given; empty / nullopt: the run's own setting.
struct InputFormat {
  std::string delimiter;             // --delimiter: a data.format.delimiter value
  std::optional<bool> header;        // --header / --no-header: data.format.header
  std::string time_format;           // --time-format: a data.time_format value
  std::string bad_rows;              // --bad-rows: a data.bad_rows value
  std::vector<std::string> columns;  // --column ROLE=COLUMN, repeatable (see column_roles_text)
};

// A file given on a command line with its format options: `option` is the option that named
// it ("--input").
struct InputFile {
  std::string path;
  std::string option;
  InputFormat format;
};

// How messages about a log file name the settings it is read with. The config's log (the
// default): the config keys, as written. A command's file: the command's options, and a value
// the options left as the run's config has it is said to be the run's, with the option that
// changes it.
class SettingNames {
 public:
  SettingNames() = default;
  // `given`: the config keys that the command's options set.
  SettingNames(std::string option, std::vector<std::string> given)
      : option_(std::move(option)), given_(std::move(given)) {}

  // Whether the file is a command's (the options name its settings), not the config's log.
  bool from_command() const { return !option_.empty(); }
  // The key with its value, as a message names it: "data.columns.user = 'customer'"; for a
  // command's file "--column user='customer'" when an option set it, else
  // "data.columns.user = 'customer' (the run's config)". `value` is written as the config's
  // messages write it (quoted or not).
  std::string assigned(const std::string& key, const std::string& value) const;
  // What to set to `value`, as advice: "data.columns.user = 3", or "--column user=3".
  std::string setting(const std::string& key, const std::string& value) const;
  // The setting itself: "data.format.delimiter", or "--delimiter".
  std::string name(const std::string& key) const;
  // Advice after a message about `key`'s value for a command's file: "; give --column
  // user=COLUMN for this file"; "" for the config's log (the message's key is the advice).
  std::string advice(const std::string& key) const;

 private:
  std::string option_;  // "" for the config's log
  std::vector<std::string> given_;
};

// The run's config with `input.path` as its log (data.files) and its format options applied:
// each through the config's reader and checks. A bad option value, a --column whose ROLE is
// unknown or that the run does not read, is a UsageError naming the option. `names` (if not
// null) is set to how messages about the file name its settings.
Config input_config(const Config& run, const InputFile& input, SettingNames* names = nullptr);

// The ROLEs of --column, for --help and messages.
std::string column_roles_text();

}  // namespace ml::config
