// The config field tables (every key, check and docstring, once) and what they drive: reading,
// to_json, validation; the cross-field checks; --set overrides and loading files. See
// config.hpp and field_table.hpp.
#include "config/config.hpp"

#include "config/field_table.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "util/errors.hpp"
#include "util/json_text.hpp"
#include "util/strings.hpp"
#include "util/time_parse.hpp"
#include "util/utf8.hpp"

namespace ml::config {

namespace fs = std::filesystem;

namespace {

// ---- the field tables, one per section: keys, checks and docs, each written once ------------

template <typename T>
Check<T> positive_number() {
  return check_that<T>(
      "> 0", [](const T& v) { return v > 0 && std::isfinite(v); }, "must be a positive number");
}

Check<double> unit_interval() {
  return check_that<double>(
      "in [0, 1)", [](const double& v) { return v >= 0 && v < 1; }, "must be in [0, 1)");
}

// `constraint` is what the docs show: "required", "at least one", "not empty".
template <typename T>
Check<T> not_empty(const std::string& constraint, const std::string& message) {
  return check_that<T>(
      constraint, [](const T& v) { return !v.empty(); }, message);
}

const Table<CsvFormat>& csv_format_table() {
  static const Table<CsvFormat> table(
      "CsvFormat", "How the CSV files of one table are written.",
      {field("delimiter", &CsvFormat::delimiter,
             "\"auto\" detects it from the first line: the most frequent of \",\", \"\\t\", "
             "\";\" and \"|\" outside quotes, else \" \", else \",\". \"\\t\" may also be written "
             "\"tab\", \" \" also \"space\"."),
       field("header", &CsvFormat::header,
             "Whether the first line names the columns; false: columns are referred to by "
             "1-based position.")});
  return table;
}

const Table<FeatureColumns>& feature_columns_table() {
  static const Table<FeatureColumns> table(
      "FeatureColumns", "Feature columns of a table, each by name or 1-based position.",
      {field("numeric", &FeatureColumns::numeric,
             "Numeric columns, standardised with training statistics."),
       field("categorical", &FeatureColumns::categorical,
             "Categorical columns: a vocabulary or hashing (features.categorical), with an "
             "out-of-vocabulary bucket."),
       field("text", &FeatureColumns::text,
             "Text columns: lower-cased words hashed into features.text_buckets.")});
  return table;
}

const Table<ColumnMap>& column_map_table() {
  static const Table<ColumnMap> table(
      "ColumnMap",
      "Which log columns play which role, each by name or 1-based position (a number, also in a "
      "file with a header: it picks one of two columns of the same name, which by name is "
      "refused). `task` is required; the rest depend on the label kind.",
      {field("user", &ColumnMap::user,
             "The user id; required for implicit labels (negatives are sampled per user)."),
       field("item", &ColumnMap::item, "The item id; required for implicit labels."),
       field("task", &ColumnMap::task,
             "The grouping key that makes tasks: category, brand, shop, user, ...; a column of "
             "the log, or of a side table (task_from). Required, except in a text run "
             "(data.text.column), whose tasks are episodes of classes."),
       field("timestamp", &ColumnMap::timestamp,
             "Unix seconds or ISO-8601 date/time; needed for split.time_cutoff and recency."),
       field("event", &ColumnMap::event,
             "The event type (view/cart/purchase); required for event_binary labels."),
       field("rating", &ColumnMap::rating, "A numeric rating; the regression target \"rating\"."),
       field("price", &ColumnMap::price, "The unit price; spend = price * quantity."),
       field("quantity", &ColumnMap::quantity, "Units bought; 1 when absent."),
       field("task_from", &ColumnMap::task_from,
             "Where the task column is: \"log\", or \"item\" / \"user\": a column of an item "
             "(user) side table, joined by the row's item (user) id, so that tasks can be brands "
             "while the log names only items. The first side table of that join whose files have "
             "the column is used (a position refers to the first such table); rows whose id has "
             "no row there, or an empty value, belong to no task.")});
  return table;
}

const Table<SideTable>& side_table_table() {
  static const Table<SideTable> table(
      "SideTable", "An attribute table joined onto the log by item id or user id.",
      {field("files", &SideTable::files,
             "One or more CSV files, read as one table. Relative paths resolve against the "
             "config file's folder.",
             not_empty<std::vector<std::string>>("at least one", "must name at least one file")),
       section("format", &SideTable::format, csv_format_table(), "How its files are written."),
       field("join", &SideTable::join, "Which log id the key column matches."),
       field("key", &SideTable::key, "The id column of this table.",
             not_empty<ColumnRef>("required", "the id column of this table is required")),
       section("features", &SideTable::features, feature_columns_table(),
               "Columns of this table used as features; at least one."),
       field("duplicates", &SideTable::duplicates,
             "What a second row with an id already read means: \"error\" stops at it with both "
             "lines (the table must hold one row per id: a multi-valued attribute would "
             "otherwise collapse to one value unseen); \"first\" keeps each id's first row and "
             "counts the rest (inspect shows the policy and the count).")},
      [](const SideTable& t, const std::string& path) {
        require(!t.features.empty(), key_path(path, "features"), Json::object(),
                "a side table needs at least one numeric, categorical or text feature column");
      });
  return table;
}

const Table<TextColumns>& text_columns_table() {
  static const Table<TextColumns> table(
      "TextColumns",
      "A labelled text dataset (few-shot text classification over held-out classes: "
      "customer-service intents, product titles) instead of a purchase log. Columns by name "
      "(data.format.header must be true). A text run needs task.label.kind = \"multiclass\" and "
      "model.type = \"transformer\" or \"backbone\"; its classes are split by split.new_fraction / "
      "validation_fraction or the split.*_classes lists, and its episodes are N-way "
      "(task.label.ways) K-shot (task.support) with task.query queries per class.",
      {field("column", &TextColumns::column,
             "The text column. Set, it makes the run a text run (data.columns, data.features and "
             "data.side_tables are then not used and must be left empty)."),
       field("class_column", &TextColumns::class_column,
             "The class of each row as written (an intent). Exactly one of class_column and "
             "path_column."),
       field("path_column", &TextColumns::path_column,
             "A hierarchical category path (\"A >> B >> C\", or a JSON array holding one such "
             "string, as Flipkart writes it); the class is the level path_level takes. Rows with "
             "fewer levels are bad rows (data.bad_rows)."),
       field("path_separator", &TextColumns::path_separator,
             "Between the levels of path_column, matched exactly (spaces included).",
             not_empty<std::string>("not empty", "must not be empty")),
       field("path_level", &TextColumns::path_level, "The level of path_column that is the class.",
             between(1, kMaxLayers)),
       field("path_mode", &TextColumns::path_mode,
             "\"prefix\": the class is the path up to path_level (\"A >> B\"), so names that "
             "repeat under different parents stay apart; \"level\": the level's own name "
             "(\"B\")."),
       field("group_column", &TextColumns::group_column,
             "Rows sharing this column's value (normalised) are one duplicate group, e.g. a "
             "product title shared by size and colour variants; \"\": rows with identical "
             "normalised text are. A group never spans an episode's support and query."),
       field("min_class_groups", &TextColumns::min_class_groups,
             "Classes with fewer distinct duplicate groups than this (groups whose rows all "
             "carry the class) are left out before the split, counted in train's log and shown "
             "by inspect; 0: task.support + task.query, what one N-way episode takes of a "
             "class. A train split left with fewer than task.label.ways classes is an error (a new "
             "split: a warning, and eval refuses its N-way episodes).",
             at_least(0))},
      [](const TextColumns& t, const std::string& path) {
        if (t.column.empty()) {
          const std::pair<const char*, const std::string*> named[] = {
              {"class_column", &t.class_column},
              {"path_column", &t.path_column},
              {"group_column", &t.group_column}};
          for (const auto& [key, value] : named)
            require(value->empty(), key_path(path, key), Json(*value),
                    "is set, but data.text.column is not (name the text column too)");
          require(t.min_class_groups == 0, key_path(path, "min_class_groups"),
                  Json(t.min_class_groups),
                  "is set, but data.text.column is not (name the text column too)");
          return;
        }
        require(t.class_column.empty() != t.path_column.empty(), key_path(path, "class_column"),
                Json(t.class_column),
                t.class_column.empty()
                    ? "a text run needs the class: set class_column or path_column"
                    : "give class_column or path_column, not both");
        // The text as its own class makes every distinct text a class of one.
        for (const char* key : {"class_column", "path_column"}) {
          const std::string& value =
              std::string(key) == "class_column" ? t.class_column : t.path_column;
          require(value != t.column, key_path(path, key), Json(value),
                  "is the text column (data.text.column) itself: name the column that holds "
                  "each text's class");
        }
      });
  return table;
}

const Table<DataConfig>& data_table() {
  static const Table<DataConfig> table(
      "DataConfig", "The purchase log and the tables joined onto it.",
      {field("files", &DataConfig::files,
             "The purchase log's CSV files (a text run's: the text dataset's); parts are "
             "concatenated. Relative paths resolve against the config file's folder.",
             not_empty<std::vector<std::string>>(
                 "at least one", "must name at least one CSV file of the purchase log")),
       section("format", &DataConfig::format, csv_format_table(), "How the log is written."),
       section("columns", &DataConfig::columns, column_map_table(),
               "Which log columns play which role."),
       section("features", &DataConfig::features, feature_columns_table(),
               "Row-level feature columns of the log (not with implicit labels: sampled "
               "negatives have no row)."),
       section_list("side_tables", &DataConfig::side_tables, side_table_table(),
                    "Attribute tables joined onto the log by item or user id."),
       field("bad_rows", &DataConfig::bad_rows,
             "\"skip\": count and report malformed rows (every command warns how many, why and "
             "where the first are; a log whose every row is malformed is an error); \"fail\": "
             "stop at the first one with its file and line."),
       field("show_bad_rows", &DataConfig::show_bad_rows,
             "How many skipped rows are listed in reports and warnings.", at_least(0)),
       field("time_format", &DataConfig::time_format,
             "How the timestamp column is written: \"unix\" (seconds), \"unix_ms\", "
             "\"unix_us\", \"unix_ns\" (milli-, micro-, nanoseconds: JavaScript, Java and Kafka "
             "exports), \"iso8601\"; \"auto\" reads ISO-8601 and unix numbers, each number in "
             "the unit its magnitude gives (seconds below 1e11, milliseconds below 1e14, "
             "microseconds below 1e17, else nanoseconds; inspect shows what was read). A time "
             "outside 1970-01-01 .. 2099-12-31 is a bad row, named with the unit that would make "
             "it plausible."),
       field("cache", &DataConfig::cache,
             "Where the parsed log is cached so that the next command on unchanged files skips "
             "the CSV parse: \"auto\" (a .metalearn-cache/ folder beside the first data file, or "
             "inside run.dir when that folder cannot be written), \"off\", or a folder (relative "
             "paths resolve against the config file's folder, like data.files).",
             not_empty<std::string>("not empty", "must be \"auto\", \"off\" or a folder")),
       section("text", &DataConfig::text, text_columns_table(),
               "A labelled text dataset instead of a purchase log.")});
  return table;
}

const Table<TokenizerConfig>& tokenizer_table() {
  static const Table<TokenizerConfig> table(
      "TokenizerConfig",
      "The subword tokenizer of a text run: SentencePiece trained on the training classes' texts "
      "only (for model.item_text: on the texts of the items of training tasks only), with a "
      "hashed fallback for pieces it cannot spell; the model is saved in the checkpoint.",
      {field("model", &TokenizerConfig::model, "SentencePiece's model: unigram LM or BPE."),
       field("vocab_size", &TokenizerConfig::vocab_size,
             "Pieces SentencePiece aims for (a soft limit: a small corpus gets fewer).",
             between<std::int64_t>(8, kMaxVocabulary)),
       field("character_coverage", &TokenizerConfig::character_coverage,
             "Fraction of the training text's characters the pieces cover; the rarest rest go "
             "to the fallback (SentencePiece accepts 0.98 to 1).",
             check_that<double>(
                 "in [0.98, 1]", [](const double& v) { return v >= 0.98 && v <= 1; },
                 "must be in [0.98, 1] (SentencePiece's range)")),
       field("hash_buckets", &TokenizerConfig::hash_buckets,
             "Fallback ids after the pieces: an unknown piece gets its word's bucket and those "
             "of its character n-grams.",
             between<std::int64_t>(1, kMaxTokenBuckets)),
       field("ngram", &TokenizerConfig::ngram, "Code points per fallback n-gram.", between(1, 16)),
       field("max_ngrams_per_unknown", &TokenizerConfig::max_ngrams_per_unknown,
             "Fallback n-gram ids per unknown piece.", between(0, 64)),
       field("max_training_texts", &TokenizerConfig::max_training_texts,
             "Texts SentencePiece trains on: a seeded subset of the training texts.",
             at_least<std::int64_t>(0, "0 = all"))});
  return table;
}

const Table<EmbeddingTableConfig>& embedding_table_table() {
  static const Table<EmbeddingTableConfig> table(
      "EmbeddingTableConfig",
      "A table of vectors computed offline (item or user vectors of a large model, item2vec, a "
      "sentence encoder over titles), joined onto every example by its item or user id as dim "
      "dense inputs (named \"embedding:NAME#k\", NAME the file name without its extension). The "
      "table is read once per command; the run's feature statistics record its path, dim and "
      "XXH3-64 checksum, and adapt, eval and predict refuse a table that changed since training. "
      "Formats: README \"Bring your own vectors\".",
      {field("file", &EmbeddingTableConfig::file,
             "The table's file. Relative paths resolve against the config file's folder.",
             not_empty<std::string>("required", "must name the table's file")),
       field("join", &EmbeddingTableConfig::join,
             "Which log id the keys match, as data.side_tables[].join."),
       field("format", &EmbeddingTableConfig::format,
             "\"csv\": a key column, then dim numbers per row; \"binary\": the float32 format "
             "(written by `metalearn embeddings convert` or scripts/write_embeddings.py), "
             "memory-mapped, so a table larger than memory costs address space, not RAM; "
             "\"auto\": binary for a file ending in .mlemb, else CSV."),
       field("key", &EmbeddingTableConfig::key,
             "CSV: the id column, by name or 1-based position; unset: the first column. Every "
             "other column is a vector component, in file order."),
       section("csv", &EmbeddingTableConfig::csv, csv_format_table(),
               "How a CSV table is written."),
       field("dim", &EmbeddingTableConfig::dim,
             "The vector width the file must have: a CSV row or a binary header with another "
             "width is an error naming the file, the line and both counts.",
             between(1, kMaxEmbeddingTableDim)),
       field("missing", &EmbeddingTableConfig::missing,
             "What an example whose id has no row in the table gets (inspect counts them): "
             "\"zero\": dim zeros; \"learned\": dim zeros and a 0/1 input "
             "\"embedding:NAME:missing\", whose weights in the model's first layer are the learned "
             "vector of absent ids (meta-learned, and adapted with that layer): the layer is "
             "linear, so a learned input vector v would add W v, and the indicator's column can "
             "be any such W v."),
       field("normalize", &EmbeddingTableConfig::normalize,
             "\"l2\": each vector scaled to unit length (a zero vector stays zero); \"none\": "
             "as stored. Never standardised with training moments: per-dimension moments would "
             "distort the geometry (dot products, cosines) the offline model gave the vectors.")},
      [](const EmbeddingTableConfig& t, const std::string& path) {
        require(t.csv.header || t.key.name.empty(), key_path(path, "key"), Json(t.key.name),
                "is a name, but csv.header = false: give the id column's 1-based position");
        require(t.format != EmbeddingFormat::kBinary || t.key.empty(), key_path(path, "key"),
                Json(t.key), "is for CSV tables: a binary table carries its keys");
      });
  return table;
}

const Table<FeatureConfig>& feature_config_table() {
  static const Table<FeatureConfig> table(
      "FeatureConfig", "How examples become model inputs.",
      {field("standardize", &FeatureConfig::standardize,
             "Numeric features to zero mean and unit variance (training statistics)."),
       field("categorical", &FeatureConfig::categorical,
             "\"vocab\": values seen in training get an index, the rest share one "
             "out-of-vocabulary bucket; \"hash\": hashed into hash_buckets (unseen values still "
             "land somewhere)."),
       field("hash_buckets", &FeatureConfig::hash_buckets,
             "Buckets for hashed ids and hashed categoricals.",
             between<std::int64_t>(2, kMaxHashBuckets)),
       field("min_count", &FeatureConfig::min_count,
             "Vocabulary values rarer than this in training go to the out-of-vocabulary bucket.",
             at_least(1)),
       field("onehot_max", &FeatureConfig::onehot_max,
             "Vocabulary categoricals with at most this many values are also one-hot encoded "
             "into the dense vector (for the plain mlp model).",
             at_least(0)),
       field("text_buckets", &FeatureConfig::text_buckets,
             "Hashed bag-of-words width per text column.", between(1, kMaxTextBuckets)),
       field("aggregates", &FeatureConfig::aggregates,
             "Per-user and per-item aggregates of the purchases (task.label.positive_events; "
             "every row when the log has no event column) among the history rows "
             "(features.aggregate_rows). An aggregate never counts the example it describes: "
             "with split.time_cutoff the history ends where the examples begin; without one, "
             "each example is its own cutoff and counts only the history rows strictly before "
             "its time (point-in-time; a sampled negative takes its positive's time, so both "
             "classes are read the same way; rows without a time are never counted). Without "
             "data.columns.timestamp an example's own (user, item) rows are left out instead, "
             "which still leaks through the difference of that own count (a warning says so). "
             "Rows that are new to the run (predict --input, adapt --support-csv) read the "
             "totals over the whole history. When the key is absent, the defaults that the "
             "log's columns support are used (no user_recency without a timestamp); user_* need "
             "data.columns.user, item_* data.columns.item, user_recency data.columns.timestamp."),
       field("aggregate_rows", &FeatureConfig::aggregate_rows,
             "Which rows are the aggregates' history. \"training\": rows of training tasks "
             "(before split.time_cutoff when there is one), so a held-out task's items have no "
             "popularity at all; \"before_cutoff\": every task's rows before split.time_cutoff "
             "(required), i.e. what a shop knows on the cutoff day, also about a held-out "
             "category's items and buyers. Labels come only from rows at or after the cutoff "
             "either way (without a cutoff, see features.aggregates); vocabularies and moments "
             "stay training-only."),
       field("affinities", &FeatureConfig::affinities,
             "User x item affinities from the user's purchases before split.time_cutoff (every "
             "task's rows: what the shop knows about the user on the cutoff day; labels come "
             "only from rows at or after it). Each entry is \"item\" (has the user bought this "
             "very item), the name of a categorical column of an item side table (has the user "
             "bought this item's brand, product type, ...), each giving \"affinity:NAME:count\" "
             "(log1p of those purchases) and \"affinity:NAME:share\" (their share of the user's "
             "purchases); or \"relative_price\" (log of the item's mean price over the user's "
             "mean price). Needs data.columns.user, data.columns.item and split.time_cutoff "
             "(\"relative_price\" also data.columns.price); with implicit labels also "
             "task.label.negatives_exclude = \"after_cutoff\", since otherwise every past "
             "purchase is excluded from the negatives and a repeat purchase would give the "
             "label away.",
             {"known names, no duplicates",
              [](const std::vector<std::string>& list, const std::string& path) {
                for (std::size_t i = 0; i < list.size(); ++i)
                  require(std::count(list.begin(), list.end(), list[i]) == 1,
                          path + "[" + std::to_string(i) + "]", Json(list[i]), "is listed twice");
              }}),
       section("tokenizer", &FeatureConfig::tokenizer, tokenizer_table(),
               "The subword tokenizer of a text run (data.text), and of item texts "
               "(model.item_text)."),
       section_list("embeddings", &FeatureConfig::embeddings, embedding_table_table(),
                    "Precomputed vectors joined onto examples by item or user id (purchase-log "
                    "runs).")});
  return table;
}

const Table<LabelConfig>& label_table() {
  static const Table<LabelConfig> table(
      "LabelConfig", "What an example's label is.",
      {field("kind", &LabelConfig::kind,
             "\"implicit\": every (user, item) interaction in a task is a positive (optionally "
             "only the positive_events; with split.time_cutoff only those at or after it), "
             "negatives are items of the same task the user never interacted with "
             "(negatives_exclude); \"event_binary\": one example per (user, item) pair with a "
             "row in the label window (the rows at or after split.time_cutoff; every row without "
             "one): 1 if any of its window rows is a positive_event, else 0 if any is a "
             "negative_event, other events ignored; the example takes the pair's earliest window "
             "row. Rows before the cutoff never decide a label, they are history (aggregates, "
             "affinities): a pair bought before the cutoff and only viewed after it is a 0 "
             "(viewed in the window, not bought), one viewed before and bought after is a 1, one "
             "with no window row is no example; \"threshold\": target >= threshold -> 1, else 0 "
             "(e.g. "
             "ratings of 4 and above are positives); \"regression\": the target value; "
             "\"multiclass\": class_column values, N-way K-shot episodes."),
       field("positive_events", &LabelConfig::positive_events,
             "Event values counted positive (implicit, event_binary)."),
       field("negative_events", &LabelConfig::negative_events,
             "Event values counted negative (event_binary only)."),
       field("negatives_per_positive", &LabelConfig::negatives_per_positive,
             "Sampled negatives per positive (implicit only).",
             check_that<double>(
                 "in (0, 100]", [](const double& v) { return v > 0 && v <= 100; },
                 "must be in (0, 100]")),
       field("negative_sampling", &LabelConfig::negative_sampling,
             "implicit only: how negatives are drawn from the task's items. \"uniform\", or "
             "\"popularity\" (in proportion to the item's number of rows in the task, so "
             "negatives are as popular as positives and a task is about the user, not the item's "
             "popularity)."),
       field("negatives_exclude", &LabelConfig::negatives_exclude,
             "implicit only: which interactions keep an item from being a user's negative. "
             "\"all_time\" (any interaction in the task) or \"after_cutoff\" (only those at or "
             "after split.time_cutoff, i.e. the label window; needs split.time_cutoff). "
             "\"after_cutoff\" asks \"what will the user buy next\": an item bought before the "
             "cutoff and not again is a negative."),
       field("target", &LabelConfig::target,
             "The value regression and threshold labels read; \"spend\" is price * quantity."),
       field("threshold", &LabelConfig::threshold,
             "threshold only: targets >= this are positives."),
       field("class_column", &LabelConfig::class_column,
             "multiclass only (and required there, but for a text run, whose class is "
             "data.text's): the class of each row, e.g. product type."),
       field("class_from", &LabelConfig::class_from,
             "Where class_column is: \"log\", or \"item\" / \"user\": a side-table column "
             "joined by the row's item (user) id, as data.columns.task_from."),
       field("ways", &LabelConfig::ways, "multiclass only: classes per episode (N).",
             between(2, kMaxWays))},
      [](const LabelConfig& l, const std::string& path) {
        if (l.kind == LabelKind::kEventBinary) {
          require(!l.positive_events.empty(), key_path(path, "positive_events"),
                  Json(l.positive_events),
                  "event_binary labels need at least one positive event value");
          require(!l.negative_events.empty(), key_path(path, "negative_events"),
                  Json(l.negative_events),
                  "event_binary labels need at least one negative event value");
        }
      });
  return table;
}

// task.support: a positive integer or "all" (kSupportAll).
struct SupportFieldType {
  static std::string name() { return "integer or \"all\""; }
  static std::vector<std::string> choices() { return {}; }
  static void read(JsonObject& o, const char* key, int& out) {
    Json v;
    if (!o.read_if_present(key, v)) return;
    const std::string path = o.path_of(key);
    if (v.is_string()) {
      require(v == "all", path, v, "expected an integer or \"all\"");
      out = kSupportAll;
      return;
    }
    require(v.is_number(), path, v, "expected an integer or \"all\"");
    int n = 0;
    o.read(key, n);  // as every integer field: must be whole and fit an int
    // Checked here, not only by the field's check: -1 is how "all" is held.
    require(n >= 1, path, v, "must be >= 1 or \"all\"");
    out = n;
  }
  static void check(int, const std::string&) {}
  static Json write(int value) { return value == kSupportAll ? Json("all") : Json(value); }
};

const Table<TaskConfig>& task_table() {
  static const Table<TaskConfig> table(
      "TaskConfig", "How tasks and their episodes are formed.",
      {section("label", &TaskConfig::label, label_table(), "What an example's label is."),
       field_as<SupportFieldType>(
           "support", &TaskConfig::support,
           "K: support examples per task (per class for multiclass), or \"all\": every example "
           "of the task not in the episode's query (per-user protocols: support = all of the "
           "user's other interactions, as in MeLU and RecBole-MetaRec), so support sizes vary "
           "by task and a task needs only query + 1 examples.",
           check_that<int>(
               "1 to " + std::to_string(kMaxEpisodeExamples) + " or \"all\"",
               [](const int& v) {
                 return (v >= 1 && v <= kMaxEpisodeExamples) || v == kSupportAll;
               },
               "must be from 1 to " + std::to_string(kMaxEpisodeExamples) + " or \"all\"")),
       field("query", &TaskConfig::query, "Q: query examples per task (per class for multiclass).",
             between(1, kMaxEpisodeExamples)),
       field("min_examples", &TaskConfig::min_examples, "Tasks with fewer examples are dropped.",
             at_least(0, "0 means support + query (query + 1 with support \"all\")")),
       field("max_examples", &TaskConfig::max_examples,
             "Tasks with more examples are dropped (e.g. heavy users); when not 0, at least "
             "min_examples and support + query (query + 1 with support \"all\"). With "
             "support \"all\" it also bounds the largest support set.",
             at_least(0, "0 means no limit")),
       field("stratify", &TaskConfig::stratify,
             "Support composition for binary labels: \"balanced\" (half positives), "
             "\"proportional\" (the task's label ratio), \"none\" (uniform draw). Not used "
             "with support \"all\" (the support is whatever the query leaves).")},
      [](const TaskConfig& t, const std::string& path) {
        const int least = min_episode_examples(t.support, t.query);
        require(t.max_examples == 0 || t.max_examples >= std::max(t.min_examples, least),
                key_path(path, "max_examples"), Json(t.max_examples),
                "must be 0 or at least task.min_examples and " +
                    std::string(t.support == kSupportAll ? "task.query + 1 (support \"all\")"
                                                         : "task.support + task.query"));
      });
  return table;
}

const Table<SplitConfig>& split_table() {
  static const Table<SplitConfig> table(
      "SplitConfig", "Which tasks are held out, and the temporal split.",
      {field("new_tasks", &SplitConfig::new_tasks,
             "Tasks held out whole for adapt/eval; overrides new_fraction. Not in a text run "
             "(see new_classes)."),
       field("new_fraction", &SplitConfig::new_fraction,
             "Seeded fraction of the qualifying tasks (of a text run: of its classes) held out as "
             "new tasks (classes).",
             unit_interval()),
       field("validation_fraction", &SplitConfig::validation_fraction,
             "Fraction of the qualifying tasks (classes) used for validation; new_fraction + "
             "validation_fraction < 1.",
             unit_interval()),
       field("train_classes", &SplitConfig::train_classes,
             "Text runs: the classes meta-training draws its episodes from. When any of the three "
             "class lists is given, they replace the fractions: a class in no list is left out "
             "when train_classes is given, else it trains.",
             {"distinct names",
              [](const std::vector<std::string>& list, const std::string& path) {
                for (std::size_t i = 0; i < list.size(); ++i)
                  require(std::count(list.begin(), list.end(), list[i]) == 1,
                          path + "[" + std::to_string(i) + "]", Json(list[i]), "is listed twice");
              }}),
       field("validation_classes", &SplitConfig::validation_classes,
             "Text runs: the classes that choose checkpoints and adaptation settings.",
             {"distinct names",
              [](const std::vector<std::string>& list, const std::string& path) {
                for (std::size_t i = 0; i < list.size(); ++i)
                  require(std::count(list.begin(), list.end(), list[i]) == 1,
                          path + "[" + std::to_string(i) + "]", Json(list[i]), "is listed twice");
              }}),
       field("new_classes", &SplitConfig::new_classes,
             "Text runs: the classes held out whole: eval scores them once with the settings the "
             "validation classes chose.",
             {"distinct names",
              [](const std::vector<std::string>& list, const std::string& path) {
                for (std::size_t i = 0; i < list.size(); ++i)
                  require(std::count(list.begin(), list.end(), list[i]) == 1,
                          path + "[" + std::to_string(i) + "]", Json(list[i]), "is listed twice");
              }}),
       field("time_cutoff", &SplitConfig::time_cutoff,
             "\"\" or a date/time (ISO-8601, or a unix time in the unit its magnitude gives, as "
             "data.time_format = \"auto\" reads it): statistics and aggregates come "
             "from rows before it, examples from rows at or after it (a temporal split).",
             check_that<std::string>(
                 "\"\" or a date/time",
                 [](const std::string& v) {
                   return v.empty() || parse_timestamp(v, TimeFormat::kAuto).has_value();
                 },
                 "expected an ISO-8601 date/time (2017-07-01 or 2017-07-01T00:00:00) or a unix "
                 "time"))},
      [](const SplitConfig& s, const std::string& path) {
        require(s.new_fraction + s.validation_fraction < 1, key_path(path, "validation_fraction"),
                Json(s.validation_fraction),
                "new_fraction + validation_fraction must leave some tasks for training (< 1)");
      });
  return table;
}

const Table<TransformerConfig>& transformer_table() {
  static const Table<TransformerConfig> table(
      "TransformerConfig",
      "The transformer's sizes: token and position embeddings of width dim, `layers` pre-norm "
      "encoder layers (multi-head self-attention, then a feed-forward block), mean pooling over "
      "the real tokens, a linear head.",
      {field("dim", &TransformerConfig::dim, "Model width d; a multiple of heads.",
             between(1, kMaxLayerWidth)),
       field("heads", &TransformerConfig::heads, "Attention heads per layer.", between(1, 256)),
       field("layers", &TransformerConfig::layers, "Encoder layers.", between(0, kMaxLayers)),
       field("ff_dim", &TransformerConfig::ff_dim, "Width of each layer's feed-forward block.",
             between(1, kMaxLayerWidth)),
       field("max_len", &TransformerConfig::max_len,
             "Tokens per text: longer texts keep their first max_len tokens, shorter ones are "
             "padded (and masked).",
             between(1, kMaxTokenLength)),
       field("activation", &TransformerConfig::activation, "The feed-forward activation.")},
      [](const TransformerConfig& t, const std::string& path) {
        require(t.dim % t.heads == 0, key_path(path, "dim"), Json(t.dim),
                "must be a multiple of model.transformer.heads (" + std::to_string(t.heads) + ")");
      });
  return table;
}

const Table<ItemTextConfig>& item_text_table() {
  static const Table<ItemTextConfig> table(
      "ItemTextConfig",
      "Item text through the subword encoder (model.type = \"embedding_mlp\"): the named item "
      "side-table text columns, joined by \" | \", tokenized by the tokenizer of "
      "features.tokenizer (SentencePiece trained on the text of items that occur in training "
      "tasks only, saved in the checkpoint), encoded by `layers` pre-norm Transformer encoder "
      "layers of width dim and mean-pooled; the dim values join the tower's input. Each distinct "
      "item of a batch is encoded once. Its weights are embeddings to meta.inner_params: "
      "meta-learned, adapted per task only with \"all\".",
      {field("columns", &ItemTextConfig::columns,
             "Text columns of an item side table (data.side_tables[].features.text, join "
             "\"item\"); empty: no item text encoder.",
             {"text columns of an item side table",
              [](const std::vector<std::string>& list, const std::string& path) {
                for (std::size_t i = 0; i < list.size(); ++i) {
                  require(!list[i].empty(), path + "[" + std::to_string(i) + "]", Json(list[i]),
                          "must name a column");
                  require(std::count(list.begin(), list.end(), list[i]) == 1,
                          path + "[" + std::to_string(i) + "]", Json(list[i]), "is listed twice");
                }
              }}),
       field("dim", &ItemTextConfig::dim,
             "Encoder width (token and position embeddings); a "
             "multiple of heads.",
             between(1, kMaxEmbeddingDim)),
       field("layers", &ItemTextConfig::layers, "Encoder layers.", between(0, kMaxLayers)),
       field("heads", &ItemTextConfig::heads, "Attention heads per layer.", between(1, 256)),
       field("ff_dim", &ItemTextConfig::ff_dim, "Width of each layer's feed-forward block.",
             between(1, kMaxLayerWidth)),
       field("max_len", &ItemTextConfig::max_len,
             "Tokens per item text: longer texts keep their first max_len tokens.",
             between(1, kMaxTokenLength))},
      [](const ItemTextConfig& t, const std::string& path) {
        require(t.dim % t.heads == 0, key_path(path, "dim"), Json(t.dim),
                "must be a multiple of " + key_path(path, "heads") + " (" +
                    std::to_string(t.heads) + ")");
      });
  return table;
}

const Table<UserSequenceConfig>& user_sequence_table() {
  static const Table<UserSequenceConfig> table(
      "UserSequenceConfig",
      "The user's recent items (SASRec, Kang & McAuley 2018, arXiv:1808.09781; model.type = "
      "\"embedding_mlp\"): for each example the user's last `length` purchases strictly before "
      "its time (with split.time_cutoff: before the cutoff), whatever their task; rows without a "
      "time never count. Their item-id embeddings (the model's hashed item table, shared) plus "
      "position embeddings, followed by a learned read-out token, go through `layers` causal "
      "pre-norm encoder layers of width model.embedding_dim; the read-out token's output (with "
      "no history: what it makes of itself) joins the tower's input. Its weights are embeddings "
      "to meta.inner_params: meta-learned, adapted per task only with \"all\".",
      {field("length", &UserSequenceConfig::length,
             "Items per sequence (L); 0: no user sequence encoder.",
             between(0, kMaxSequenceLength)),
       field("layers", &UserSequenceConfig::layers, "Causal encoder layers.",
             between(0, kMaxLayers)),
       field("heads", &UserSequenceConfig::heads,
             "Attention heads per layer; model.embedding_dim must be a multiple of it.",
             between(1, 256)),
       field("ff_dim", &UserSequenceConfig::ff_dim, "Width of each layer's feed-forward block.",
             between(1, kMaxLayerWidth))});
  return table;
}

const Table<BackboneConfig>& backbone_table() {
  static const Table<BackboneConfig> table(
      "BackboneConfig",
      "A pretrained text encoder saved as TorchScript (torch.jit.script or torch.jit.trace, then "
      "torch.jit.save; or `metalearn export` of a text run), loaded with torch::jit::load and "
      "checked on load: its forward must take the declared inputs and give floating-point vectors "
      "(used as float32) of `dim` per row. The tool's head (model.hidden, then the output layer) "
      "and adapters "
      "(model.adapter) sit on top. A frozen backbone's vectors are computed once per text per "
      "command, so meta-training and adaptation cost only the head and adapters. Relative paths "
      "resolve against the config file's folder, like data.files. The checkpoint records the "
      "file's checksum: a backbone file that changed afterwards is refused.",
      {field("file", &BackboneConfig::file,
             "The TorchScript module (.pt); required with model.type = \"backbone\"."),
       field("tokenizer", &BackboneConfig::tokenizer,
             "The tokenizer whose ids the backbone was trained on: a metalearn tokenizer file "
             "(what `metalearn export --encoder` writes to --tokenizer-output), a SentencePiece "
             "model (.model; its own ids, its unknown id for what its pieces cannot spell) or a "
             "WordPiece vocabulary (BERT's vocab.txt: one token per line, the id its line number "
             "from 0, an [UNK] line; tokenized as BERT's tokenization.py does, [CLS] and [SEP] "
             "around each text, padding id 0); told apart by content. Required with model.type = "
             "\"backbone\"."),
       field("lowercase", &BackboneConfig::lowercase,
             "A WordPiece vocabulary's case: \"yes\" lower-cases each text and strips its "
             "accents before lookup (BERT's uncased models), \"no\" keeps them (cased models), "
             "\"auto\" lower-cases when no token outside [brackets] holds an upper-case letter. "
             "Only \"auto\" with a SentencePiece tokenizer, which normalises by itself."),
       field("method", &BackboneConfig::method,
             "The module's method that encodes texts: \"forward\", or another one the module "
             "exports (a `metalearn export` of a text run: \"represent\", the vector its head "
             "reads).",
             not_empty<std::string>("a method name", "must name a method of the module")),
       field("inputs", &BackboneConfig::inputs,
             "What forward takes: \"ids_mask\" (token ids [n, L] int64 and the attention mask "
             "[n, L], true/1 on real tokens) or \"ids\" (the ids alone; padding is id 0)."),
       field("mask", &BackboneConfig::mask,
             "The mask's dtype with inputs = \"ids_mask\": \"bool\", \"int64\" (Hugging "
             "Face's attention_mask) or \"float32\"."),
       field("dim", &BackboneConfig::dim,
             "The width of the vector per row the backbone gives; required with model.type = "
             "\"backbone\".",
             between(0, kMaxLayerWidth)),
       field("output", &BackboneConfig::output,
             "What forward returns: \"pooled\" (one vector per row, [n, dim]), or the token "
             "states [n, L, dim] read as their \"mean\" over the real tokens or the \"first\" "
             "token's (BERT's [CLS])."),
       field("max_len", &BackboneConfig::max_len,
             "Tokens per text given to the backbone: longer texts keep their first max_len.",
             between(1, kMaxTokenLength)),
       field("trainable", &BackboneConfig::trainable,
             "false: frozen (its vectors are computed once per text and cached); true: its "
             "weights are meta-trained in the outer loop at model.backbone.lr (never adapted in "
             "the inner loop), which runs it on every episode. Not with reptile, whose "
             "meta-update is the inner walk's displacement: a backbone the walk does not move "
             "would never train."),
       field("lr", &BackboneConfig::lr,
             "The outer learning rate of a trainable backbone's weights; 0: meta.outer_lr.",
             at_least(0.0, "0 = meta.outer_lr"))});
  return table;
}

const Table<AdapterConfig>& adapter_table() {
  static const Table<AdapterConfig> table(
      "AdapterConfig",
      "Parameter-efficient adapters between a backbone (model.type = \"backbone\") and its "
      "head, meta-learned like every other weight (their initialisation by the outer loop, and "
      "with metasgd their learning rates); meta.inner_params = \"adapters\" adapts them and the "
      "output layer alone.",
      {field("kind", &AdapterConfig::kind,
             "\"none\"; \"film\": a per-feature scale and shift of the backbone's vector "
             "(FiLM, Perez et al. 2018, arXiv:1709.07871), initialised to the identity; "
             "\"lora\": a rank-`rank` update B A added to each model.hidden layer's weight "
             "(LoRA, Hu et al. 2021, arXiv:2106.09685), B initialised to zero."),
       field("rank", &AdapterConfig::rank, "LoRA's rank r.", between(1, kMaxLayerWidth))});
  return table;
}

const Table<ModelConfig>& model_table() {
  static const Table<ModelConfig> table(
      "ModelConfig", "The network meta-learned.",
      {field("type", &ModelConfig::type,
             "\"mlp\": a ReLU tower over the dense feature vector (the classic purchase "
             "predictor); \"embedding_mlp\": hashed id and categorical embeddings concatenated "
             "with the dense features, then the tower (MeLU style); \"transformer\": a pre-norm "
             "Transformer encoder over a text run's tokens (model.transformer), mean-pooled, then "
             "a linear head; \"backbone\": a pretrained TorchScript text encoder (model.backbone) "
             "under "
             "the tower of model.hidden and a linear head, with model.adapter."),
       field("hidden", &ModelConfig::hidden,
             "Tower widths, first to last. A backbone's may be empty: its head then reads the "
             "backbone's vectors (after FiLM) directly.",
             {"1 to " + std::to_string(kMaxLayers) + " widths, each 1 to " +
                  std::to_string(kMaxLayerWidth) + " (none: model.type = \"backbone\" only)",
              [](const std::vector<int>& widths, const std::string& path) {
                require(widths.size() <= static_cast<std::size_t>(kMaxLayers), path, Json(widths),
                        std::to_string(widths.size()) + " layers; at most " +
                            std::to_string(kMaxLayers));
                for (std::size_t i = 0; i < widths.size(); ++i)
                  require(widths[i] >= 1 && widths[i] <= kMaxLayerWidth,
                          path + "[" + std::to_string(i) + "]", Json(widths[i]),
                          "must be from 1 to " + std::to_string(kMaxLayerWidth));
              }}),
       field("embedding_dim", &ModelConfig::embedding_dim,
             "embedding_mlp: the width of every embedding.", between(1, kMaxEmbeddingDim)),
       section("transformer", &ModelConfig::transformer, transformer_table(),
               "model.type = \"transformer\": the encoder's sizes."),
       section("item_text", &ModelConfig::item_text, item_text_table(),
               "embedding_mlp: item side-table text through the subword Transformer encoder."),
       section("user_sequence", &ModelConfig::user_sequence, user_sequence_table(),
               "embedding_mlp: the user's recent items through causal self-attention (SASRec)."),
       section("backbone", &ModelConfig::backbone, backbone_table(),
               "model.type = \"backbone\": the pretrained encoder and its tokenizer."),
       section("adapter", &ModelConfig::adapter, adapter_table(),
               "model.type = \"backbone\": FiLM or LoRA adapters.")});
  return table;
}

const Table<MetaConfig>& meta_table() {
  static const Table<MetaConfig> table(
      "MetaConfig", "The meta-learning algorithm and its loops.",
      {field("algorithm", &MetaConfig::algorithm,
             "\"maml\" (second order), \"fomaml\", \"reptile\", \"anil\" (inner loop on the head "
             "only), \"metasgd\" (learned per-parameter inner learning rates), \"protonet\" "
             "(class prototypes), and the baselines \"pretrain\" (joint training on all "
             "base-task data, then fine-tune; in a text run cross-entropy over all training "
             "classes at once, a head row per class, its checkpoints chosen by nearest-class-mean "
             "accuracy on the validation classes) and \"scratch\" (random init, fine-tune on "
             "the support set)."),
       field("iterations", &MetaConfig::iterations, "Meta-iterations (outer optimizer steps).",
             at_least(0)),
       field("meta_batch", &MetaConfig::meta_batch, "Tasks per meta-iteration.",
             between(1, kMaxMetaBatch)),
       field("inner_steps", &MetaConfig::inner_steps,
             "SGD steps on each support set during meta-training.", between(1, kMaxSteps)),
       field("inner_lr", &MetaConfig::inner_lr,
             "Inner SGD learning rate (metasgd: the initial value).", positive_number<double>()),
       field("adapt_steps", &MetaConfig::adapt_steps,
             "Adaptation steps of the validation passes during training (with meta.inner_lr), "
             "which choose checkpoints/best.mlckpt. When training completes, train chooses the "
             "steps and inner lr on the validation tasks and writes them to RUN/adaptation.json: "
             "`adapt` uses that choice by default (--steps / --inner-lr override it) and falls "
             "back to meta.adapt_steps and meta.inner_lr only for a run without one (no "
             "validation tasks, task.support = \"all\", or a run stopped early). A text run "
             "writes none: its adapt chooses on the validation classes for the classes at hand. "
             "eval chooses "
             "its own steps from its --steps grid.",
             between(0, kMaxSteps)),
       field(
           "inner_params", &MetaConfig::inner_params,
           "Which parameters the inner loop adapts: \"dense\" (all but embeddings: they are "
           "shared and only meta-updated), \"all\", \"head\" (the output layer), or \"adapters\" "
           "(model.adapter's FiLM or LoRA weights and the output layer). A backbone's own weights "
           "are never adapted. anil always "
           "uses \"head\"; reptile always \"all\" (its meta-update is the walk's displacement, "
           "so a weight the walk leaves out would never be trained)."),
       field("outer_optimizer", &MetaConfig::outer_optimizer,
             "Embedding tables are optimised row-sparsely (train/outer_optimizer.hpp): a step "
             "updates only the rows its meta-batch touched. With \"adam\" that is lazy Adam: an "
             "untouched row keeps its weights and moments (they are not decayed, unlike dense "
             "Adam, which keeps moving rows on old momentum), and bias correction uses the "
             "global step count. With \"sgd\" it equals dense SGD. Dense parameters use plain "
             "torch Adam/SGD."),
       field("outer_lr", &MetaConfig::outer_lr, "The outer optimizer's learning rate.",
             positive_number<double>()),
       field("grad_clip", &MetaConfig::grad_clip,
             "Max global gradient norm of a meta-step, one norm over the dense gradients and the "
             "embedding tables' touched rows.",
             at_least(0.0, "0 = off")),
       field("inner_layers", &MetaConfig::inner_layers,
             "model.type = \"transformer\" only: the inner loop adapts the head and these "
             "encoder layers (0 is the first, -1 the last, -2 the one before), the rest is only "
             "meta-updated; empty: meta.inner_params decides. Not with anil (the head alone) or "
             "reptile (every weight).",
             {"distinct layer numbers",
              [](const std::vector<int>& list, const std::string& path) {
                for (std::size_t i = 0; i < list.size(); ++i) {
                  require(list[i] >= -kMaxLayers && list[i] < kMaxLayers,
                          path + "[" + std::to_string(i) + "]", Json(list[i]),
                          "must be from " + std::to_string(-kMaxLayers) + " to " +
                              std::to_string(kMaxLayers - 1));
                  require(std::count(list.begin(), list.end(), list[i]) == 1,
                          path + "[" + std::to_string(i) + "]", Json(list[i]), "is listed twice");
                }
              }}),
       field("first_order_fallback", &MetaConfig::first_order_fallback,
             "maml only: before the first meta-step, train measures one task's second-order "
             "meta-gradient and, when the meta-batch's would not fit in run.memory_limit_mib, "
             "meta-trains first order (fomaml's meta-gradient, the same inner loop) and says so; "
             "the checkpoint records it. false: second order regardless. Not measured on CUDA "
             "devices (resident memory is the CPU's).")});
  return table;
}

const Table<TrainConfig>& train_table() {
  static const Table<TrainConfig> table(
      "TrainConfig", "Logging, validation and checkpoints during meta-training.",
      {field("log_every", &TrainConfig::log_every, "Meta-iterations between metrics.jsonl lines.",
             at_least(1)),
       field("validate_every", &TrainConfig::validate_every, "Meta-iterations between validations.",
             at_least(0, "0 = only at the end")),
       field("validation_episodes", &TrainConfig::validation_episodes,
             "Episodes per validation task (a text run: per task.label.ways validation classes, "
             "rounded up, so each validation class takes part about this often).",
             between(1, kMaxValidationEpisodes)),
       field("checkpoint_every", &TrainConfig::checkpoint_every,
             "Meta-iterations between latest-checkpoint writes.", at_least(1)),
       field("selection_metric", &TrainConfig::selection_metric,
             "The validation metric that chooses checkpoints/best.mlckpt, measured on the "
             "validation tasks' query sets after the run's adaptation (meta.adapt_steps on the "
             "support): \"auto\" is the task's own metric (AUC for binary labels, accuracy for "
             "multiclass, RMSE for regression); \"loss\" the query loss (log loss, "
             "cross-entropy or MSE); \"auc\" and \"accuracy\" need binary labels (accuracy "
             "also multiclass), \"rmse\" and \"mae\" regression. Higher is better for AUC "
             "and accuracy, lower for the rest.")});
  return table;
}

const Table<RunConfig>& run_table() {
  static const Table<RunConfig> table(
      "RunConfig", "Where a run writes and what it runs on.",
      {field("dir", &RunConfig::dir, "The run directory (config, metrics, logs, checkpoints).",
             not_empty<std::string>("not empty", "must not be empty")),
       field("device", &RunConfig::device,
             "\"auto\" picks CUDA when present; asking for CUDA where there is none is an "
             "error."),
       field("threads", &RunConfig::threads,
             "The CPU thread budget. CSV parsing uses all of it; training spends it on task "
             "workers (the meta-batch cut into one chunk per worker, one thread each), eval, "
             "adapt and predict on episodes, tasks or chunks of rows side by side; only a lone "
             "large matrix product gets threads inside. The chunks change the meta-gradient's "
             "float rounding, not its value, and checkpoints record them for --resume. On the "
             "usable cores (0, no thread variable) training first times a few meta-steps with "
             "and without workers and keeps the workers only when they are faster.",
             between(0, kMaxThreads,
                     "0 = OMP_NUM_THREADS, else OPENBLAS_NUM_THREADS, else the usable cores")),
       field(
           "memory_limit_mib", &RunConfig::memory_limit_mib,
           "The resident memory (MiB) a second-order meta-step may bring the process to "
           "(meta.first_order_fallback); 0: the memory the machine has available when train "
           "starts (MemAvailable, or the cgroup's limit when lower) plus what the process "
           "already holds. Used before a fresh run's first meta-step only: a resumed run keeps "
           "the order it started with, whatever the limit now (so it may differ on --resume). Per "
           "host under torchrun: each rank measures against its own, and one rank over it "
           "makes every rank train first order.",
           between(0, 1 << 30, "0 = available memory"))});
  return table;
}

const Table<Config>& config_table() {
  static const Table<Config> table(
      "Config",
      "A metalearn config file: one JSON object; every key is optional except "
      "data.files and data.columns.task (data.text.column instead in a text run).",
      {field("seed", &Config::seed, "Drives splits, negative sampling and episodes."),
       section("data", &Config::data, data_table(), "The purchase log and its side tables."),
       section("features", &Config::features, feature_config_table(),
               "How examples become model inputs."),
       section("task", &Config::task, task_table(), "How tasks and their episodes are formed."),
       section("split", &Config::split, split_table(), "Held-out tasks and the time split."),
       section("model", &Config::model, model_table(), "The network."),
       section("meta", &Config::meta, meta_table(), "The meta-learning algorithm."),
       section("train", &Config::train, train_table(), "Meta-training's bookkeeping."),
       section("run", &Config::run, run_table(), "Run directory, device and threads.")});
  return table;
}

}  // namespace

bool fits_float(double v) {
  const double magnitude = std::abs(v);
  return std::isfinite(v) && magnitude <= std::numeric_limits<float>::max() &&
         (magnitude == 0 || magnitude >= std::numeric_limits<float>::min());
}

std::string support_name(int support) {
  return support == kSupportAll ? "all" : std::to_string(support);
}

int min_episode_examples(int support, int query) {
  return support == kSupportAll ? query + 1 : support + query;
}

const TableInfo& config_table_info() {
  return config_table().info();
}

void to_json(Json& j, const Config& c) {
  j = config_table().write(c);
}

namespace {

// The log columns an aggregate is computed from, with their config paths.
std::vector<std::pair<std::string, const ColumnRef*>> aggregate_columns(Aggregate a,
                                                                        const ColumnMap& cols) {
  std::vector<std::pair<std::string, const ColumnRef*>> needed;
  if (is_user_aggregate(a))
    needed.emplace_back("data.columns.user", &cols.user);
  else
    needed.emplace_back("data.columns.item", &cols.item);
  if (a == Aggregate::kUserRecency) needed.emplace_back("data.columns.timestamp", &cols.timestamp);
  return needed;
}

void need(bool ok, const std::string& path, const std::string& why) {
  if (!ok) throw ConfigError(path + ": required " + why);
}

std::string quoted(const std::string& name) {
  return "\"" + name + "\"";
}

// features.affinities against the columns they need and the negatives they are fair with.
void check_affinities(const Config& c) {
  const auto& list = c.features.affinities;
  if (list.empty()) return;
  const auto& cols = c.data.columns;
  need(!cols.user.empty(), "data.columns.user", "by features.affinities");
  need(!cols.item.empty(), "data.columns.item", "by features.affinities");
  need(!c.split.time_cutoff.empty(), "split.time_cutoff",
       "by features.affinities (affinities come from the purchases before it, labels after it)");
  std::vector<std::string> item_columns;
  for (const auto& t : c.data.side_tables)
    if (t.join == JoinKey::kItem)
      for (const auto& r : t.features.categorical)
        item_columns.push_back(r.name.empty() ? "#" + std::to_string(r.position) : r.name);
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = "features.affinities[" + std::to_string(i) + "]";
    if (list[i] == kAffinityRelativePrice) {
      need(!cols.price.empty(), "data.columns.price",
           "by " + path + " = " + quoted(kAffinityRelativePrice));
      continue;
    }
    if (list[i] == kAffinityItem) continue;
    if (std::find(item_columns.begin(), item_columns.end(), list[i]) == item_columns.end()) {
      std::string message = path + " = \"" + list[i] + "\": must be " + quoted(kAffinityItem) +
                            ", " + quoted(kAffinityRelativePrice) +
                            " or a categorical column of an item side table (" +
                            (item_columns.empty() ? std::string("none is declared")
                                                  : "declared: " + join(item_columns, ", ")) +
                            ")";
      std::string suggestion = closest_match(list[i], item_columns);
      if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
      throw ConfigError(message);
    }
  }
  if (c.task.label.kind == LabelKind::kImplicit &&
      c.task.label.negatives_exclude != NegativesExclude::kAfterCutoff)
    throw ConfigError(
        "features.affinities: with task.label.kind = \"implicit\" they need "
        "task.label.negatives_exclude = \"after_cutoff\": with \"all_time\" an item the user "
        "bought before the cutoff can never be a negative, so a repeat purchase's affinity would "
        "give its label away");
}

// The columns each label kind reads.
void check_label_columns(const Config& c) {
  const auto& cols = c.data.columns;
  const auto& label = c.task.label;
  const std::string by_kind = "by task.label.kind = " + quoted(enum_name(label.kind));
  switch (label.kind) {
    case LabelKind::kImplicit:
      need(!cols.user.empty(), "data.columns.user", by_kind);
      need(!cols.item.empty(), "data.columns.item", by_kind);
      if (!c.data.features.empty())
        throw ConfigError(
            "data.features: row-level feature columns cannot be used with task.label.kind = "
            "\"implicit\" (sampled negatives have no row to read them from, so they would give "
            "the label away); declare item or user attributes in data.side_tables instead");
      break;
    case LabelKind::kEventBinary:
      need(!cols.event.empty(), "data.columns.event", by_kind);
      break;
    case LabelKind::kRegression:
    case LabelKind::kThreshold: {
      const std::string by_target = "by task.label.target = " + quoted(enum_name(label.target));
      switch (label.target) {
        case LabelTarget::kRating:
          need(!cols.rating.empty(), "data.columns.rating", by_target);
          break;
        case LabelTarget::kPrice:
        case LabelTarget::kSpend:
          need(!cols.price.empty(), "data.columns.price", by_target);
          break;
        case LabelTarget::kQuantity:
          need(!cols.quantity.empty(), "data.columns.quantity", by_target);
          break;
      }
      break;
    }
    case LabelKind::kMulticlass:
      break;
  }
}

// A column taken from a side table (data.columns.task_from, task.label.class_from) needs the
// join's id column in the log and a side table of that join.
void check_column_source(const Config& c, ColumnSource from, const std::string& path) {
  if (from == ColumnSource::kLog) return;
  const JoinKey join = from == ColumnSource::kItem ? JoinKey::kItem : JoinKey::kUser;
  const std::string name = enum_name(from);
  need(!(join == JoinKey::kItem ? c.data.columns.item : c.data.columns.user).empty(),
       "data.columns." + name, "by " + path + " = " + quoted(name));
  const bool declared = std::any_of(c.data.side_tables.begin(), c.data.side_tables.end(),
                                    [&](const SideTable& t) { return t.join == join; });
  if (!declared)
    throw ConfigError(path + " = " + quoted(name) + ": no data.side_tables entry has join = " +
                      quoted(name) + " (the column is read from such a table)");
}

// train.selection_metric: each metric exists for some label kinds only.
void check_selection_metric(const Config& c) {
  const SelectionMetric m = c.train.selection_metric;
  const LabelKind kind = c.task.label.kind;
  const bool binary = kind != LabelKind::kRegression && kind != LabelKind::kMulticlass;
  bool fits = true;
  switch (m) {
    case SelectionMetric::kAuto:
    case SelectionMetric::kLoss:
      break;
    case SelectionMetric::kAuc:
      fits = binary;
      break;
    case SelectionMetric::kAccuracy:
      fits = binary || kind == LabelKind::kMulticlass;
      break;
    case SelectionMetric::kRmse:
    case SelectionMetric::kMae:
      fits = kind == LabelKind::kRegression;
      break;
  }
  if (!fits)
    throw ConfigError("train.selection_metric = " + quoted(enum_name(m)) +
                      ": not a metric of task.label.kind = " + quoted(enum_name(kind)) +
                      " (use \"auto\", \"loss\"" +
                      (binary                           ? ", \"auc\" or \"accuracy\")"
                       : kind == LabelKind::kMulticlass ? " or \"accuracy\")"
                                                        : ", \"rmse\" or \"mae\")"));
}

// A text run (data.text.column) reads a labelled text dataset with the transformer, so the keys
// of a purchase log must be left alone there, and the text keys are refused outside it: a key
// that is silently not used would be a typo's fallback.
void check_text_run(const Config& c) {
  const auto& label = c.task.label;
  if (!c.text_run()) {
    if (c.data.columns.task.empty())
      throw ConfigError(
          "data.columns.task: a task column is required (the column that groups rows into tasks, "
          "e.g. a category), or data.text.column for a text run");
    if (label.kind == LabelKind::kMulticlass && label.class_column.empty())
      throw ConfigError(
          "task.label.class_column: multiclass labels need the column that holds each row's "
          "class");
    if (c.model.type == ModelType::kTransformer || c.model.type == ModelType::kBackbone)
      throw ConfigError("model.type = " + quoted(enum_name(c.model.type)) + ": the " +
                        enum_name(c.model.type) +
                        " reads text; name the text column in data.text.column (a text run), or "
                        "use \"mlp\" or \"embedding_mlp\"");
    const std::pair<const char*, const std::vector<std::string>*> lists[] = {
        {"split.train_classes", &c.split.train_classes},
        {"split.validation_classes", &c.split.validation_classes},
        {"split.new_classes", &c.split.new_classes}};
    for (const auto& [path, list] : lists)
      if (!list->empty())
        throw ConfigError(std::string(path) +
                          ": class lists split a text run's classes (data.text.column); a "
                          "purchase log's tasks are held out by split.new_tasks");
    if (!c.meta.inner_layers.empty())
      throw ConfigError("meta.inner_layers: only for model.type = \"transformer\"");
    return;
  }
  const std::string by_text =
      " in a text run (data.text.column = " + quoted(c.data.text.column) + ")";
  if (label.kind != LabelKind::kMulticlass)
    throw ConfigError("task.label.kind = " + quoted(enum_name(label.kind)) +
                      ": must be \"multiclass\"" + by_text);
  if (!label.class_column.empty())
    throw ConfigError("task.label.class_column = " + label.class_column.describe() + ": not used" +
                      by_text + "; the class is data.text.class_column or data.text.path_column");
  if (c.model.type != ModelType::kTransformer && c.model.type != ModelType::kBackbone)
    throw ConfigError("model.type = " + quoted(enum_name(c.model.type)) +
                      ": must be \"transformer\" or \"backbone\"" + by_text);
  if (!c.data.format.header)
    throw ConfigError("data.format.header = false: a text dataset is read by column names" +
                      by_text + ", so its first line must name the columns");
  const auto& cols = c.data.columns;
  const std::pair<const char*, const ColumnRef*> columns[] = {
      {"task", &cols.task},           {"user", &cols.user},        {"item", &cols.item},
      {"timestamp", &cols.timestamp}, {"event", &cols.event},      {"rating", &cols.rating},
      {"price", &cols.price},         {"quantity", &cols.quantity}};
  for (const auto& [key, ref] : columns)
    if (!ref->empty())
      throw ConfigError("data.columns." + std::string(key) + " = " + ref->describe() +
                        ": purchase-log columns are not used" + by_text +
                        "; leave data.columns out");
  if (!c.data.features.empty())
    throw ConfigError("data.features: not used" + by_text + "; the text column is the input");
  if (!c.data.side_tables.empty()) throw ConfigError("data.side_tables: not used" + by_text);
  if (!c.features.embeddings.empty())
    throw ConfigError("features.embeddings: not used" + by_text +
                      " (its tables are joined by a purchase log's item or user ids)");
  if (!c.features.aggregates.empty() || !c.features.affinities.empty())
    throw ConfigError(
        std::string(c.features.aggregates.empty() ? "features.affinities" : "features.aggregates") +
        ": purchase-log aggregates are not used" + by_text);
  if (c.task.support == kSupportAll)
    throw ConfigError("task.support = \"all\": a text run's episodes are K-shot" + by_text +
                      "; give K (support examples per class)");
  if (c.task.min_examples != 0 || c.task.max_examples != 0)
    throw ConfigError(
        std::string(c.task.min_examples != 0 ? "task.min_examples" : "task.max_examples") +
        ": not used" + by_text +
        " (a class takes part when it has task.support + task.query distinct texts)");
  if (!c.split.new_tasks.empty())
    throw ConfigError(
        "split.new_tasks: a text run holds out classes, not tasks; use "
        "split.new_classes");
  if (!c.split.time_cutoff.empty())
    throw ConfigError("split.time_cutoff: a text dataset has no timestamps" + by_text);
  if (!c.meta.inner_layers.empty() &&
      (c.meta.algorithm == Algorithm::kAnil || c.meta.algorithm == Algorithm::kReptile))
    throw ConfigError(
        "meta.inner_layers: not with meta.algorithm = " + quoted(enum_name(c.meta.algorithm)) +
        (c.meta.algorithm == Algorithm::kAnil
             ? ", whose inner loop adapts the head alone"
             : ", whose inner loop moves every weight (or the rest would never "
               "train)"));
}

// model.backbone and model.adapter against model.type and the algorithm.
void check_backbone(const Config& c) {
  const auto& b = c.model.backbone;
  const bool backbone = c.model.type == ModelType::kBackbone;
  if (c.model.hidden.empty() && !backbone)
    throw ConfigError(
        "model.hidden = []: needs at least one layer width (none only for model.type = "
        "\"backbone\", whose head may read the backbone's vectors directly)");
  if (c.model.hidden.empty() && c.model.adapter.kind == AdapterKind::kLora)
    throw ConfigError(
        "model.adapter.kind = \"lora\": LoRA adapts model.hidden's layers, and model.hidden "
        "is empty; give it a layer or use \"film\"");
  if (!backbone) {
    if (!b.file.empty())
      throw ConfigError(
          "model.backbone.file: set, but model.type = " + quoted(enum_name(c.model.type)) +
          "; a TorchScript backbone needs model.type = \"backbone\"");
    if (c.model.adapter.kind != AdapterKind::kNone)
      throw ConfigError("model.adapter.kind = " + quoted(enum_name(c.model.adapter.kind)) +
                        ": adapters sit on a backbone's head (model.type = \"backbone\")");
    if (c.meta.inner_params == InnerParams::kAdapters)
      throw ConfigError(
          "meta.inner_params = \"adapters\": needs model.type = \"backbone\" (its "
          "model.adapter weights and output layer)");
    return;
  }
  const std::string by = "by model.type = \"backbone\"";
  need(!b.file.empty(), "model.backbone.file", by + " (the TorchScript module)");
  need(!b.tokenizer.empty(), "model.backbone.tokenizer", by + " (the tokenizer of its ids)");
  if (b.dim == 0)
    throw ConfigError(
        "model.backbone.dim: required " + by +
        " (the width of the vector per row the backbone gives; checked when it is loaded)");
  if (b.trainable && c.meta.algorithm == Algorithm::kReptile)
    throw ConfigError(
        "model.backbone.trainable = true: not with meta.algorithm = \"reptile\", whose "
        "meta-update is the inner walk's displacement; the inner loop never moves a backbone, so "
        "it would never train (use fomaml, maml, anil or protonet, or a frozen backbone)");
  if (b.trainable && c.meta.algorithm == Algorithm::kMetaSgd)
    throw ConfigError(
        "model.backbone.trainable = true: not with meta.algorithm = \"metasgd\" (its learned "
        "inner rates would double the backbone's weights for nothing: the inner loop never "
        "adapts them); use maml or a frozen backbone");
}

// model.item_text and model.user_sequence against the model and the columns they read.
void check_context_encoders(const Config& c) {
  const auto& m = c.model;
  const std::pair<bool, const char*> encoders[] = {
      {m.item_text.enabled(), "model.item_text"},
      {m.user_sequence.enabled(), "model.user_sequence"}};
  for (const auto& [on, key] : encoders) {
    if (on && c.text_run())
      throw ConfigError(std::string(key) +
                        ": is for purchase-log runs (an item side table, a user's items); a text "
                        "run (data.text) encodes its texts with model.transformer");
    if (on && m.type != ModelType::kEmbeddingMlp)
      throw ConfigError(std::string(key) + ": needs model.type = \"embedding_mlp\" (it is " +
                        quoted(enum_name(m.type)) +
                        "): its output joins the embedding tower's input");
  }
  if (m.user_sequence.enabled()) {
    const std::string by = "by model.user_sequence (a user's items in time order)";
    need(!c.data.columns.user.empty(), "data.columns.user", by);
    need(!c.data.columns.item.empty(), "data.columns.item", by);
    need(!c.data.columns.timestamp.empty(), "data.columns.timestamp", by);
    if (m.embedding_dim % m.user_sequence.heads != 0)
      throw ConfigError("model.user_sequence.heads = " + std::to_string(m.user_sequence.heads) +
                        ": model.embedding_dim (" + std::to_string(m.embedding_dim) +
                        ", the sequence's width: it reads the item embeddings) must be a "
                        "multiple of it");
  }
  if (!m.item_text.enabled()) return;
  std::vector<std::string> item_text;
  for (const auto& t : c.data.side_tables)
    if (t.join == JoinKey::kItem)
      for (const auto& r : t.features.text)
        item_text.push_back(r.name.empty() ? "#" + std::to_string(r.position) : r.name);
  for (std::size_t i = 0; i < m.item_text.columns.size(); ++i)
    if (std::find(item_text.begin(), item_text.end(), m.item_text.columns[i]) == item_text.end())
      throw ConfigError("model.item_text.columns[" + std::to_string(i) +
                        "] = " + quoted(m.item_text.columns[i]) +
                        ": not a text column of an item side table (data.side_tables[] with "
                        "join \"item\" list in features.text: " +
                        (item_text.empty() ? std::string("none") : join(item_text, ", ")) + ")");
}

}  // namespace

