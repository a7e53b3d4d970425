// Loading the purchase log and its side tables: see purchase_log.hpp.
#include "data/purchase_log.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "data/csv_reader.hpp"
#include "util/errors.hpp"
#include "util/progress.hpp"
#include "util/strings.hpp"
#include "util/time_parse.hpp"

namespace ml::data {

namespace {

using config::ColumnRef;

// Finds the field index of a configured column in one file; throws DataError naming the config
// key, the file and the columns it has.
std::size_t resolve_column(const ColumnRef& ref, const CsvReader& reader, const std::string& key) {
  if (ref.position > 0) {
    if (static_cast<std::size_t>(ref.position) > reader.width())
      throw DataError(key + " = " + std::to_string(ref.position) + ": '" + reader.path() +
                      "' has only " + std::to_string(reader.width()) + " columns");
    return static_cast<std::size_t>(ref.position - 1);
  }
  const auto& header = reader.header();
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == ref.name) return i;
  for (std::size_t i = 0; i < header.size(); ++i)  // tolerate case and padding differences
    if (to_lower(trim(header[i])) == to_lower(trim(ref.name))) return i;
  std::string message = key + " = '" + ref.name + "': no such column in '" + reader.path() + "'";
  std::string suggestion = closest_match(ref.name, header);
  if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
  message += "; its columns are: " + join(header, ", ");
  throw DataError(message);
}

struct RowError {
  std::string reason;
  std::string category;  // for counting: "wrong field count", "bad number", ...
};

// Column indices of one FeatureTable's columns in one file, and their parsing.
class FeatureColumnsBinding {
 public:
  FeatureColumnsBinding(const config::FeatureColumns& spec, FeatureTable& table,
                        const CsvReader& reader, const std::string& key) {
    auto bind = [&](const std::vector<ColumnRef>& refs, const char* kind,
                    std::vector<std::size_t>& out) {
      for (std::size_t i = 0; i < refs.size(); ++i)
        out.push_back(
            resolve_column(refs[i], reader, key + "." + kind + "[" + std::to_string(i) + "]"));
    };
    bind(spec.numeric, "numeric", numeric_);
    bind(spec.categorical, "categorical", categorical_);
    bind(spec.text, "text", text_);
    if (table.numeric.empty() && table.categorical.empty() && table.text.empty()) {
      auto name = [&](const ColumnRef& r, std::size_t index) {
        return r.name.empty() ? (reader.header().size() > index ? reader.header()[index]
                                                                : "#" + std::to_string(index + 1))
                              : r.name;
      };
      for (std::size_t i = 0; i < spec.numeric.size(); ++i)
        table.numeric.push_back({name(spec.numeric[i], numeric_[i]), {}});
      for (std::size_t i = 0; i < spec.categorical.size(); ++i) {
        table.categorical.emplace_back();
        table.categorical.back().name = name(spec.categorical[i], categorical_[i]);
      }
      for (std::size_t i = 0; i < spec.text.size(); ++i) {
        table.text.emplace_back();
        table.text.back().name = name(spec.text[i], text_[i]);
      }
    }
  }

  // Parses without storing, so a bad row leaves no partial values behind.
  bool check(const CsvRecord& r, const FeatureTable& table, RowError& error) const {
    for (std::size_t i = 0; i < numeric_.size(); ++i) {
      std::string_view cell = trim(r.fields[numeric_[i]]);
      if (!cell.empty() && !parse_double(cell)) {
        error = {
            "column '" + table.numeric[i].name + "': '" + std::string(cell) + "' is not a number",
            "unparsable number"};
        return false;
      }
    }
    return true;
  }

  // Appends the row's values (or sets them at `index` for per-entity tables). Text is kept in
  // an append-only arena, so per-entity tables, whose ids arrive in any order, pass
  // `text_by_id` (one vector per text column) and build their text columns once read.
  void store(const CsvRecord& r, FeatureTable& table, std::size_t index,
             std::vector<std::vector<std::string>>* text_by_id = nullptr) const {
    for (std::size_t i = 0; i < numeric_.size(); ++i) {
      auto& v = table.numeric[i].values;
      if (v.size() <= index) v.resize(index + 1, kMissing);
      auto parsed = parse_double(r.fields[numeric_[i]]);
      v[index] = parsed ? static_cast<float>(*parsed) : kMissing;
    }
    for (std::size_t i = 0; i < categorical_.size(); ++i) {
      auto& c = table.categorical[i];
      if (c.values.size() <= index) c.values.resize(index + 1, kNoId);
      std::string_view cell = trim(r.fields[categorical_[i]]);
      c.values[index] = cell.empty() ? kNoId : c.dictionary.intern(cell);
    }
    for (std::size_t i = 0; i < text_.size(); ++i) {
      if (text_by_id) {
        auto& t = (*text_by_id)[i];
        if (t.size() <= index) t.resize(index + 1);
        t[index] = std::string(r.fields[text_[i]]);
        continue;
      }
      auto& t = table.text[i];  // log rows arrive in order: index == t.size()
      while (t.size() < index) t.push_back("");
      if (t.size() == index) t.push_back(r.fields[text_[i]]);
    }
  }

