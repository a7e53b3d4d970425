// A labelled text dataset read from CSV (few-shot text classification: customer-service
// intents, product titles): one text per row, its class from a class column or from a level of
// a category-path column (data/category_path.hpp), and its duplicate group. Rows in one group
// are the same example for sampling purposes: identical texts once normalised
// (normalize_for_duplicates), or rows sharing a grouping key such as a product title whose
// size and colour variants repeat it. Episode samplers draw groups, not rows, so a group never
// spans an episode's support and query (tasks/class_episode_sampler.hpp).
// Malformed rows are skipped and counted, or stop the load, as the bad-rows policy says, and are
// reported with file:line and the reason, as the purchase log's loader does.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/choices.hpp"
#include "data/category_path.hpp"
#include "data/csv_reader.hpp"
#include "data/purchase_log.hpp"

namespace ml::data {

struct TextDatasetSpec {
  std::vector<std::string> files;
  // format.header must be true: columns are found by name. Backslashes are read as written
  // (format.double_backslashes is ignored), so JSON escapes in a path cell decode.
  CsvOptions format;
  std::string text_column;
  // Exactly one of the two: the class as written, or a category path and the level to take.
  std::string class_column;
  std::string path_column;
  CategoryPathSpec path;
  // "" : groups are identical normalised texts. Else rows with the same (normalised) key form a
  // group; a row whose key cell is empty is grouped by its normalised text instead.
  std::string group_column;
  // false: texts to classify (predict --input): no class or path column is read, every label
  // is 0 and class_names stays empty.
  bool labelled = true;
  // Optional: when a file's header has exactly this column, its cells go to TextDataset::ids
  // (predict keeps them next to its predictions); "" or a file without it: none.
  std::string id_column;
  // As data.bad_rows and data.show_bad_rows, whose names the messages use.
  config::BadRows bad_rows = config::BadRows::kSkip;
  int show_bad_rows = 5;
};

struct TextLoadReport {
  std::vector<std::string> files;
  std::int64_t rows_read = 0;                              // data records seen (headers excluded)
  std::int64_t rows_rejected = 0;                          // skipped as malformed
  std::map<std::string, std::int64_t> rejected_by_reason;  // by short category
  std::vector<BadRow> bad_rows;                            // the first show_bad_rows of them
  std::int64_t non_utf8_cells = 0;  // kept escaped as `\xHH` (csv_reader.hpp)
};

struct TextDataset {
  // One entry per kept row, in file order.
  std::vector<std::string> texts;        // the cells as the CSV reader hands them out
  std::vector<std::int32_t> label;       // index into class_names
  std::vector<std::int32_t> group;       // duplicate group, 0 .. groups - 1
  std::vector<std::string> source;       // "file:line" of each row, for messages and predictions
  std::vector<std::string> ids;          // TextDatasetSpec::id_column's cells, when read
  std::vector<std::string> class_names;  // in order of first appearance
  std::int32_t groups = 0;

  std::size_t size() const { return texts.size(); }
  // The id of class `name`, or -1.
  std::int32_t class_id(std::string_view name) const;
};

// The text two rows must share to be duplicates: ASCII whitespace runs and no-break spaces
// (U+00A0) collapsed to one space, leading and trailing ones dropped, ASCII letters lower-cased.
// No Unicode case folding or normalisation (the tool links no ICU), so "Café" typed with a
// combining accent and the precomposed "Café" stay two groups; banking77 and Flipkart are
// nearly all ASCII.
std::string normalize_for_duplicates(std::string_view text);

// Reads spec.files. A row is bad when its field count differs from the header's (an extra
// non-empty field, as for a purchase log), its text or class is empty, or its category path is
// malformed or too short. Throws DataError for a missing file or column (naming the file and its
// columns, with a suggestion for a typo), a headerless format, a spec with both or neither of
// class_column and path_column, the first bad row when spec.bad_rows is kFail (file:line, the
// column, the value and what was expected), and when every row was rejected.
TextDataset load_text_dataset(const TextDatasetSpec& spec, TextLoadReport& report);

// What inspect shows about a text dataset's classes and duplicate groups.
struct TextDatasetSummary {
  std::int64_t rows = 0;
  struct ClassCount {
    std::string name;
    std::int64_t rows = 0;
    std::int64_t groups = 0;  // distinct duplicate groups among the class's rows
  };
  std::vector<ClassCount> classes;  // most rows first, then by name
  std::int64_t groups = 0;
  std::int64_t duplicate_groups = 0;    // groups of more than one row
  std::int64_t rows_in_duplicates = 0;  // rows beyond the first of their group
  std::int64_t largest_group = 0;
  std::map<std::int64_t, std::int64_t> group_sizes;  // group size -> how many groups have it
  // Groups whose rows carry more than one class (the same text labelled twice): samplers never
  // let such a group count towards a class's K + Q (tasks/class_episode_sampler.hpp).
  std::int64_t groups_spanning_classes = 0;
};

TextDatasetSummary summarize(const TextDataset& data);

// Per group: whether its rows carry more than one class (the same text labelled twice).
std::vector<bool> mixed_groups(const TextDataset& data);
// Per class id: its usable duplicate groups, those whose rows all carry that class (what an
// episode may draw: tasks/class_episode_sampler.hpp).
std::vector<std::int64_t> usable_groups_per_class(const TextDataset& data);

}  // namespace ml::data
