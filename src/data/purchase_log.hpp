// The purchase log in memory: the configured CSV files parsed into integer and float columns
// (ids interned), plus the side tables joined on user or item id. Malformed rows are skipped
// and counted, or stop the load, as data.bad_rows says; either way they are reported with
// their file and line, and a log whose every row is malformed is refused. Cells that are not
// UTF-8 are kept escaped (see csv_reader.hpp) and counted.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/input_format.hpp"
#include "data/columns.hpp"
#include "data/dictionary.hpp"

namespace ml::data {

// The largest magnitude a numeric cell (rating, price, quantity, numeric feature) may hold: the
// square root of float's largest value, 1.8e19. A larger one is a bad row ("number out of
// range"): the squared loss of a regression target and the variance behind standardisation
// square it, and in 32-bit floats that square would be inf.
inline constexpr double kMaxNumberMagnitude = 1.8446742974197924e19;

struct BadRow {
  std::string file;
  std::size_t line = 0;
  std::string reason;
};

struct SideTableReport {
  std::string join;  // config::JoinKey's name: "item" | "user"
  std::vector<std::string> files;
  std::int64_t rows = 0;
  std::int64_t rejected = 0;
  std::string duplicates;            // config::DuplicateKeys's name: the policy for them
  std::int64_t duplicate_keys = 0;   // later rows for an already-seen id (the first one wins)
  std::int64_t log_ids_matched = 0;  // distinct log ids that found a row in this table
  std::int64_t log_ids_total = 0;
};

struct LoadReport {
  std::vector<std::string> files;
  std::int64_t bytes = 0;
  std::int64_t rows_read = 0;      // data records seen (header excluded)
  std::int64_t rows_rejected = 0;  // skipped as malformed
  std::map<std::string, std::int64_t> rejected_by_reason;
  std::vector<BadRow> bad_rows;        // the first data.show_bad_rows of them
  std::int64_t rows_without_task = 0;  // empty task key: kept as history, in no task
  // How the kept rows' timestamps were read, by TimeReading name ("unix_ms": 1200): what
  // data.time_format = "auto" decided.
  std::map<std::string, std::int64_t> timestamps_read_as;
  std::vector<SideTableReport> side_tables;
  // Cells of the log and side tables that were not valid UTF-8, kept escaped as `\xHH`, and
  // where the first one is (its reason names the column and the byte).
  std::int64_t non_utf8_cells = 0;
  BadRow first_non_utf8;
};

struct PurchaseLog {
  Dictionary users, items, tasks, events, classes;
  // One entry per kept row; kNoId / kNoTime / NaN where the column is absent or the cell empty.
  std::vector<std::int32_t> user, item, task, event, label_class;
  std::vector<std::int64_t> timestamp;
  std::vector<float> rating, price, quantity;
  FeatureTable features;  // data.features columns, per row

  // Side-table attributes, indexed by user / item id (sized to users.size() / items.size()).
  FeatureTable user_attributes, item_attributes;

  std::size_t size() const { return task.size(); }
  bool has_user() const { return has_user_; }
  bool has_item() const { return has_item_; }
  bool has_timestamp() const { return has_timestamp_; }

  bool has_user_ = false, has_item_ = false, has_timestamp_ = false;
};

// How the CSV files are parsed. The log and report do not depend on it: parts of a file are
// parsed by separate threads and joined as if read in one pass.
struct ParseOptions {
  int threads = 0;  // 0: config.run.threads as runtime::resolve_threads resolves it
  std::uint64_t min_part_bytes = std::uint64_t{16} << 20;  // smaller files are read by one thread
  // How messages about the log's files name the settings they are read with: the config's
  // keys, or for a command's own file (load_input_file) that command's options.
  config::SettingNames names;
};

// The threads a parse of `config`'s files with `options` uses.
int parse_threads(const config::Config& config, const ParseOptions& options);

// Reads data.files and data.side_tables. Throws DataError for a missing file or column, a file
// that is not text, a column name that the header holds twice, for the first bad row when
// data.bad_rows = "fail", and when every data row of the log was rejected (naming the reasons
// and the first rows, rather than leaving an empty log for a later step to trip over).
PurchaseLog load_purchase_log(const config::Config& config, LoadReport& report,
                              const ParseOptions& options = {});

// Reads a file given on a command line in the log's place (predict --input, adapt
// --support-csv) as load_purchase_log reads data.files, with the run's config `run` and the
// command's format options (config::input_config; `config`, if not null, gets the config it was
// read with): its messages name those options. Feature columns keep the run's names when an
// option reads them from other columns, so that the run's feature statistics find them.
PurchaseLog load_input_file(const config::Config& run, const config::InputFile& input,
                            LoadReport& report, ParseOptions options = {},
                            config::Config* config = nullptr);

// The warnings a command logs about what the load set aside: how many log and side-table rows
// were rejected and why, with the first ones as file:line (as inspect lists them), and how
// many cells were not UTF-8 with the first one's file:line. One line each; none for a clean
// load.
std::vector<std::string> load_warnings(const LoadReport& report);
// Logs load_warnings() through spdlog's warn level, each line once per process.
void warn_about_load(const LoadReport& report);

}  // namespace ml::data