 private:
  std::vector<std::size_t> numeric_, categorical_, text_;
};

void note_bad_row(const config::DataConfig& data, LoadReport& report, std::int64_t& rejected,
                  const std::string& file, std::size_t line, const RowError& error) {
  if (data.bad_rows == "fail")
    throw DataError(file + ":" + std::to_string(line) + ": " + error.reason +
                    " (data.bad_rows = \"fail\"; set it to \"skip\" to skip such rows)");
  ++rejected;
  ++report.rejected_by_reason[error.category];
  if (report.bad_rows.size() < static_cast<std::size_t>(data.show_bad_rows))
    report.bad_rows.push_back({file, line, error.reason});
}

bool field_count_ok(const CsvRecord& r, const CsvReader& reader, RowError& error) {
  if (!r.error.empty()) {
    error = {r.error, r.error};
    return false;
  }
  if (r.fields.size() != reader.width()) {
    error = {"expected " + std::to_string(reader.width()) + " fields, found " +
                 std::to_string(r.fields.size()),
             "wrong field count"};
    return false;
  }
  return true;
}

// Optional role column: kNone when not configured.
constexpr std::size_t kNone = static_cast<std::size_t>(-1);

struct LogBinding {
  std::size_t user = kNone, item = kNone, task = kNone, timestamp = kNone, event = kNone,
              rating = kNone, price = kNone, quantity = kNone, label_class = kNone;
};

std::size_t optional_column(const ColumnRef& ref, const CsvReader& reader, const std::string& key) {
  return ref.empty() ? kNone : resolve_column(ref, reader, key);
}

void load_side_table(const config::SideTable& spec, std::size_t table_index,
                     const config::DataConfig& data, PurchaseLog& log, LoadReport& report) {
  const bool by_item = spec.join == "item";
  Dictionary& ids = by_item ? log.items : log.users;
  FeatureTable& table = by_item ? log.item_attributes : log.user_attributes;
  const std::size_t ids_in_log = ids.size();
  const std::string key = "data.side_tables[" + std::to_string(table_index) + "]";
  SideTableReport side;
  side.join = spec.join;
  side.files = spec.files;
  std::vector<bool> seen;
  // Several side tables may join on the same id; each appends its own columns to the table.
  FeatureTable own;
  std::vector<std::vector<std::string>> text_by_id(spec.features.text.size());
  for (const auto& file : spec.files) {
    CsvReader reader(file, {spec.format.delimiter_char(), spec.format.header, '"'});
    std::size_t key_column = resolve_column(spec.key, reader, key + ".key");
    FeatureColumnsBinding binding(spec.features, own, reader, key + ".features");
    CsvRecord record;
    RowError error;
    while (reader.next(record)) {
      ++side.rows;
      if (!field_count_ok(record, reader, error) || !binding.check(record, own, error)) {
        note_bad_row(data, report, side.rejected, file, record.line, error);
        continue;
      }
      std::string_view id_text = trim(record.fields[key_column]);
      if (id_text.empty()) {
        note_bad_row(data, report, side.rejected, file, record.line,
                     {"empty id in key column " + spec.key.describe(), "empty side-table key"});
        continue;
      }
      auto id = static_cast<std::size_t>(ids.intern(id_text));
      if (seen.size() <= id) seen.resize(id + 1, false);
      if (seen[id]) {
        ++side.duplicate_keys;
        continue;
      }
      seen[id] = true;
      binding.store(record, own, id, &text_by_id);
    }
  }
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

// Pads every per-entity column to the number of ids, so lookups by id never go out of range.
void pad_table(FeatureTable& table, std::size_t n) {
  for (auto& c : table.numeric) c.values.resize(n, kMissing);
  for (auto& c : table.categorical) c.values.resize(n, kNoId);
  for (auto& c : table.text)
    while (c.size() < n) c.push_back("");
}

}  // namespace

PurchaseLog load_purchase_log(const config::Config& config, LoadReport& report) {
  const auto& data = config.data;
  const auto& cols = data.columns;
  const TimeFormat time_format = time_format_from_string(data.time_format);
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

  for (const auto& file : data.files) {
    CsvReader reader(file, {data.format.delimiter_char(), data.format.header, '"'});
    if (reader.width() == 0) continue;  // an empty part adds nothing
    LogBinding b;
    b.user = optional_column(cols.user, reader, "data.columns.user");
    b.item = optional_column(cols.item, reader, "data.columns.item");
    b.task = resolve_column(cols.task, reader, "data.columns.task");
    b.timestamp = optional_column(cols.timestamp, reader, "data.columns.timestamp");
    b.event = optional_column(cols.event, reader, "data.columns.event");
    b.rating = optional_column(cols.rating, reader, "data.columns.rating");
    b.price = optional_column(cols.price, reader, "data.columns.price");
    b.quantity = optional_column(cols.quantity, reader, "data.columns.quantity");
    b.label_class =
        optional_column(config.task.label.class_column, reader, "task.label.class_column");
    FeatureColumnsBinding features(data.features, log.features, reader, "data.features");

    CsvRecord record;
    RowError error;
    std::optional<std::int64_t> time;
    float numbers[3];
    const std::size_t number_columns[3] = {b.rating, b.price, b.quantity};
    const char* number_names[3] = {"rating", "price", "quantity"};
    while (reader.next(record)) {
      if ((++report.rows_read & 0xFFFF) == 0)
        progress.update(done_mb + static_cast<double>(reader.bytes_read()) / 1e6);
      auto reject = [&](const RowError& e) {
        note_bad_row(data, report, report.rows_rejected, file, record.line, e);
      };
      if (!field_count_ok(record, reader, error) || !features.check(record, log.features, error)) {
        reject(error);
        continue;
      }
      bool ok = true;
      for (int k = 0; k < 3 && ok; ++k) {
        numbers[k] = kMissing;
        if (number_columns[k] == kNone) continue;
        std::string_view cell = trim(record.fields[number_columns[k]]);
        if (cell.empty()) continue;
        auto v = parse_double(cell);
        if (!v) {
          reject({std::string(number_names[k]) + " column: '" + std::string(cell) +
                      "' is not a number",
                  "unparsable number"});
          ok = false;
        } else {
          numbers[k] = static_cast<float>(*v);
        }
      }
      if (!ok) continue;
      time = kNoTime;
      if (b.timestamp != kNone) {
        std::string_view cell = trim(record.fields[b.timestamp]);
        if (!cell.empty()) {
          time = parse_timestamp(cell, time_format);
          if (!time) {
            reject({"timestamp column: '" + std::string(cell) + "' is not a " +
                        (time_format == TimeFormat::kUnix      ? "unix time"
                         : time_format == TimeFormat::kIso8601 ? "ISO-8601 date/time"
                                                               : "unix time or ISO-8601 date/time"),
                    "unparsable timestamp"});
            continue;
          }
        }
      }
      auto intern = [&](std::size_t column, Dictionary& dict) -> std::int32_t {
        if (column == kNone) return kNoId;
        std::string_view cell = trim(record.fields[column]);
        return cell.empty() ? kNoId : dict.intern(cell);
      };
      std::int32_t task = intern(b.task, log.tasks);
      if (task == kNoId) ++report.rows_without_task;
      log.task.push_back(task);
      log.user.push_back(intern(b.user, log.users));
      log.item.push_back(intern(b.item, log.items));
      log.event.push_back(intern(b.event, log.events));
      log.label_class.push_back(intern(b.label_class, log.classes));
      log.timestamp.push_back(*time);
      log.rating.push_back(numbers[0]);
      log.price.push_back(numbers[1]);
      log.quantity.push_back(numbers[2]);
      features.store(record, log.features, log.size() - 1);
    }
    report.bytes += static_cast<std::int64_t>(reader.bytes_read());
    done_mb += static_cast<double>(reader.bytes_read()) / 1e6;
  }
  progress.update(done_mb);
  progress.finish();
  pad_table(log.features, log.size());

  for (std::size_t i = 0; i < data.side_tables.size(); ++i)
    load_side_table(data.side_tables[i], i, data, log, report);
  pad_table(log.user_attributes, log.users.size());
  pad_table(log.item_attributes, log.items.size());
  return log;
}

}  // namespace ml::data
