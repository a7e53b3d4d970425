// Loading the purchase log and its side tables: see purchase_log.hpp.
//
// A large log file is cut into parts at line starts and the parts are parsed by separate
// threads, each into its own columns and dictionaries. A cut can fall inside a quoted field
// that spans lines; that is only known once the part before it is parsed, so the parts are
// checked in order: a part is kept when the part before it stopped exactly at its first byte,
// and otherwise dropped while the part before reads on through its bytes. The kept parts are
// then joined in file order, re-numbering each part's ids in order of first appearance, which
// gives the same ids, rows, lines and report as one serial pass.
#include "data/purchase_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>

#include "data/csv_reader.hpp"
#include "runtime/device.hpp"
#include "util/errors.hpp"
#include "util/interrupt.hpp"
#include "util/progress.hpp"
#include "util/strings.hpp"
#include "util/time_parse.hpp"
#include "util/utf8.hpp"

namespace ml::data {

namespace {

using config::ColumnRef;
using config::SettingNames;

// The names of a side table's settings: its config keys (a command's options set the log's).
const SettingNames kConfigKeys;

// What to tell a user whose file came out as one column: the delimiter it was read with and
// the setting that sets another; "" for a file of several columns. `table` is the config
// section whose format the file follows ("data", "data.side_tables[0]").
std::string one_column_hint(const CsvReader& reader, const std::string& table,
                            const SettingNames& names) {
  if (reader.width() != 1) return "";
  const char d = reader.delimiter();
  const std::string name = d == '\t' ? "tab" : d == ' ' ? "space" : std::string("'") + d + "'";
  return std::string("; it reads as a single column with the ") +
         (reader.delimiter_detected() ? "detected " : "") + "delimiter " + name + ": set " +
         names.name(table + ".format.delimiter") +
         " to the one it uses (\",\", \"\\t\", \";\", \"|\" or \" \")";
}

// The field index of a configured column in one file, or nullopt when the file has no such
// column. A name that more than one column carries (net and gross "price", "category" twice
// after a join) is refused with a DataError naming `key` (as `names` name it) rather than read
// from the first: the config picks one by its 1-based position instead.
std::optional<std::size_t> find_column(const ColumnRef& ref, const CsvReader& reader,
                                       const std::string& key,
                                       const SettingNames& names = kConfigKeys) {
  if (ref.position > 0) {
    if (static_cast<std::size_t>(ref.position) > reader.width()) return std::nullopt;
    return static_cast<std::size_t>(ref.position - 1);
  }
  const auto& header = reader.header();
  std::vector<std::size_t> matches;
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == ref.name) matches.push_back(i);
  const bool exact = !matches.empty();
  if (!exact)  // tolerate case and padding differences
    for (std::size_t i = 0; i < header.size(); ++i)
      if (to_lower(trim(header[i])) == to_lower(trim(ref.name))) matches.push_back(i);
  if (matches.size() == 1) return matches[0];
  if (matches.size() > 1) {
    std::vector<std::string> found;
    for (const std::size_t i : matches)
      found.push_back("#" + std::to_string(i + 1) + (exact ? "" : " '" + header[i] + "'"));
    throw DataError(names.assigned(key, "'" + ref.name + "'") + ": '" + reader.path() + "' has " +
                    std::to_string(matches.size()) + " columns " +
                    (exact ? "named" : "that match") + " '" + ref.name + "' (" + join(found, ", ") +
                    "); pick one by its 1-based position, e.g. " +
                    names.setting(key, std::to_string(matches.back() + 1)));
  }
  return std::nullopt;
}

// find_column, or a DataError naming the setting (the config key, or for a command's file its
// option), the file and the columns it has. `table` is the config section whose format the file
// follows (for one_column_hint).
std::size_t resolve_column(const ColumnRef& ref, const CsvReader& reader, const std::string& key,
                           const std::string& table, const SettingNames& names = kConfigKeys) {
  if (const auto found = find_column(ref, reader, key, names)) return *found;
  if (ref.position > 0)
    throw DataError(names.assigned(key, std::to_string(ref.position)) + ": '" + reader.path() +
                    "' has only " + std::to_string(reader.width()) + " columns" +
                    one_column_hint(reader, table, names) + names.advice(key));
  const auto& header = reader.header();
  std::string message =
      names.assigned(key, "'" + ref.name + "'") + ": no such column in '" + reader.path() + "'";
  std::string suggestion = closest_match(ref.name, header);
  if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
  message += "; its columns are: " + join(header, ", ") + one_column_hint(reader, table, names) +
             names.advice(key);
  throw DataError(message);
}

struct RowError {
  std::string reason;
  std::string category;  // for counting: "wrong field count", "bad number", ...
};

// A numeric cell as the float the log stores. Infinities, NaN and numbers whose square a float
// cannot hold (kMaxNumberMagnitude) are refused like text: one of them standardised turns a
// whole feature column into NaN, and as a regression target it makes the squared loss inf. On
// failure `error` says why, for the caller to prefix with the column (only then: this runs on
// every cell).
bool parse_number_cell(std::string_view cell, float& out, RowError& error) {
  const std::optional<double> v = parse_double(cell);
  if (v && std::isfinite(*v) && std::abs(*v) <= kMaxNumberMagnitude) {
    out = static_cast<float>(*v);
    return true;
  }
  if (!v)
    error = {quoted_value(cell) + " is not a number", "unparsable number"};
  else if (!std::isfinite(*v))
    error = {quoted_value(cell) + " is not a finite number", "non-finite number"};
  else
    error = {quoted_value(cell) +
                 " is out of range (beyond +-1.8e19: the loss and the feature statistics square "
                 "it, and a float holds at most 3.4e38)",
             "number out of range"};
  return false;
}

// Interns a cell, first comparing it with the previous row's value of the same column: logs
// are grouped by session, user or category, so the value often repeats and a compare is
// cheaper than a hash lookup.
struct Interner {
  std::int32_t last = kNoId;
  std::int32_t operator()(Dictionary& dictionary, std::string_view cell) {
    if (last != kNoId && dictionary.name(last) == cell) return last;
    return last = dictionary.intern(cell);
  }
};

// Column indices of one FeatureTable's columns in one file, and their parsing. Shared,
// read-only, by the threads that parse parts of the file.
class FeatureColumnsBinding {
 public:
  FeatureColumnsBinding(const config::FeatureColumns& spec, const CsvReader& reader,
                        const std::string& key, const std::string& table,
                        const SettingNames& settings = kConfigKeys) {
    auto bind = [&](const std::vector<ColumnRef>& refs, const char* kind,
                    std::vector<std::size_t>& out, std::vector<std::string>& names) {
      for (std::size_t i = 0; i < refs.size(); ++i) {
        out.push_back(resolve_column(
            refs[i], reader, key + "." + kind + "[" + std::to_string(i) + "]", table, settings));
        const std::size_t index = out.back();
        // A column by position is named after the file's header, or "#N" without one.
        names.push_back(!refs[i].name.empty()            ? refs[i].name
                        : reader.header().size() > index ? reader.header()[index]
                                                         : refs[i].describe());
      }
    };
    bind(spec.numeric, "numeric", numeric_, numeric_names_);
    bind(spec.categorical, "categorical", categorical_, categorical_names_);
    bind(spec.text, "text", text_, text_names_);
  }