void validate(const Config& c) {
  const auto& cols = c.data.columns;
  const auto& label = c.task.label;
  check_text_run(c);
  check_context_encoders(c);
  check_backbone(c);
  check_label_columns(c);
  check_selection_metric(c);
  if (c.meta.algorithm == Algorithm::kProtonet && label.kind == LabelKind::kRegression)
    throw ConfigError(
        "meta.algorithm = \"protonet\": needs class labels, but task.label.kind = "
        "\"regression\" has none; use maml, fomaml, reptile, anil or metasgd");
  if (!c.split.time_cutoff.empty())
    need(!cols.timestamp.empty(), "data.columns.timestamp", "by split.time_cutoff");
  for (Aggregate a : c.features.aggregates)
    for (const auto& [path, column] : aggregate_columns(a, cols))
      need(!column->empty(), path, "by features.aggregates " + quoted(enum_name(a)));
  if (label.negatives_exclude == NegativesExclude::kAfterCutoff)
    need(!c.split.time_cutoff.empty(), "split.time_cutoff",
         "by task.label.negatives_exclude = \"after_cutoff\" (the label window starts there)");
  check_affinities(c);
  if (c.features.aggregate_rows == AggregateRows::kBeforeCutoff)
    need(!c.split.time_cutoff.empty(), "split.time_cutoff",
         "by features.aggregate_rows = \"before_cutoff\"");
  for (std::size_t i = 0; i < c.data.side_tables.size(); ++i) {
    const auto& t = c.data.side_tables[i];
    const std::string join_name = enum_name(t.join);
    need(!(t.join == JoinKey::kItem ? cols.item : cols.user).empty(), "data.columns." + join_name,
         "by data.side_tables[" + std::to_string(i) + "].join = " + quoted(join_name));
  }
  for (std::size_t i = 0; i < c.features.embeddings.size(); ++i) {
    const std::string join_name = enum_name(c.features.embeddings[i].join);
    need(!(c.features.embeddings[i].join == JoinKey::kItem ? cols.item : cols.user).empty(),
         "data.columns." + join_name,
         "by features.embeddings[" + std::to_string(i) + "].join = " + quoted(join_name));
  }
  check_column_source(c, cols.task_from, "data.columns.task_from");
  if (!label.class_column.empty())
    check_column_source(c, label.class_from, "task.label.class_from");
  auto check_positions = [](const CsvFormat& f, const std::vector<const ColumnRef*>& refs,
                            const std::string& where) {
    if (f.header) return;
    // Every name at once: a user converting a config to positions should not meet them one by
    // one.
    std::vector<std::string> names;
    for (const ColumnRef* r : refs)
      if (!r->name.empty()) names.push_back(r->describe());
    if (!names.empty())
      throw ConfigError(where +
                        ".format.header = false: columns of a headerless file must be "
                        "given by 1-based position, but " +
                        join(names, ", ") + (names.size() == 1 ? " is a name" : " are names"));
  };
  std::vector<const ColumnRef*> log_refs = {&cols.user,   &cols.item,  &cols.timestamp, &cols.event,
                                            &cols.rating, &cols.price, &cols.quantity};
  // Columns read from a side table follow that table's format.
  if (cols.task_from == ColumnSource::kLog) log_refs.push_back(&cols.task);
  if (label.class_from == ColumnSource::kLog) log_refs.push_back(&label.class_column);
  for (const auto* list :
       {&c.data.features.numeric, &c.data.features.categorical, &c.data.features.text})
    for (const auto& r : *list) log_refs.push_back(&r);
  std::vector<const ColumnRef*> nonempty;
  for (const auto* r : log_refs)
    if (!r->empty()) nonempty.push_back(r);
  check_positions(c.data.format, nonempty, "data");
  for (std::size_t i = 0; i < c.data.side_tables.size(); ++i) {
    const auto& t = c.data.side_tables[i];
    std::vector<const ColumnRef*> refs = {&t.key};
    for (const auto* list : {&t.features.numeric, &t.features.categorical, &t.features.text})
      for (const auto& r : *list) refs.push_back(&r);
    check_positions(t.format, refs, "data.side_tables[" + std::to_string(i) + "]");
  }
}

