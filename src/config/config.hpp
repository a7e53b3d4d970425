// The typed configuration of a metalearn run. Every parameter is documented once, here, beside
// its field, with its default and the check that config.cpp applies to it (LightGBM style).
// JSON in and out: from_json (strict: unknown keys are errors) and to_json (the resolved config
// with every default filled in, as written into run directories and checkpoints).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/json_object.hpp"

namespace ml::config {

// How the CSV files of one table are written.
struct CsvFormat {
  std::string delimiter = "auto";  // "auto" | "," | "\t" (or "tab") | ";" | " " (or "space")
  bool header = true;              // false: columns are referred to by 1-based position
  char delimiter_char() const;     // 0 for auto
};

// Feature columns of a table, by name or position.
struct FeatureColumns {
  std::vector<ColumnRef> numeric;      // standardised with training statistics
  std::vector<ColumnRef> categorical;  // vocabulary or hashing, with an out-of-vocabulary bucket
  std::vector<ColumnRef> text;         // lower-cased words hashed into features.text_buckets
  bool empty() const { return numeric.empty() && categorical.empty() && text.empty(); }
};

// Which log columns play which role. `task` is required; the rest depend on the label kind.
struct ColumnMap {
  ColumnRef user;       // required for implicit labels (negatives are sampled per user)
  ColumnRef item;       // required for implicit labels
  ColumnRef task;       // the grouping key: category, brand, shop, user, ...
  ColumnRef timestamp;  // unix seconds or ISO-8601 date/time; needed for time_cutoff and recency
  ColumnRef event;      // event type (view/cart/purchase); required for event_binary labels
  ColumnRef rating;     // numeric rating; regression target "rating"
  ColumnRef price;      // unit price; spend = price * quantity
  ColumnRef quantity;   // units; 1 when absent
};

// An attribute table joined onto the log by item id or user id.
struct SideTable {
  std::vector<std::string> files;  // one or more CSV files, read as one table
  CsvFormat format;
  std::string join = "item";  // "item" | "user": which log id the key column matches
  ColumnRef key;              // the id column in this table; required
  FeatureColumns features;    // columns of this table used as features
};

struct DataConfig {
  std::vector<std::string> files;  // the purchase log; parts are concatenated. Required.
                                   // Relative paths resolve against the config file's folder.
  CsvFormat format;
  ColumnMap columns;
  FeatureColumns features;  // row-level feature columns of the log
  std::vector<SideTable> side_tables;
  std::string bad_rows = "skip";     // "skip": count and report malformed rows; "fail": stop at
                                     // the first one with its file and line
  int show_bad_rows = 5;             // how many skipped rows are listed in reports (>= 0)
  std::string time_format = "auto";  // "auto" | "unix" | "iso8601"
  // Where the parsed log is cached so that the next command on unchanged files skips the CSV
  // parse: "auto" (a .metalearn-cache/ folder beside the first data file, or inside run.dir
  // when that folder cannot be written), "off", or a folder (relative paths resolve against
  // the config file's folder, like data.files). Must not be empty.
  std::string cache = "auto";
};

struct FeatureConfig {
  bool standardize = true;            // numeric features to zero mean, unit variance (train stats)
  std::string categorical = "vocab";  // "vocab": values seen in training get an index, the rest
                                      // share one out-of-vocabulary bucket; "hash": hashed into
                                      // hash_buckets (unseen values still land somewhere)
  std::int64_t hash_buckets = 1 << 18;  // >= 2; buckets for hashed ids and hashed categoricals
  int min_count = 1;      // >= 1; vocab values rarer than this in training go to the OOV bucket
  int onehot_max = 32;    // >= 0; vocab categoricals with at most this many values are also
                          // one-hot encoded into the dense vector (for the plain mlp model)
  int text_buckets = 64;  // >= 1; hashed bag-of-words width per text column
  // Per-entity aggregates computed from training rows only. When the key is absent, the
  // defaults that the log's columns support are used (no user_recency without a timestamp).
  // Allowed: user_frequency, user_spend, user_recency, user_mean_price, item_popularity,
  // item_mean_price, item_buyers.
  std::vector<std::string> aggregates = {"user_frequency", "user_spend", "user_recency",
                                         "item_popularity", "item_mean_price"};
  // Which rows the aggregates come from. "training" (default): rows of training tasks (before
  // split.time_cutoff when there is one), so a held-out task's items have no popularity at all;
  // "before_cutoff": every task's rows before split.time_cutoff (required), i.e. what a shop
  // knows on the cutoff day, also about a held-out category's items and buyers. Labels come only
  // from rows at or after the cutoff either way; vocabularies and moments stay training-only.
  std::string aggregate_rows = "training";
  // User x item affinities from the user's purchases before split.time_cutoff (every task's
  // rows: it is what the shop knows about the user on the cutoff day; labels come only from rows
  // at or after it). Each entry is "item" (has the user bought this very item), the name of a
  // categorical column of an item side table (has the user bought this item's brand, product
  // type, ...), each giving "affinity:NAME:count" (log1p of those purchases) and
  // "affinity:NAME:share" (their share of the user's purchases); or "relative_price" (log of
  // the item's mean price over the user's mean price). Default none. Checks: a known column,
  // no duplicates; needs data.columns.user, data.columns.item and split.time_cutoff
  // ("relative_price" also data.columns.price); with implicit labels also
  // task.label.negatives_exclude = "after_cutoff", since otherwise every past purchase is
  // excluded from the negatives and a repeat purchase would give the label away.
  std::vector<std::string> affinities;
};

struct LabelConfig {
  // "implicit": every (user, item) interaction in a task is a positive (optionally only the
  //   positive_events), negatives are items of the same task the user never interacted with;
  // "event_binary": positive_events -> 1, negative_events -> 0, other events dropped;
  // "threshold": target >= threshold -> 1, else 0 (e.g. ratings of 4 and above are positives);
  // "regression": target value; "multiclass": class_column values, N-way K-shot episodes.
  std::string kind = "implicit";
  std::vector<std::string> positive_events = {"purchase"};  // event values counted positive
  std::vector<std::string> negative_events = {"view"};      // event_binary only
  double negatives_per_positive = 1.0;                      // implicit only; > 0
  // implicit only: how negatives are drawn from the task's items. "uniform" (default) or
  // "popularity" (in proportion to the item's number of rows in the task, so negatives are as
  // popular as positives and a task is about the user, not the item's popularity).
  std::string negative_sampling = "uniform";
  // implicit only: which interactions keep an item from being a user's negative. "all_time"
  // (default: any interaction in the task) or "after_cutoff" (only those at or after
  // split.time_cutoff, i.e. the label window; needs split.time_cutoff). "after_cutoff" asks
  // "what will the user buy next": an item bought before the cutoff and not again is a negative.
  std::string negatives_exclude = "all_time";
  std::string target = "rating";  // regression/threshold: "rating" | "price" | "quantity" |
                                  // "spend" (price * quantity)
  double threshold = 4.0;         // threshold only: targets >= this are positives
  ColumnRef class_column;         // multiclass: the class of each row (e.g. product type)
  int ways = 5;                   // multiclass: classes per episode (N), >= 2
};

struct TaskConfig {
  LabelConfig label;
  int support = 10;      // K: support examples per task (per class for multiclass), >= 1
  int query = 15;        // Q: query examples per task (per class for multiclass), >= 1
  int min_examples = 0;  // tasks with fewer examples are dropped; 0 means support + query
  int max_examples = 0;  // tasks with more examples are dropped (e.g. heavy users); 0 = no limit
  // Support composition for binary labels: "balanced" (half positives), "proportional"
  // (the task's label ratio), "none" (uniform draw).
  std::string stratify = "balanced";
};

struct SplitConfig {
  std::vector<std::string> new_tasks;  // held out whole for adapt/eval; overrides new_fraction
  double new_fraction = 0.2;           // seeded fraction of qualifying tasks held out, [0, 1)
  double validation_fraction = 0.1;    // of the qualifying tasks, for validation, [0, 1)
  // "" or a date/time (ISO-8601 or unix seconds): statistics and aggregates come from rows
  // before it, examples from rows at or after it (a temporal split).
  std::string time_cutoff;
};

struct ModelConfig {
  // "mlp": a ReLU tower over the dense feature vector (the classic purchase predictor);
  // "embedding_mlp": hashed id and categorical embeddings concatenated with the dense features,
  // then the tower (MeLU style).
  std::string type = "mlp";
  std::vector<int> hidden = {128, 64};  // tower widths, each >= 1
  int embedding_dim = 16;               // embedding_mlp: width of every embedding, >= 1
};

struct MetaConfig {
  // "maml" (second order), "fomaml", "reptile", "anil" (inner loop on the head only),
  // "metasgd" (learned per-parameter inner learning rates), "protonet" (class prototypes),
  // and the baselines "pretrain" (joint training on all base-task data, then fine-tune) and
  // "scratch" (random init, fine-tune on the support set).
  std::string algorithm = "maml";
  int iterations = 300;   // meta-iterations (outer optimizer steps), >= 0
  int meta_batch = 16;    // tasks per meta-iteration, >= 1
  int inner_steps = 5;    // SGD steps on each support set during meta-training, >= 1
  double inner_lr = 0.3;  // inner SGD learning rate (metasgd: the initial value), > 0
  int adapt_steps = 5;    // steps when adapting to a new task (adapt/eval default), >= 0
  // Which parameters the inner loop adapts: "dense" (all but embeddings: they are shared and
  // only meta-updated), "all", or "head" (the output layer; anil always uses "head").
  std::string inner_params = "dense";
  // "adam" | "sgd". Embedding tables are optimised row-sparsely (train/outer_optimizer.hpp):
  // a step updates only the rows its meta-batch touched. With "adam" that is lazy Adam: an
  // untouched row keeps its weights and moments (they are not decayed, unlike dense Adam,
  // which keeps moving rows on old momentum), and bias correction uses the global step count.
  // With "sgd" it equals dense SGD. Dense parameters use plain torch Adam/SGD.
  std::string outer_optimizer = "adam";
  double outer_lr = 1e-3;  // > 0
  // Max global gradient norm of a meta-step, one norm over the dense gradients and the
  // embedding tables' touched rows; 0 = off.
  double grad_clip = 0;
};

struct TrainConfig {
  int log_every = 10;           // meta-iterations between metrics.jsonl lines, >= 1
  int validate_every = 50;      // meta-iterations between validations; 0 = only at the end
  int validation_episodes = 2;  // episodes per validation task, >= 1
  int checkpoint_every = 100;   // meta-iterations between latest-checkpoint writes, >= 1
};

struct RunConfig {
  std::string dir = "runs/default";  // run directory (config, metrics, logs, checkpoints)
  std::string device = "auto";       // "cpu" | "cuda" | "cuda:N" | "auto"
  int threads = 0;                   // CPU threads: torch, OpenMP, BLAS, CSV parsing; 0 = all
};

struct Config {
  std::uint64_t seed = 42;  // drives splits, negative sampling and episodes
  DataConfig data;
  FeatureConfig features;
  TaskConfig task;
  SplitConfig split;
  ModelConfig model;
  MetaConfig meta;
  TrainConfig train;
  RunConfig run;

  std::string source_path;  // the file it was read from ("" when built in code); not serialised
};

void to_json(Json& j, const Config& c);
// Parses and validates; throws ConfigError with the JSON path of the first problem.
Config config_from_json(const Json& j);
// Cross-field checks (e.g. event_binary needs columns.event); run by config_from_json.
void validate(const Config& c);

// Reads a JSON config file, applies `key.path=value` overrides (value parsed as JSON when it
// is valid JSON, else taken as a string), resolves relative data paths against the file's
// folder, and validates. Errors name the file.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Applies one "a.b.c=value" override to a JSON tree (creating objects on the way).
void apply_override(Json& root, const std::string& assignment);

}  // namespace ml::config