  // Names the table's columns after this file's, unless an earlier file already did.
  void name_columns(FeatureTable& table) const {
    if (!table.numeric.empty() || !table.categorical.empty() || !table.text.empty()) return;
    for (const auto& name : numeric_names_) table.numeric.push_back({name, {}});
    for (const auto& name : categorical_names_) {
      table.categorical.emplace_back();
      table.categorical.back().name = name;
    }
    for (const auto& name : text_names_) {
      table.text.emplace_back();
      table.text.back().name = name;
    }
  }

  // Parses the numeric cells into `numbers` without storing anything, so a bad row leaves no
  // partial values behind.
  bool parse(const CsvRecord& r, const FeatureTable& table, std::vector<float>& numbers,
             RowError& error) const {
    numbers.resize(numeric_.size());
    for (std::size_t i = 0; i < numeric_.size(); ++i) {
      std::string_view cell = trim(r.fields[numeric_[i]]);
      numbers[i] = kMissing;
      if (cell.empty()) continue;
      if (!parse_number_cell(cell, numbers[i], error)) {
        error.reason = "column '" + table.numeric[i].name + "': " + error.reason;
        return false;
      }
    }
    return true;
  }

  // Appends a log row's values (parsed numbers from parse()).
  void append(const CsvRecord& r, const std::vector<float>& numbers, FeatureTable& table,
              std::vector<Interner>& interners) const {
    for (std::size_t i = 0; i < numeric_.size(); ++i) table.numeric[i].values.push_back(numbers[i]);
    interners.resize(categorical_.size());
    for (std::size_t i = 0; i < categorical_.size(); ++i) {
      auto& c = table.categorical[i];
      std::string_view cell = trim(r.fields[categorical_[i]]);
      c.values.push_back(cell.empty() ? kNoId : interners[i](c.dictionary, cell));
    }
    for (std::size_t i = 0; i < text_.size(); ++i) table.text[i].push_back(r.fields[text_[i]]);
  }

  // Sets a per-entity table's values at `index` (ids arrive in any order). Text is kept in an
  // append-only arena, so it goes to `text_by_id` (one vector per text column) and the text
  // columns are built once the table is read.
  void store_at(const CsvRecord& r, const std::vector<float>& numbers, FeatureTable& table,
                std::size_t index, std::vector<std::vector<std::string>>& text_by_id) const {
    for (std::size_t i = 0; i < numeric_.size(); ++i) {
      auto& v = table.numeric[i].values;
      if (v.size() <= index) v.resize(index + 1, kMissing);
      v[index] = numbers[i];
    }
    for (std::size_t i = 0; i < categorical_.size(); ++i) {
      auto& c = table.categorical[i];
      if (c.values.size() <= index) c.values.resize(index + 1, kNoId);
      std::string_view cell = trim(r.fields[categorical_[i]]);
      c.values[index] = cell.empty() ? kNoId : c.dictionary.intern(cell);
    }
    for (std::size_t i = 0; i < text_.size(); ++i) {
      auto& t = text_by_id[i];
      if (t.size() <= index) t.resize(index + 1);
      t[index] = std::string(r.fields[text_[i]]);
    }
  }

 private:
  std::vector<std::size_t> numeric_, categorical_, text_;
  std::vector<std::string> numeric_names_, categorical_names_, text_names_;
};

std::string fail_message(const std::string& file, std::size_t line, const std::string& reason,
                         const SettingNames& names) {
  return file + ":" + std::to_string(line) + ": " + reason + " (" +
         names.assigned("data.bad_rows", "\"fail\"") + "; " +
         (names.from_command() ? "give " + names.setting("data.bad_rows", "skip")
                               : std::string("set it to \"skip\"")) +
         " to skip such rows)";
}

// Reasons quote cells, which may hold line breaks or control characters (inside quotes): the
// listed reason is one printable line, as inspect and the warnings show it.
void note_bad_row(const config::DataConfig& data, LoadReport& report, std::int64_t& rejected,
                  const std::string& file, std::size_t line, const RowError& error,
                  const SettingNames& names) {
  if (data.bad_rows == config::BadRows::kFail)
    throw DataError(fail_message(file, line, error.reason, names));
  ++rejected;
  ++report.rejected_by_reason[error.category];
  if (report.bad_rows.size() < static_cast<std::size_t>(data.show_bad_rows))
    report.bad_rows.push_back({file, line, printable(error.reason)});
}

// Adds a reader's escaped cells to the report; the first one found is kept (files and parts
// are added in order). `line_base`: lines before the reader's first one in the file; `header`:
// the file's, which a reader of a later part does not see.
void note_non_utf8(LoadReport& report, const CsvReader& reader, std::size_t line_base,
                   const std::vector<std::string>& header) {
  const NonUtf8Cells& cells = reader.non_utf8();
  if (cells.cells == 0) return;
  if (report.non_utf8_cells == 0) {
    const std::string column =
        "column " + std::to_string(cells.column) +
        (cells.column <= header.size() ? " ('" + header[cells.column - 1] + "')" : "");
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned>(cells.byte));
    report.first_non_utf8 = {reader.path(), cells.line + line_base,
                             column + ": byte " + byte + " is not UTF-8"};
  }
  report.non_utf8_cells += static_cast<std::int64_t>(cells.cells);
}