Config config_from_json(const Json& j) {
  Config c;
  config_table().read(JsonObject(j, ""), c);
  const bool aggregates_given =
      j.contains("features") && j["features"].is_object() && j["features"].contains("aggregates");
  if (!aggregates_given) {
    // The default list adapts to the log's columns; a list the user wrote is checked as is.
    auto& list = c.features.aggregates;
    list.erase(std::remove_if(list.begin(), list.end(),
                              [&](Aggregate a) {
                                for (const auto& needed : aggregate_columns(a, c.data.columns))
                                  if (needed.second->empty()) return true;
                                return false;
                              }),
               list.end());
  }
  validate(c);
  return c;
}

void apply_override(Json& root, const std::string& assignment) {
  // The message quotes what was given, cut short: it may be megabytes long.
  auto shortened = [](const std::string& text) {
    return text.size() > 80 ? text.substr(0, 77) + "..." : text;
  };
  auto fail = [&](const std::string& why) {
    throw UsageError("--set '" + shortened(assignment) + "': " + why);
  };
  // A JSON file can only hold UTF-8, but a plain-word value from the shell can hold anything,
  // and a config that is not UTF-8 fails only later, when the run writes it out (train had
  // made its run directory by then). util/utf8 checks by the JSON library's rules.
  if (const std::size_t bad = invalid_utf8_at(assignment); bad != std::string::npos) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(assignment[bad]));
    throw UsageError("--set '" + printable(shortened(assignment)) + "': byte " + byte +
                     " at offset " + std::to_string(bad) +
                     " is not UTF-8; config values are UTF-8 text");
  }
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) fail("expected KEY.PATH=VALUE, e.g. task.support=5");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  JsonText parsed = parse_json_text(text);
  if (parsed.too_deep) fail("the value is " + parsed.problem);
  // Plain words need no JSON quotes.
  Json value = parsed.ok() ? std::move(parsed.value) : Json(text);
  // No config is nearly this deep; a longer path is a mistake (and would build a tree too deep
  // for the reader).
  const auto segments =
      1 + std::count_if(key.begin(), key.end(), [](char c) { return c == '.' || c == '['; });
  if (segments > kMaxJsonDepth)
    fail("the key has " + std::to_string(segments) + " segments; a config key has at most " +
         std::to_string(kMaxJsonDepth));

  // Segments are object keys separated by '.', each optionally followed by [N] list indices
  // (data.side_tables[0].files).
  Json* node = &root;
  std::size_t pos = 0;
  while (pos < key.size()) {
    std::size_t end = key.find_first_of(".[", pos);
    std::string part = key.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (part.empty()) fail("empty key segment in '" + shortened(key) + "'");
    if (node->is_null()) *node = Json::object();
    if (!node->is_object())
      fail("'" + shortened(key.substr(0, pos ? pos - 1 : 0)) + "' is not an object");
    node = &(*node)[part];
    pos = end == std::string::npos ? key.size() : end;
    while (pos < key.size() && key[pos] == '[') {
      std::size_t close = key.find(']', pos);
      auto index = close == std::string::npos ? std::nullopt
                                              : parse_int(key.substr(pos + 1, close - pos - 1));
      if (!index || *index < 0) fail("expected [N] with N >= 0 in '" + shortened(key) + "'");
      if (!node->is_array() || static_cast<std::size_t>(*index) >= node->size())
        fail("'" + shortened(key.substr(0, close + 1)) + "' does not exist (the list has " +
             std::to_string(node->is_array() ? node->size() : 0) + " entries)");
      node = &(*node)[static_cast<std::size_t>(*index)];
      pos = close + 1;
    }
    if (pos < key.size()) {
      if (key[pos] != '.')
        fail("unexpected '" + std::string(1, key[pos]) + "' in '" + shortened(key) + "'");
      ++pos;
      if (pos == key.size()) fail("empty key segment in '" + shortened(key) + "'");
    }
  }
  *node = std::move(value);
}

