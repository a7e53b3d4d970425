// Text dataset loading: see text_dataset.hpp.
#include "data/text_dataset.hpp"

#include <algorithm>
#include <optional>

#include "data/dictionary.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"
#include "util/utf8.hpp"

namespace ml::data {

namespace {

// The column `name` of `reader`'s header: an exact match, else the one that matches ignoring
// case and padding; a DataError naming the file, its columns and the closest name otherwise.
std::size_t find_column(const CsvReader& reader, const std::string& role, const std::string& name) {
  const auto& header = reader.header();
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  std::optional<std::size_t> loose;
  for (std::size_t i = 0; i < header.size(); ++i)
    if (to_lower(trim(header[i])) == to_lower(trim(name))) {
      if (loose)
        throw DataError(role + " '" + name + "': '" + reader.path() + "' has several columns " +
                        "that match it ignoring case: '" + header[*loose] + "', '" + header[i] +
                        "'");
      loose = i;
    }
  if (loose) return *loose;
  if (header.empty() || (header.size() == 1 && header[0].empty()))
    throw DataError("'" + reader.path() +
                    "' is empty: expected a header line naming its columns (" + role + " '" + name +
                    "' among them) and the rows below it");
  std::string message = role + " '" + name + "': no such column in '" + reader.path() + "'";
  const std::string suggestion = closest_match(name, header);
  if (!suggestion.empty()) message += " (did you mean '" + suggestion + "'?)";
  throw DataError(message + "; its columns are: " + join(header, ", "));
}

struct RowError {
  std::string category;  // short, for rejected_by_reason
  std::string reason;
};

bool is_blank(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

}  // namespace

std::int32_t TextDataset::class_id(std::string_view name) const {
  const auto it = std::find(class_names.begin(), class_names.end(), name);
  return it == class_names.end() ? -1 : static_cast<std::int32_t>(it - class_names.begin());
}

std::string normalize_for_duplicates(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    // U+00A0 is the two bytes C2 A0 in UTF-8.
    const bool nbsp =
        c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xA0;
    if (is_blank(c) || nbsp) {
      pending_space = !out.empty();
      if (nbsp) ++i;
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c);
  }
  return out;
}

TextDataset load_text_dataset(const TextDatasetSpec& spec, TextLoadReport& report) {
  const bool by_path = spec.labelled && !spec.path_column.empty();
  if (spec.labelled && by_path == !spec.class_column.empty())
    throw DataError(std::string("a text dataset takes its class from ") +
                    (by_path ? "either a class column or a category path column, not both"
                             : "a class column or a category path column; neither is given"));
  if (spec.text_column.empty()) throw DataError("a text dataset needs a text column");
  if (!spec.format.header)
    throw DataError("a text dataset's files need a header row: columns are found by name");
  if (by_path && spec.path.level < 1)
    throw DataError("category path level must be at least 1, not " +
                    std::to_string(spec.path.level));
  if (spec.files.empty()) throw DataError("a text dataset needs at least one file");

  TextDataset data;
  Dictionary classes, groups;
  const bool fail = spec.bad_rows == config::BadRows::kFail;
  for (const std::string& file : spec.files) {
    CsvOptions format = spec.format;
    format.double_backslashes = false;  // free text: a backslash is content (a JSON escape)
    CsvReader reader(file, format);
    report.files.push_back(file);
    const std::size_t text_col = find_column(reader, "text column", spec.text_column);
    // npos: no such column (std::optional here trips GCC's -Wmaybe-uninitialized).
    constexpr std::size_t kNone = std::string::npos;
    const std::size_t class_col =
        !spec.labelled ? kNone
        : by_path      ? find_column(reader, "category path column", spec.path_column)
                       : find_column(reader, "class column", spec.class_column);
    const std::string& class_name = by_path ? spec.path_column : spec.class_column;
    const std::size_t group_col = spec.group_column.empty()
                                      ? kNone
                                      : find_column(reader, "grouping column", spec.group_column);
    std::size_t id_col = kNone;  // optional: exactly the name, or none
    for (std::size_t i = 0; i < reader.header().size(); ++i)
      if (!spec.id_column.empty() && reader.header()[i] == spec.id_column) id_col = i;

    CsvRecord record;
    while (reader.next(record)) {
      ++report.rows_read;
      std::optional<RowError> error;
      std::string label;
      if (!record.error.empty()) {
        error = RowError{"malformed record", record.error};
      } else if (record.fields.size() != reader.width()) {
        // The purchase log's rule (purchase_log.cpp): a field the header does not name, or one
        // missing, means the row's cells may have shifted, so its class could be another's.
        error = RowError{"wrong field count", "expected " + std::to_string(reader.width()) +
                                                  " fields, found " +
                                                  std::to_string(record.fields.size())};
      } else if (trim(record.fields[text_col]).empty()) {
        error = RowError{"empty text", "column '" + spec.text_column + "' is empty"};
      } else if (!spec.labelled) {
        // texts to classify: no class to read
      } else if (trim(record.fields[class_col]).empty()) {
        error = RowError{by_path ? "empty category path" : "empty class",
                         "column '" + class_name + "' is empty"};
      } else if (!by_path) {
        label = std::string(trim(record.fields[class_col]));
      } else {
        const ParsedPath path = parse_category_path(record.fields[class_col], spec.path.separator);
        if (!path.error.empty()) {
          error = RowError{"malformed category path", "column '" + class_name + "': " + path.error};
        } else {
          label = path_class(path.levels, spec.path);
          if (label.empty())
            error = RowError{
                "category path too short",
                "column '" + class_name + "': " + path_too_short_reason(path.levels, spec.path)};
        }
      }
      if (error) {
        const std::string where = reader.path() + ":" + std::to_string(record.line);
        if (fail)
          throw DataError(where + ": " + printable(error->reason) +
                          " (data.bad_rows = \"fail\"; set it to \"skip\" to skip such rows)");
        ++report.rows_rejected;
        ++report.rejected_by_reason[error->category];
        if (report.bad_rows.size() < static_cast<std::size_t>(std::max(spec.show_bad_rows, 0)))
          report.bad_rows.push_back({reader.path(), record.line, printable(error->reason)});
        continue;
      }
      const std::string_view text = record.fields[text_col];
      const std::string_view key = group_col == kNone ? "" : trim(record.fields[group_col]);
      // Key and text groups live in one dictionary, told apart by their first byte.
      const std::string group_key =
          key.empty() ? "t" + normalize_for_duplicates(text) : "k" + normalize_for_duplicates(key);
      data.texts.emplace_back(text);
      data.label.push_back(spec.labelled ? classes.intern(label) : 0);
      if (id_col != kNone) data.ids.emplace_back(record.fields[id_col]);
      data.group.push_back(groups.intern(group_key));
      data.source.push_back(reader.path() + ":" + std::to_string(record.line));
    }
    report.non_utf8_cells += static_cast<std::int64_t>(reader.non_utf8().cells);
  }
  if (data.texts.empty()) {
    std::string message = "no usable rows in " + join(spec.files, ", ");
    if (report.rows_rejected > 0) {
      std::vector<std::string> reasons;
      for (const auto& [reason, count] : report.rejected_by_reason)
        reasons.push_back(reason + ": " + with_thousands(count));
      message +=
          " (" + with_thousands(report.rows_rejected) + " rejected; " + join(reasons, ", ") + ")";
      if (!report.bad_rows.empty())
        message += "; the first: " + report.bad_rows.front().file + ":" +
                   std::to_string(report.bad_rows.front().line) + ": " +
                   report.bad_rows.front().reason;
    }
    throw DataError(message);
  }
  data.class_names = classes.names();
  data.groups = static_cast<std::int32_t>(groups.size());
  return data;
}

TextDatasetSummary summarize(const TextDataset& data) {
  TextDatasetSummary s;
  s.rows = static_cast<std::int64_t>(data.size());
  s.groups = data.groups;
  const std::size_t n_classes = data.class_names.size();
  std::vector<std::int64_t> rows_of_class(n_classes, 0), group_size(data.groups, 0);
  // (group, class) pairs seen, to count distinct groups per class and classes per group.
  std::vector<std::pair<std::int32_t, std::int32_t>> pairs;
  pairs.reserve(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    ++rows_of_class[data.label[i]];
    ++group_size[data.group[i]];
    pairs.emplace_back(data.group[i], data.label[i]);
  }
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  std::vector<std::int64_t> groups_of_class(n_classes, 0), classes_of_group(data.groups, 0);
  for (const auto& [g, c] : pairs) {
    ++groups_of_class[c];
    ++classes_of_group[g];
  }
  for (std::size_t c = 0; c < n_classes; ++c)
    s.classes.push_back({data.class_names[c], rows_of_class[c], groups_of_class[c]});
  std::sort(s.classes.begin(), s.classes.end(), [](const auto& a, const auto& b) {
    return a.rows != b.rows ? a.rows > b.rows : a.name < b.name;
  });
  for (std::int32_t g = 0; g < data.groups; ++g) {
    ++s.group_sizes[group_size[g]];
    if (group_size[g] > 1) {
      ++s.duplicate_groups;
      s.rows_in_duplicates += group_size[g] - 1;
    }
    s.largest_group = std::max(s.largest_group, group_size[g]);
    if (classes_of_group[g] > 1) ++s.groups_spanning_classes;
  }
  return s;
}

std::vector<bool> mixed_groups(const TextDataset& data) {
  std::vector<std::int32_t> group_class(static_cast<std::size_t>(data.groups), -1);
  std::vector<bool> mixed(static_cast<std::size_t>(data.groups), false);
  for (std::size_t i = 0; i < data.size(); ++i) {
    const auto g = static_cast<std::size_t>(data.group[i]);
    if (group_class[g] < 0) group_class[g] = data.label[i];
    if (group_class[g] != data.label[i]) mixed[g] = true;
  }
  return mixed;
}

std::vector<std::int64_t> usable_groups_per_class(const TextDataset& data) {
  const std::vector<bool> mixed = mixed_groups(data);
  std::vector<std::pair<std::int32_t, std::int32_t>> pairs;  // (class, group), pure groups only
  for (std::size_t i = 0; i < data.size(); ++i)
    if (!mixed[static_cast<std::size_t>(data.group[i])])
      pairs.emplace_back(data.label[i], data.group[i]);
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  std::vector<std::int64_t> out(data.class_names.size(), 0);
  for (const auto& [c, g] : pairs) ++out[static_cast<std::size_t>(c)];
  return out;
}

}  // namespace ml::data