bool field_count_ok(const CsvRecord& r, std::size_t width, RowError& error) {
  if (!r.error.empty()) {
    error = {r.error, r.error};
    return false;
  }
  if (r.fields.size() != width) {
    error = {
        "expected " + std::to_string(width) + " fields, found " + std::to_string(r.fields.size()),
        "wrong field count"};
    return false;
  }
  return true;
}

// Optional role column: kNone when not configured.
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

std::size_t optional_column(const ColumnRef& ref, const CsvReader& reader, const std::string& key,
                            const SettingNames& names) {
  return ref.empty() ? kNone : resolve_column(ref, reader, key, "data", names);
}

// Where each role and feature column is in one log file, and how its rows become log rows.
struct LogBinding {
  // Columns are resolved in this order, so the first missing one is the one reported.
  LogBinding(const config::Config& config, const CsvReader& reader, const SettingNames& names)
      : user(optional_column(config.data.columns.user, reader, "data.columns.user", names)),
        item(optional_column(config.data.columns.item, reader, "data.columns.item", names)),
        task(config.data.columns.task_from == config::ColumnSource::kLog
                 ? resolve_column(config.data.columns.task, reader, "data.columns.task", "data",
                                  names)
                 : kNone),
        timestamp(optional_column(config.data.columns.timestamp, reader, "data.columns.timestamp",
                                  names)),
        event(optional_column(config.data.columns.event, reader, "data.columns.event", names)),
        rating(optional_column(config.data.columns.rating, reader, "data.columns.rating", names)),
        price(optional_column(config.data.columns.price, reader, "data.columns.price", names)),
        quantity(
            optional_column(config.data.columns.quantity, reader, "data.columns.quantity", names)),
        label_class(config.task.label.class_from == config::ColumnSource::kLog
                        ? optional_column(config.task.label.class_column, reader,
                                          "task.label.class_column", names)
                        : kNone),
        features(config.data.features, reader, "data.features", "data", names),
        time_format(config.data.time_format),
        width(reader.width()),
        names(names) {}
  std::size_t user, item, task, timestamp, event, rating, price, quantity, label_class;
  FeatureColumnsBinding features;
  TimeFormat time_format;
  std::size_t width;
  const SettingNames& names;  // ParseOptions::names, for the messages of bad rows
};

// The rows of one part of one log file, with ids local to the part, and what the report says
// about them. Lines are counted from the part's start until line_base says where that is.
struct LogPart {
  std::uint64_t begin = 0;           // file offset of the part's first byte
  std::uint64_t expected_bytes = 0;  // its size, for reserving its columns
  std::unique_ptr<CsvReader> reader;
  PurchaseLog log;
  LoadReport report;            // rows_read, rows_rejected, reasons, bad_rows, rows_without_task
  std::optional<BadRow> fatal;  // the first bad row when data.bad_rows = "fail"
  std::size_t line_base = 0;    // lines before the part's first line in the file
  std::exception_ptr failure;   // what the part's thread threw (a read error)
  // Per-column last-value caches for interning.
  Interner user, item, task, event, label_class;
  std::vector<Interner> categorical;
};

void reserve_rows(PurchaseLog& log, std::size_t n) {
  for (auto* v : {&log.user, &log.item, &log.task, &log.event, &log.label_class}) v->reserve(n);
  for (auto* v : {&log.rating, &log.price, &log.quantity}) v->reserve(n);
  log.timestamp.reserve(n);
  for (auto& c : log.features.numeric) c.values.reserve(n);
  for (auto& c : log.features.categorical) c.values.reserve(n);
  for (auto& c : log.features.text) c.offsets.reserve(n + 1);
}