namespace {

void resolve_paths(Json& list, const fs::path& base) {
  auto fix = [&](Json& v) {
    if (v.is_string()) {
      fs::path p = v.get<std::string>();
      if (p.is_relative()) v = (base / p).lexically_normal().string();
    }
  };
  if (list.is_array())
    for (auto& v : list) fix(v);
  else
    fix(list);
}

// "" stays "": it is no path, and validation names it as such.
std::string absolute_path(const std::string& path) {
  if (path.empty()) return path;
  return fs::absolute(fs::path(path)).lexically_normal().string();
}

}  // namespace

void make_paths_absolute(Config& c) {
  for (auto& f : c.data.files) f = absolute_path(f);
  for (auto& table : c.data.side_tables)
    for (auto& f : table.files) f = absolute_path(f);
  for (auto& table : c.features.embeddings) table.file = absolute_path(table.file);
  if (c.data.cache != kCacheAuto && c.data.cache != kCacheOff)
    c.data.cache = absolute_path(c.data.cache);
  c.model.backbone.file = absolute_path(c.model.backbone.file);
  c.model.backbone.tokenizer = absolute_path(c.model.backbone.tokenizer);
}

Config config_from_saved(const Json& j) {
  Config c = config_from_json(j);
  make_paths_absolute(c);
  // A text run saved before data.text.min_class_groups split every class: read with the
  // default, its eval and adapt would split others, and a class it trained on could come back
  // as a new one.
  if (c.text_run() && !j.contains(Json::json_pointer("/data/text/min_class_groups")))
    c.data.text.min_class_groups = 1;
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found)
    throw ConfigError("cannot open config file '" + path + "': no such file");
  // A folder opens fine as a stream and then reads as empty: say what it is.
  if (status.type() == fs::file_type::directory)
    throw ConfigError("'" + path + "' is a folder; --config takes a JSON config file");
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open config file '" + path + "': " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  JsonText parsed = parse_json_text(text.str());
  if (!parsed.ok()) throw ConfigError(path + ": " + parsed.error());
  Json j = std::move(parsed.value);
  fs::path base = fs::path(path).parent_path();
  if (j.is_object() && j.contains("data") && j["data"].is_object()) {
    Json& data = j["data"];
    if (data.contains("files")) resolve_paths(data["files"], base);
    if (data.contains("cache") && data["cache"] != kCacheAuto && data["cache"] != kCacheOff)
      resolve_paths(data["cache"], base);
    if (data.contains("side_tables") && data["side_tables"].is_array())
      for (auto& t : data["side_tables"])
        if (t.is_object() && t.contains("files")) resolve_paths(t["files"], base);
  }
  if (j.is_object() && j.contains("model") && j["model"].is_object() &&
      j["model"].contains("backbone") && j["model"]["backbone"].is_object()) {
    Json& backbone = j["model"]["backbone"];
    for (const char* key : {"file", "tokenizer"})
      if (backbone.contains(key) && backbone[key] != "") resolve_paths(backbone[key], base);
  }
  if (j.is_object() && j.contains("features") && j["features"].is_object() &&
      j["features"].contains("embeddings") && j["features"]["embeddings"].is_array())
    for (auto& t : j["features"]["embeddings"])
      if (t.is_object() && t.contains("file")) resolve_paths(t["file"], base);
  for (const auto& o : overrides) apply_override(j, o);
  try {
    Config c = config_from_json(j);
    make_paths_absolute(c);
    c.source_path = path;
    return c;
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

}  // namespace ml::config