// Parses rows from the part's reader until it stops, or until the first bad row when
// data.bad_rows = "fail". `bytes_done` counts what all parts have read; the one part that runs
// on the calling thread passes `progress` to show it (Progress is not thread-safe).
void parse_rows(const config::DataConfig& data, const LogBinding& b, LogPart& part,
                std::atomic<std::uint64_t>& bytes_done, Progress* progress, double done_mb) {
  CsvReader& reader = *part.reader;
  PurchaseLog& log = part.log;
  LoadReport& report = part.report;
  const bool fail = data.bad_rows == config::BadRows::kFail;
  const auto show = static_cast<std::size_t>(data.show_bad_rows);
  CsvRecord record;
  RowError error;
  std::vector<float> feature_numbers;
  const std::size_t number_columns[3] = {b.rating, b.price, b.quantity};
  const char* const number_names[3] = {"rating", "price", "quantity"};
  // Timestamps read, by TimeReading: what data.time_format = "auto" decided.
  std::int64_t time_readings[static_cast<std::size_t>(TimeReading::kIso8601) + 1] = {};
  std::size_t reported_bytes = reader.bytes_read();
  auto reject = [&](const RowError& e) {
    if (fail) {
      part.fatal = BadRow{reader.path(), record.line, e.reason};
      return;
    }
    ++report.rows_rejected;
    ++report.rejected_by_reason[e.category];
    if (report.bad_rows.size() < show)
      report.bad_rows.push_back({reader.path(), record.line, printable(e.reason)});
  };
  while (!part.fatal && reader.next(record)) {
    if (report.rows_read == 4096 && part.expected_bytes > 0) {
      // Reserve what the part will hold, judged by its first rows, so the columns do not grow
      // by copying; pages beyond what is filled are never touched, so over-reserving is cheap.
      const double per_byte =
          4096.0 / static_cast<double>(std::max<std::size_t>(1, reader.bytes_read()));
      reserve_rows(log, static_cast<std::size_t>(1.05 * per_byte *
                                                 static_cast<double>(part.expected_bytes)) +
                            4096);
    }
    if ((++report.rows_read & 0xFFFF) == 0) {
      bytes_done += reader.bytes_read() - reported_bytes;
      reported_bytes = reader.bytes_read();
      if (progress) progress->update(done_mb + static_cast<double>(bytes_done.load()) / 1e6);
    }
    if (!field_count_ok(record, b.width, error) ||
        !b.features.parse(record, log.features, feature_numbers, error)) {
      reject(error);
      continue;
    }
    float numbers[3];
    bool ok = true;
    for (int k = 0; k < 3 && ok; ++k) {
      numbers[k] = kMissing;
      if (number_columns[k] == kNone) continue;
      std::string_view cell = trim(record.fields[number_columns[k]]);
      if (cell.empty()) continue;
      if (!parse_number_cell(cell, numbers[k], error)) {
        error.reason = std::string(number_names[k]) + " column: " + error.reason;
        reject(error);
        ok = false;
      }
    }
    if (!ok) continue;
    std::int64_t time = kNoTime;
    std::optional<TimeReading> reading;
    if (b.timestamp != kNone) {
      std::string_view cell = trim(record.fields[b.timestamp]);
      if (!cell.empty()) {
        const std::optional<ParsedTime> parsed = parse_time(cell, b.time_format);
        if (!parsed) {
          reject({"timestamp column: " + quoted_value(cell) + " is not " +
                      time_format_text(b.time_format) + " (" +
                      b.names.assigned("data.time_format",
                                       "\"" + std::string(enum_name(b.time_format)) + "\"") +
                      ")",
                  "unparsable timestamp"});
          continue;
        }
        if (!plausible_time(parsed->seconds)) {
          reject({"timestamp column: " +
                      implausible_time_text(cell, *parsed, b.time_format,
                                            (b.names.from_command() ? "give " : "set ") +
                                                b.names.setting("data.time_format", "")),
                  "implausible timestamp"});
          continue;
        }
        time = parsed->seconds;
        reading = parsed->reading;
      }
    }
    if (reading) ++time_readings[static_cast<std::size_t>(*reading)];
    auto intern = [&](std::size_t column, Dictionary& dict, Interner& interner) -> std::int32_t {
      if (column == kNone) return kNoId;
      std::string_view cell = trim(record.fields[column]);
      return cell.empty() ? kNoId : interner(dict, cell);
    };
    const std::int32_t task = intern(b.task, log.tasks, part.task);
    // A task key from a side table is joined after the load, and counted there.
    if (task == kNoId && b.task != kNone) ++report.rows_without_task;
    log.task.push_back(task);
    log.user.push_back(intern(b.user, log.users, part.user));
    log.item.push_back(intern(b.item, log.items, part.item));
    log.event.push_back(intern(b.event, log.events, part.event));
    log.label_class.push_back(intern(b.label_class, log.classes, part.label_class));
    log.timestamp.push_back(time);
    log.rating.push_back(numbers[0]);
    log.price.push_back(numbers[1]);
    log.quantity.push_back(numbers[2]);
    b.features.append(record, feature_numbers, log.features, part.categorical);
  }
  for (TimeReading r : enum_values<TimeReading>())
    if (time_readings[static_cast<std::size_t>(r)] > 0)
      report.timestamps_read_as[enum_name(r)] += time_readings[static_cast<std::size_t>(r)];
  bytes_done += reader.bytes_read() - reported_bytes;
}

// Where to cut a file into `parts` pieces: just after the first line end ('\n', or a CR not
// followed by '\n': classic-Mac files have no '\n' at all) at or after each even share of
// [start, size). Cuts that coincide or reach the end are dropped.
std::vector<std::uint64_t> cut_points(const std::string& path, std::uint64_t start,
                                      std::uint64_t size, int parts) {
  std::vector<std::uint64_t> cuts;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cuts;  // the parts would fail to open too; read it in one piece
  std::vector<char> window(std::size_t{64} << 10);
  for (int k = 1; k < parts; ++k) {
    std::uint64_t at =
        start + (size - start) * static_cast<std::uint64_t>(k) / static_cast<std::uint64_t>(parts);
    if (!cuts.empty()) at = std::max(at, cuts.back());
    std::optional<std::uint64_t> cut;
    while (!cut && at < size) {
      const ssize_t n = ::pread(fd, window.data(), window.size(), static_cast<off_t>(at));
      if (n <= 0) break;
      // The window's last byte is only looked at as the next window's first, so that a CR
      // always has the byte after it in view.
      const std::size_t usable =
          static_cast<std::size_t>(n) - (at + static_cast<std::uint64_t>(n) < size ? 1 : 0);
      for (std::size_t i = 0; i < usable && !cut; ++i) {
        const char c = window[i];
        if (c == '\n' ||
            (c == '\r' && (i + 1 == static_cast<std::size_t>(n) || window[i + 1] != '\n')))
          cut = at + i + 1;
      }
      if (usable == 0) break;
      at += usable;
    }
    if (!cut || *cut >= size) break;
    if (cuts.empty() || *cut > cuts.back()) cuts.push_back(*cut);
  }
  ::close(fd);
  return cuts;
}

// Re-numbers `from`'s ids into `into`, in `from`'s id order, so ids stay in order of first
// appearance over the joined rows.
std::vector<std::int32_t> merge_dictionary(Dictionary& into, const Dictionary& from) {
  std::vector<std::int32_t> remap(from.size());
  for (std::size_t i = 0; i < from.size(); ++i) remap[i] = into.intern(from.names()[i]);
  return remap;
}

// Each appended column is freed at once, so joining parts holds little more than the log.
void append_ids(std::vector<std::int32_t>& into, std::vector<std::int32_t>& from,
                const std::vector<std::int32_t>& remap) {
  for (const std::int32_t id : from) into.push_back(id == kNoId ? kNoId : remap[id]);
  std::vector<std::int32_t>().swap(from);
}

template <typename T>
void append_values(std::vector<T>& into, std::vector<T>& from) {
  into.insert(into.end(), from.begin(), from.end());
  std::vector<T>().swap(from);
}

// Appends a part's rows to the log (see the file comment).
void append_part(PurchaseLog& log, PurchaseLog&& part) {
  auto no_ids = [](const PurchaseLog& l) {
    bool none = l.users.size() == 0 && l.items.size() == 0 && l.tasks.size() == 0 &&
                l.events.size() == 0 && l.classes.size() == 0;
    for (const auto& c : l.features.categorical) none = none && c.dictionary.size() == 0;
    return none;
  };
  if (log.size() == 0 && no_ids(log) &&
      log.features.numeric.size() == part.features.numeric.size() &&
      log.features.categorical.size() == part.features.categorical.size() &&
      log.features.text.size() == part.features.text.size()) {
    // Nothing to re-number: take the part's columns whole, keeping the log's own flags and
    // column names.
    PurchaseLog taken = std::move(part);
    std::swap(taken.has_user_, log.has_user_);
    std::swap(taken.has_item_, log.has_item_);
    std::swap(taken.has_timestamp_, log.has_timestamp_);
    for (std::size_t i = 0; i < log.features.numeric.size(); ++i)
      taken.features.numeric[i].name = log.features.numeric[i].name;
    for (std::size_t i = 0; i < log.features.categorical.size(); ++i)
      taken.features.categorical[i].name = log.features.categorical[i].name;
    for (std::size_t i = 0; i < log.features.text.size(); ++i)
      taken.features.text[i].name = log.features.text[i].name;
    log = std::move(taken);
    return;
  }
  append_ids(log.user, part.user, merge_dictionary(log.users, part.users));
  append_ids(log.item, part.item, merge_dictionary(log.items, part.items));
  append_ids(log.task, part.task, merge_dictionary(log.tasks, part.tasks));
  append_ids(log.event, part.event, merge_dictionary(log.events, part.events));
  append_ids(log.label_class, part.label_class, merge_dictionary(log.classes, part.classes));
  append_values(log.timestamp, part.timestamp);
  append_values(log.rating, part.rating);
  append_values(log.price, part.price);
  append_values(log.quantity, part.quantity);
  FeatureTable& into = log.features;
  FeatureTable& from = part.features;
  if (into.numeric.empty() && into.categorical.empty() && into.text.empty()) {
    // Only an empty earlier file left the table unnamed: this part's names stand.
    for (auto& c : from.numeric) into.numeric.push_back({c.name, {}});
    for (auto& c : from.categorical) {
      into.categorical.emplace_back();
      into.categorical.back().name = c.name;
    }
    for (auto& c : from.text) {
      into.text.emplace_back();
      into.text.back().name = c.name;
    }
  }
  for (std::size_t i = 0; i < into.numeric.size(); ++i)
    append_values(into.numeric[i].values, from.numeric[i].values);
  for (std::size_t i = 0; i < into.categorical.size(); ++i) {
    auto& c = into.categorical[i];
    append_ids(c.values, from.categorical[i].values,
               merge_dictionary(c.dictionary, from.categorical[i].dictionary));
  }
  for (std::size_t i = 0; i < into.text.size(); ++i) {
    TextColumn& t = from.text[i];
    for (std::size_t row = 0; row < t.size(); ++row) into.text[i].push_back(t.at(row));
    t = TextColumn();
  }
  part = PurchaseLog();  // free the part's memory before the next one is appended
}

void append_report(const config::DataConfig& data, LoadReport& report, const LogPart& part,
                   const std::vector<std::string>& header) {
  note_non_utf8(report, *part.reader, part.line_base, header);
  const LoadReport& r = part.report;
  report.rows_read += r.rows_read;
  report.rows_rejected += r.rows_rejected;
  report.rows_without_task += r.rows_without_task;
  for (const auto& [reading, count] : r.timestamps_read_as)
    report.timestamps_read_as[reading] += count;
  for (const auto& [reason, count] : r.rejected_by_reason)
    report.rejected_by_reason[reason] += count;
  for (const BadRow& bad : r.bad_rows) {
    if (report.bad_rows.size() >= static_cast<std::size_t>(data.show_bad_rows)) break;
    report.bad_rows.push_back({bad.file, bad.line + part.line_base, bad.reason});
  }
}

// Parses one log file into `log` and `report`, in parallel parts when it is large enough.
void load_log_file(const config::Config& config, const std::string& file,
                   const ParseOptions& options, PurchaseLog& log, LoadReport& report,
                   Progress& progress, double& done_mb) {
  const auto& data = config.data;
  auto head = std::make_unique<CsvReader>(
      file, CsvOptions{data.format.delimiter_char(), data.format.header, '"'});
  if (head->width() == 0) return;  // an empty part adds nothing
  const LogBinding binding(config, *head, options.names);
  binding.features.name_columns(log.features);

  const std::uint64_t size = std::max(head->file_size(), head->offset());
  const std::uint64_t start = head->offset();
  const int threads = parse_threads(config, options);
  const std::uint64_t by_size = (size - start) / std::max<std::uint64_t>(1, options.min_part_bytes);
  const int wanted = static_cast<int>(std::min<std::uint64_t>(by_size, 64));
  const std::vector<std::uint64_t> cuts =
      cut_points(file, start, size, std::max(1, std::min(threads, wanted)));

  std::vector<LogPart> parts(cuts.size() + 1);
  // The last part reads to the end of the file, whatever its size says.
  auto part_end = [&](std::size_t k) {
    return k < cuts.size() ? cuts[k] : std::numeric_limits<std::uint64_t>::max();
  };
  for (std::size_t k = 0; k < parts.size(); ++k) {
    LogPart& part = parts[k];
    if (k == 0) {
      part.reader = std::move(head);
      part.reader->set_end(part_end(0));
    } else {
      part.begin = cuts[k - 1];
      part.reader =
          std::make_unique<CsvReader>(file, CsvOptions{0, false, '"'},
                                      CsvPart{part.begin, part_end(k), parts[0].reader->delimiter(),
                                              binding.width, parts[0].reader->cr_line_ends()});
    }
    binding.features.name_columns(part.log.features);
    // The first part reserves for the whole file: the other parts are appended to its columns
    // in place, so joining them needs no second copy of the log in memory.
    part.expected_bytes =
        std::min(size, k == 0 ? size : part_end(k)) - std::min(size, part.reader->offset());
  }

  std::atomic<std::uint64_t> bytes_done{0};
  std::vector<std::future<void>> running;
  for (std::size_t k = 1; k < parts.size(); ++k) {
    running.push_back(std::async(std::launch::async, [&, k] {
      try {
        parse_rows(data, binding, parts[k], bytes_done, nullptr, 0);
      } catch (...) {
        parts[k].failure = std::current_exception();
      }
    }));
  }
  try {
    parse_rows(data, binding, parts[0], bytes_done, &progress, done_mb);
  } catch (...) {
    parts[0].failure = std::current_exception();
  }
  for (auto& r : running) r.wait();

  // Check the cuts in file order; the last kept part is the one whose reader has read the file
  // up to here.
  std::vector<LogPart*> kept = {&parts[0]};
  for (std::size_t k = 1;; ++k) {
    LogPart& live = *kept.back();
    if (live.failure) std::rethrow_exception(live.failure);
    if (live.fatal) {
      const BadRow& bad = *live.fatal;
      throw DataError(fail_message(bad.file, bad.line + live.line_base, bad.reason, options.names));
    }
    if (k == parts.size()) break;
    LogPart& next = parts[k];
    if (live.reader->offset() == next.begin) {
      next.line_base = live.line_base + live.reader->line() - 1;
      kept.push_back(&next);
      continue;
    }
    // The cut fell inside a quoted field that spans lines: `next` did not start at a record,
    // so its rows are dropped and `live` reads on through its bytes.
    next = LogPart();
    live.reader->set_end(part_end(k));
    parse_rows(data, binding, live, bytes_done, &progress, done_mb);
  }

  const std::uint64_t bytes = kept.back()->reader->offset();  // the whole file, now
  if (kept.size() > 1) {
    std::size_t rows = log.size();
    for (const LogPart* part : kept) rows += part->log.size();
    if (log.size() > 0) reserve_rows(log, rows);
    for (LogPart* part : kept) {
      append_report(data, report, *part, parts[0].reader->header());
      append_part(log, std::move(part->log));
      if (log.size() < rows) reserve_rows(log, rows);  // after the first part moved in
    }
  } else {
    append_report(data, report, parts[0], parts[0].reader->header());
    append_part(log, std::move(parts[0].log));
  }
  report.bytes += static_cast<std::int64_t>(bytes);
  done_mb += static_cast<double>(bytes) / 1e6;
  progress.update(done_mb);
  throw_if_interrupted("reading '" + file + "'");
}

// A task or class column read from a side table (data.columns.task_from,
// task.label.class_from): its value per joined id, from the first side table of the join whose
// first file has the column.
struct JoinedColumn {
  ColumnRef ref;
  std::string key;  // its config path, for messages
  config::JoinKey join = config::JoinKey::kItem;
  std::optional<std::size_t> table;  // the side table it was found in
  Dictionary values;
  std::vector<std::int32_t> value_of_id;  // by user / item id; kNoId: no row, or an empty cell
};

std::string side_table_key(std::size_t index) {
  return "data.side_tables[" + std::to_string(index) + "]";
}

// What a file without a record holds, when that is nothing to read: "is empty", "holds only a
// byte-order mark", "holds only blank lines"; "" for a file with text in it (a header).
std::string no_text(const std::string& file) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  // A device or pipe (/dev/null, /dev/stdin) has no size to tell an empty one from a header.
  if (ec) return std::filesystem::is_regular_file(file, ec) ? "" : "gave no data rows";
  if (size == 0) return "is empty";
  constexpr std::uintmax_t kLook = 1 << 16;  // a longer file without a record has a header
  if (size > kLook) return "";
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const bool bom = starts_with(text, "\xEF\xBB\xBF");
  if (bom) text.erase(0, 3);
  if (text.find_first_not_of("\r\n") != std::string::npos) return "";
  return text.empty() ? "holds only a byte-order mark" : "holds only blank lines";
}

// Why the log or a side table holds no row, per file: "'a.csv' is empty", "'a.csv' has only
// its header line".
std::string no_rows_text(const std::vector<std::string>& files, const config::CsvFormat& format) {
  std::vector<std::string> parts;
  for (const auto& file : files) {
    std::string why = no_text(file);
    if (why.empty()) why = format.header ? "has only its header line" : "holds no record";
    parts.push_back("'" + file + "' " + why);
  }
  return join(parts, ", ");
}

void load_side_table(const config::SideTable& spec, std::size_t table_index,
                     const config::DataConfig& data, PurchaseLog& log, LoadReport& report,
                     std::vector<JoinedColumn>& joined, const SettingNames& names) {
  const bool by_item = spec.join == config::JoinKey::kItem;
  Dictionary& ids = by_item ? log.items : log.users;
  FeatureTable& table = by_item ? log.item_attributes : log.user_attributes;
  const std::size_t ids_in_log = ids.size();
  const std::string key = side_table_key(table_index);
  SideTableReport side;
  side.join = enum_name(spec.join);
  side.files = spec.files;
  side.duplicates = enum_name(spec.duplicates);
  std::vector<bool> seen;
  // Where each id was first read (file index, line), for the duplicate-key error.
  std::vector<std::pair<std::size_t, std::size_t>> first_at;
  // Several side tables may join on the same id; each appends its own columns to the table.
  FeatureTable own;
  std::vector<std::vector<std::string>> text_by_id(spec.features.text.size());
  std::vector<float> numbers;
  for (std::size_t f = 0; f < spec.files.size(); ++f) {
    const std::string& file = spec.files[f];
    CsvReader reader(file, {spec.format.delimiter_char(), spec.format.header, '"'});
    std::size_t key_column = resolve_column(spec.key, reader, key + ".key", key);
    FeatureColumnsBinding binding(spec.features, reader, key + ".features", key);
    binding.name_columns(own);
    // The joined columns this table holds: claimed by its first file, then required in the rest.
    std::vector<std::pair<JoinedColumn*, std::size_t>> mine;
    for (auto& c : joined) {
      if (c.join != spec.join || (c.table && *c.table != table_index)) continue;
      if (!c.table) {
        if (f > 0 || !find_column(c.ref, reader, c.key + " (in " + key + ")")) continue;
        c.table = table_index;
      }
      mine.emplace_back(&c, resolve_column(c.ref, reader, c.key + " (in " + key + ")", key));
    }
    CsvRecord record;
    RowError error;
    while (reader.next(record)) {
      ++side.rows;
      if (!field_count_ok(record, reader.width(), error) ||
          !binding.parse(record, own, numbers, error)) {
        note_bad_row(data, report, side.rejected, file, record.line, error, names);
        continue;
      }
      std::string_view id_text = trim(record.fields[key_column]);
      if (id_text.empty()) {
        note_bad_row(data, report, side.rejected, file, record.line,
                     {"empty id in key column " + spec.key.describe(), "empty side-table key"},
                     names);
        continue;
      }
      auto id = static_cast<std::size_t>(ids.intern(id_text));
      if (seen.size() <= id) {
        seen.resize(id + 1, false);
        first_at.resize(id + 1);
      }
      if (seen[id]) {
        if (spec.duplicates == config::DuplicateKeys::kError) {
          const auto& [first_file, first_line] = first_at[id];
          throw DataError(file + ":" + std::to_string(record.line) + ": " + side.join + " id " +
                          quoted_value(id_text) + " again (first at " + spec.files[first_file] +
                          ":" + std::to_string(first_line) + "); " + key +
                          " must hold one row per id: remove the duplicates, or set " + key +
                          ".duplicates = \"first\" to keep each id's first row");
        }
        ++side.duplicate_keys;
        continue;
      }
      seen[id] = true;
      first_at[id] = {f, record.line};
      binding.store_at(record, numbers, own, id, text_by_id);
      for (auto& [column, index] : mine) {
        std::string_view cell = trim(record.fields[index]);
        auto& values = column->value_of_id;
        if (values.size() <= id) values.resize(id + 1, kNoId);
        values[id] = cell.empty() ? kNoId : column->values.intern(cell);
      }
    }
    note_non_utf8(report, reader, 0, reader.header());
  }
  if (side.rows == side.rejected)
    throw DataError(key + ": " +
                    (side.rows == 0
                         ? no_rows_text(spec.files, spec.format)
                         : "all " + std::to_string(side.rows) + " rows were rejected as bad rows") +
                    ": a side table needs at least one row");
  for (std::size_t i = 0; i < own.text.size(); ++i)
    for (const auto& text : text_by_id[i]) own.text[i].push_back(text);
  for (std::size_t id = 0; id < std::min(ids_in_log, seen.size()); ++id)
    side.log_ids_matched += seen[id] ? 1 : 0;
  side.log_ids_total = static_cast<std::int64_t>(ids_in_log);
  for (auto& c : own.numeric) table.numeric.push_back(std::move(c));
  for (auto& c : own.categorical) table.categorical.push_back(std::move(c));
  for (auto& c : own.text) table.text.push_back(std::move(c));
  report.side_tables.push_back(side);
}

// Each row's value of a joined column, by the row's user or item id, interned into `into` in
// order of first appearance in the log (as a log column's values would be).
void join_column(const JoinedColumn& column, const std::vector<std::int32_t>& row_ids,
                 Dictionary& into, std::vector<std::int32_t>& values) {
  into = Dictionary();
  for (std::size_t r = 0; r < row_ids.size(); ++r) {
    const std::int32_t id = row_ids[r];
    const std::int32_t v = id == kNoId || static_cast<std::size_t>(id) >= column.value_of_id.size()
                               ? kNoId
                               : column.value_of_id[static_cast<std::size_t>(id)];
    values[r] = v == kNoId ? kNoId : into.intern(column.values.name(v));
  }
}

// Pads every per-entity column to the number of ids, so lookups by id never go out of range.
void pad_table(FeatureTable& table, std::size_t n) {
  for (auto& c : table.numeric) c.values.resize(n, kMissing);
  for (auto& c : table.categorical) c.values.resize(n, kNoId);
  for (auto& c : table.text)
    while (c.size() < n) c.push_back("");
}

// "wrong field count 398, unparsable number 2"
std::string rejection_reasons(const LoadReport& report) {
  std::vector<std::string> parts;
  for (const auto& [reason, count] : report.rejected_by_reason)
    parts.push_back(reason + " " + with_thousands(count));
  return join(parts, ", ");
}

}  // namespace

std::vector<std::string> load_warnings(const LoadReport& report) {
  std::vector<std::string> lines;
  std::vector<std::string> counts;
  if (report.rows_rejected > 0)
    counts.push_back(with_thousands(report.rows_rejected) + " of " +
                     with_thousands(report.rows_read) + " log rows");
  for (const SideTableReport& side : report.side_tables)
    if (side.rejected > 0)
      counts.push_back(with_thousands(side.rejected) + " of " + with_thousands(side.rows) +
                       " rows of the " + side.join + " table " + join(side.files, ", "));
  if (!counts.empty()) {
    lines.push_back("rejected " + join(counts, " and ") +
                    " (data.bad_rows = \"skip\"): " + rejection_reasons(report) +
                    (report.bad_rows.empty() ? "" : "; the first of them:"));
    for (const BadRow& bad : report.bad_rows)
      lines.push_back("  " + bad.file + ":" + std::to_string(bad.line) + ": " + bad.reason);
  }
  if (report.non_utf8_cells > 0) {
    const BadRow& first = report.first_non_utf8;
    lines.push_back(with_thousands(report.non_utf8_cells) +
                    " cell(s) are not UTF-8; they are kept with those bytes written as \\xHH "
                    "(the first: " +
                    first.file + ":" + std::to_string(first.line) + ": " + first.reason +
                    "); for a Latin-1 export, convert it: iconv -f latin1 -t utf-8");
  }
  return lines;
}

void warn_about_load(const LoadReport& report) {
  // A command may load the same log twice (train's closing evaluation reloads it): the second
  // time says nothing new.
  static std::mutex mutex;
  static std::set<std::string> said;
  const std::lock_guard<std::mutex> lock(mutex);
  for (const std::string& line : load_warnings(report))
    if (said.insert(line).second) spdlog::warn("{}", line);
}

int parse_threads(const config::Config& config, const ParseOptions& options) {
  return options.threads > 0 ? options.threads : runtime::resolve_threads(config.run.threads);
}

PurchaseLog load_purchase_log(const config::Config& config, LoadReport& report,
                              const ParseOptions& options) {
  const auto& data = config.data;
  const auto& cols = data.columns;
  PurchaseLog log;
  log.has_user_ = !cols.user.empty();
  log.has_item_ = !cols.item.empty();
  log.has_timestamp_ = !cols.timestamp.empty();
  report.files = data.files;
  double total_mb = 0, done_mb = 0;
  for (const auto& file : data.files) {
    std::error_code ec;
    auto size = std::filesystem::file_size(file, ec);
    if (!ec) total_mb += static_cast<double>(size) / 1e6;
  }
  Progress progress("reading purchase log", "MB", total_mb);
  const auto started = std::chrono::steady_clock::now();
  for (const auto& file : data.files)
    load_log_file(config, file, options, log, report, progress, done_mb);
  progress.finish();
  if (log.size() == 0 && report.rows_read == 0)
    throw DataError(options.names.name("data.files") +
                    ": the log has no rows: " + no_rows_text(data.files, data.format));
  if (log.size() == 0) {
    // Otherwise the next step fails on an empty log with a message that hides why.
    std::string message = options.names.name("data.files") + ": every one of the " +
                          with_thousands(report.rows_read) +
                          " rows of the purchase log was rejected (" + rejection_reasons(report) +
                          ")";
    if (!report.bad_rows.empty()) {
      const BadRow& first = report.bad_rows.front();
      message +=
          "; the first: " + first.file + ":" + std::to_string(first.line) + ": " + first.reason;
    }
    throw DataError(message);
  }
  if (report.timestamps_read_as.size() > 1) {
    std::vector<std::string> parts;
    for (TimeReading reading : enum_values<TimeReading>()) {
      const auto it = report.timestamps_read_as.find(enum_name(reading));
      if (it != report.timestamps_read_as.end())
        parts.push_back(with_thousands(it->second) + " as " + time_reading_text(reading));
    }
    spdlog::warn("the timestamp column mixes units: {} (data.time_format = \"{}\")",
                 join(parts, ", "), enum_name(data.time_format));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  // scripts/bench_ingest.sh reads this line.
  spdlog::debug("parsed the log: {} rows, {:.1f} MB in {:.3f} s ({:.0f} MB/s, {:.0f} rows/s)",
                report.rows_read, done_mb, seconds, done_mb / std::max(seconds, 1e-9),
                static_cast<double>(report.rows_read) / std::max(seconds, 1e-9));
  pad_table(log.features, log.size());

  std::vector<JoinedColumn> joined;
  auto want = [&](config::ColumnSource from, const ColumnRef& ref, const std::string& key) {
    if (from == config::ColumnSource::kLog || ref.empty()) return;
    JoinedColumn c;
    c.ref = ref;
    c.key = key;
    c.join = from == config::ColumnSource::kItem ? config::JoinKey::kItem : config::JoinKey::kUser;
    joined.push_back(std::move(c));
  };
  want(cols.task_from, cols.task, "data.columns.task");
  want(config.task.label.class_from, config.task.label.class_column, "task.label.class_column");
  for (std::size_t i = 0; i < data.side_tables.size(); ++i)
    load_side_table(data.side_tables[i], i, data, log, report, joined, options.names);
  for (const JoinedColumn& c : joined) {
    const std::string join_name = enum_name(c.join);
    if (!c.table)
      throw DataError(c.key + " = " + c.ref.describe() + " (from the " + join_name +
                      " table): no side table with join = \"" + join_name +
                      "\" has that column in its first file");
    const std::vector<std::int32_t>& row_ids =
        c.join == config::JoinKey::kItem ? log.item : log.user;
    if (c.key == "data.columns.task") {
      join_column(c, row_ids, log.tasks, log.task);
      report.rows_without_task = std::count(log.task.begin(), log.task.end(), kNoId);
    } else {
      join_column(c, row_ids, log.classes, log.label_class);
    }
  }
  pad_table(log.user_attributes, log.users.size());
  pad_table(log.item_attributes, log.items.size());
  return log;
}

PurchaseLog load_input_file(const config::Config& run, const config::InputFile& input,
                            LoadReport& report, ParseOptions options, config::Config* config) {
  const config::Config c = config::input_config(run, input, &options.names);
  PurchaseLog log = load_purchase_log(c, report, options);
  // The run's feature statistics know each feature column by the name the run's log gave it
  // (FeatureColumnsBinding): its config name, or for a column by position the log's header name,
  // or "#N" in a headerless log. The file's own header must not rename it.
  const bool run_headerless = !run.data.format.header;
  auto keep_run_names = [&](auto& columns, const std::vector<ColumnRef>& run_refs,
                            const std::vector<ColumnRef>& refs) {
    for (std::size_t i = 0; i < columns.size() && i < refs.size(); ++i) {
      if (!run_refs[i].name.empty()) {
        if (refs[i].name != run_refs[i].name || refs[i].position != run_refs[i].position)
          columns[i].name = run_refs[i].name;
      } else if (run_headerless) {
        columns[i].name = run_refs[i].describe();
      }
    }
  };
  const config::FeatureColumns &run_features = run.data.features, &features = c.data.features;
  keep_run_names(log.features.numeric, run_features.numeric, features.numeric);
  keep_run_names(log.features.categorical, run_features.categorical, features.categorical);
  keep_run_names(log.features.text, run_features.text, features.text);
  if (config) *config = c;
  return log;
}

}  // namespace ml::data
