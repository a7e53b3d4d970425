// The typed configuration of a metalearn run. What each field means, its default and its check
// are written once, in the field tables of config.cpp (config as data), which also read, write
// and validate the config and generate docs/CONFIG.md: read that file, or `metalearn
// config-docs`, for the reference. The defaults are the member initializers below.
// JSON in and out: config_from_json (strict: unknown keys are errors) and to_json (the resolved
// config with every default filled in, as written into run directories and checkpoints).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/choices.hpp"
#include "config/json_object.hpp"
#include "util/time_parse.hpp"

namespace ml::config {

struct TableInfo;  // config/field_table.hpp

// Upper bounds of the size fields: far above any real use, and low enough that what they size
// can be allocated and counted without overflow (a typo such as 1e9 is refused with its key
// instead of failing as an allocation or hanging). Documented in docs/CONFIG.md.
inline constexpr int kMaxEpisodeExamples = 1000000;  // task.support, task.query (per class)
inline constexpr int kMaxWays = 1000;                // task.label.ways
inline constexpr std::int64_t kMaxHashBuckets = std::int64_t{1} << 24;  // features.hash_buckets
inline constexpr int kMaxTextBuckets = 65536;                           // features.text_buckets
inline constexpr int kMaxLayerWidth = 65536;                            // each of model.hidden
inline constexpr int kMaxLayers = 64;                                   // entries of model.hidden
inline constexpr int kMaxEmbeddingDim = 4096;                           // model.embedding_dim
inline constexpr int kMaxMetaBatch = 10000;                             // meta.meta_batch
inline constexpr int kMaxSteps = 1000000;     // meta.inner_steps, meta.adapt_steps
inline constexpr int kMaxEpisodes = 1000000;  // eval --episodes
// train.validation_episodes: a validation pass lists its episodes before it runs them.
inline constexpr int kMaxValidationEpisodes = 10000;
inline constexpr int kMaxThreads = 1024;                   // run.threads, --threads
inline constexpr int kMaxTokenLength = 4096;               // model.transformer.max_len
inline constexpr std::int64_t kMaxVocabulary = 1 << 20;    // features.tokenizer.vocab_size
inline constexpr std::int64_t kMaxTokenBuckets = 1 << 20;  // features.tokenizer.hash_buckets
// The most parameters the model these sizes give together may hold (models::model_shape checks
// it once the feature space is known): 2^30, 4 GiB of 32-bit weights before the optimizer's
// moments and the inner loop's copies multiply them.
inline constexpr std::int64_t kMaxModelParameters = std::int64_t{1} << 30;

struct CsvFormat {
  Delimiter delimiter = Delimiter::kAuto;
  bool header = true;
  char delimiter_char() const { return config::delimiter_char(delimiter); }  // 0 for auto
};

struct FeatureColumns {
  std::vector<ColumnRef> numeric;
  std::vector<ColumnRef> categorical;
  std::vector<ColumnRef> text;
  bool empty() const { return numeric.empty() && categorical.empty() && text.empty(); }
};

struct ColumnMap {
  ColumnRef user;
  ColumnRef item;
  ColumnRef task;
  ColumnRef timestamp;
  ColumnRef event;
  ColumnRef rating;
  ColumnRef price;
  ColumnRef quantity;
  ColumnSource task_from = ColumnSource::kLog;
};

struct SideTable {
  std::vector<std::string> files;
  CsvFormat format;
  JoinKey join = JoinKey::kItem;
  ColumnRef key;
  FeatureColumns features;
  DuplicateKeys duplicates = DuplicateKeys::kError;
};

// The two words of data.cache that are not a folder.
inline constexpr const char* kCacheAuto = "auto";
inline constexpr const char* kCacheOff = "off";

// A labelled text dataset instead of a purchase log (few-shot text classification over held-out
// classes: data/text_dataset.hpp). Columns by name: a text dataset has a header.
struct TextColumns {
  std::string column;  // "" : the run reads a purchase log
  std::string class_column;
  std::string path_column;
  std::string path_separator = " >> ";
  int path_level = 1;
  PathMode path_mode = PathMode::kPrefix;
  std::string group_column;
  // Classes with fewer distinct usable duplicate groups are left out before the split; 0: the
  // episode's task.support + task.query (min_class_groups()).
  int min_class_groups = 0;
};

struct DataConfig {
  std::vector<std::string> files;
  CsvFormat format;
  ColumnMap columns;
  FeatureColumns features;
  std::vector<SideTable> side_tables;
  BadRows bad_rows = BadRows::kSkip;
  int show_bad_rows = 5;
  TimeFormat time_format = TimeFormat::kAuto;
  std::string cache = kCacheAuto;
  TextColumns text;
};

// The subword tokenizer of text runs (features/tokenizer.hpp), trained on training-class texts.
struct TokenizerConfig {
  SubwordModel model = SubwordModel::kUnigram;
  std::int64_t vocab_size = 2000;
  double character_coverage = 0.9995;
  std::int64_t hash_buckets = 1024;
  int ngram = 3;
  int max_ngrams_per_unknown = 4;
  std::int64_t max_training_texts = 0;
};

// features.embeddings[]: a table of vectors computed offline (item2vec, a large model's item or
// user vectors), joined onto examples by item or user id as dense inputs
// (features/embedding_table.hpp has the file formats).
struct EmbeddingTableConfig {
  std::string file;
  JoinKey join = JoinKey::kItem;
  EmbeddingFormat format = EmbeddingFormat::kAuto;
  ColumnRef key;  // CSV: the id column; empty: the first column
  CsvFormat csv;
  int dim = 0;  // required: checked against the file
  MissingEmbedding missing = MissingEmbedding::kZero;
  EmbeddingNormalize normalize = EmbeddingNormalize::kNone;
};

// The widest vector features.embeddings[].dim may declare.
inline constexpr int kMaxEmbeddingTableDim = 65536;

struct FeatureConfig {
  bool standardize = true;
  CategoricalEncoding categorical = CategoricalEncoding::kVocab;
  std::int64_t hash_buckets = 1 << 18;
  int min_count = 1;
  int onehot_max = 32;
  int text_buckets = 64;
  std::vector<Aggregate> aggregates = {Aggregate::kUserFrequency, Aggregate::kUserSpend,
                                       Aggregate::kUserRecency, Aggregate::kItemPopularity,
                                       Aggregate::kItemMeanPrice};
  AggregateRows aggregate_rows = AggregateRows::kTraining;
  // Not an enum: besides "item" and "relative_price" an entry may name a side-table column.
  std::vector<std::string> affinities;
  TokenizerConfig tokenizer;
  std::vector<EmbeddingTableConfig> embeddings;
};

// The fixed entries of features.affinities (the others name item side-table columns).
inline constexpr const char* kAffinityItem = "item";
inline constexpr const char* kAffinityRelativePrice = "relative_price";

struct LabelConfig {
  LabelKind kind = LabelKind::kImplicit;
  std::vector<std::string> positive_events = {"purchase"};
  std::vector<std::string> negative_events = {"view"};
  double negatives_per_positive = 1.0;
  NegativeSampling negative_sampling = NegativeSampling::kUniform;
  NegativesExclude negatives_exclude = NegativesExclude::kAllTime;
  LabelTarget target = LabelTarget::kRating;
  double threshold = 4.0;
  ColumnRef class_column;
  ColumnSource class_from = ColumnSource::kLog;
  int ways = 5;
};

// task.support = "all" (and adapt's `--shots all`): an episode's support is every
// example of the task (of its N classes, for multiclass) that is not in its query, as per-user
// protocols use it (MeLU, RecBole-MetaRec: support = all of the user's other interactions).
inline constexpr int kSupportAll = -1;
// "all" for kSupportAll, else the number.
std::string support_name(int support);
// The fewest examples (per class for multiclass) an episode of `support` + `query` needs:
// support + query, or query + 1 with kSupportAll (a support of at least one example).
int min_episode_examples(int support, int query);

struct TaskConfig {
  LabelConfig label;
  int support = 10;  // K, or kSupportAll
  int query = 15;
  int min_examples = 0;
  int max_examples = 0;
  Stratify stratify = Stratify::kBalanced;
};

struct SplitConfig {
  std::vector<std::string> new_tasks;
  // Text runs: explicit class lists (used when any is non-empty; else the fractions).
  std::vector<std::string> train_classes, validation_classes, new_classes;
  double new_fraction = 0.2;
  double validation_fraction = 0.1;
  std::string time_cutoff;
};

// model.type = "transformer" (models/transformer.hpp).
struct TransformerConfig {
  int dim = 64;
  int heads = 4;
  int layers = 2;
  int ff_dim = 128;
  int max_len = 32;
  Activation activation = Activation::kGelu;
};

// model.item_text: item side-table text columns through the subword tokenizer and a small
// Transformer encoder, mean-pooled into the embedding_mlp's tower input (models/context_model.hpp).
struct ItemTextConfig {
  std::vector<std::string> columns;  // empty: off
  int dim = 32;
  int layers = 1;
  int heads = 2;
  int ff_dim = 64;
  int max_len = 16;
  bool enabled() const { return !columns.empty(); }
};

// model.user_sequence: the user's last `length` items before the example (SASRec) through
// causal self-attention over the item-id embeddings (models/context_model.hpp).
struct UserSequenceConfig {
  int length = 0;  // 0: off
  int layers = 1;
  int heads = 2;
  int ff_dim = 64;
  bool enabled() const { return length > 0; }
};

// The most items a user sequence holds (model.user_sequence.length).
inline constexpr int kMaxSequenceLength = 1024;

// model.type = "backbone": a pretrained text encoder saved as TorchScript, with the tool's head
// (model.hidden) and adapters (model.adapter) on top (models/torchscript_backbone.hpp,
// models/backbone_model.hpp).
struct BackboneConfig {
  std::string file;       // the TorchScript module (torch.jit.save)
  std::string tokenizer;  // a metalearn tokenizer, a SentencePiece model or a WordPiece vocab
  LowerCase lowercase = LowerCase::kAuto;  // WordPiece only
  std::string method = "forward";          // the module's method that encodes
  BackboneInputs inputs = BackboneInputs::kIdsMask;
  MaskType mask = MaskType::kBool;
  int dim = 0;  // the vector per row it gives (checked on load)
  BackboneOutput output = BackboneOutput::kPooled;
  int max_len = 64;
  bool trainable = false;
  double lr = 0;  // outer learning rate of a trainable backbone; 0: meta.outer_lr
};

// model.adapter: parameter-efficient adapters between a backbone and its head.
struct AdapterConfig {
  AdapterKind kind = AdapterKind::kNone;
  int rank = 4;  // lora
};

struct ModelConfig {
  ModelType type = ModelType::kMlp;
  std::vector<int> hidden = {128, 64};
  int embedding_dim = 16;
  TransformerConfig transformer;
  ItemTextConfig item_text;
  UserSequenceConfig user_sequence;
  BackboneConfig backbone;
  AdapterConfig adapter;
};

struct MetaConfig {
  Algorithm algorithm = Algorithm::kMaml;
  int iterations = 300;
  int meta_batch = 16;
  int inner_steps = 5;
  double inner_lr = 0.3;
  int adapt_steps = 5;
  InnerParams inner_params = InnerParams::kDense;
  OuterOptimizer outer_optimizer = OuterOptimizer::kAdam;
  double outer_lr = 1e-3;
  double grad_clip = 0;
  std::vector<int> inner_layers;     // transformer: the head plus these encoder layers adapt
  bool first_order_fallback = true;  // maml: first order when second would not fit in memory
};

struct TrainConfig {
  int log_every = 10;
  int validate_every = 50;
  int validation_episodes = 2;
  int checkpoint_every = 100;
  SelectionMetric selection_metric = SelectionMetric::kAuto;
};

struct RunConfig {
  std::string dir = "runs/default";
  DeviceSpec device;
  int threads = 0;
  int memory_limit_mib = 0;  // 0: what the machine has available when train starts
};

struct Config {
  std::uint64_t seed = 42;
  DataConfig data;
  FeatureConfig features;
  TaskConfig task;
  SplitConfig split;
  ModelConfig model;
  MetaConfig meta;
  TrainConfig train;
  RunConfig run;

  std::string source_path;  // the file it was read from ("" when built in code); not serialised

  // Whether the run reads a labelled text dataset (data.text.column) instead of a purchase log.
  bool text_run() const { return !data.text.column.empty(); }
};

// Every number field, and every number option that becomes one (--inner-lr), ends up in 32-bit
// float arithmetic: the model's weights and learning rates, labels, fractions of tasks. A value
// a float cannot hold would fail deep inside torch ("value cannot be converted to type float")
// or silently become 0 or inf, so the config reader (and the CLI) refuse it: `fits_float` says
// whether `v` is 0 or a finite magnitude from FLT_MIN to FLT_MAX; kFitsFloat says so in words.
bool fits_float(double v);
inline constexpr const char* kFitsFloat =
    "fit a 32-bit float (a magnitude from 1.2e-38 to 3.4e+38, or 0)";

void to_json(Json& j, const Config& c);
// Parses and validates; throws ConfigError with the JSON path of the first problem.
Config config_from_json(const Json& j);
// Cross-field checks (e.g. event_binary needs columns.event); run by config_from_json.
void validate(const Config& c);

// Reads a JSON config file, applies `key.path=value` overrides (value parsed as JSON when it
// is valid JSON, else taken as a string), resolves relative data paths against the file's
// folder (those of overrides against the working directory), and validates. The data paths of
// the result are absolute (make_paths_absolute), so that the resolved config, once written out
// (--print-config, RUN/config.json, a checkpoint's), reads back as the same config from any
// folder. Errors name the file.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Makes every data path absolute against the working directory, lexically normalised:
// data.files, data.side_tables[].files, features.embeddings[].file, data.cache when it names a
// folder, and model.backbone.file and .tokenizer. run.dir is left
// as written (relative to the working directory, as documented for it).
void make_paths_absolute(Config& c);

// A config written by an earlier command (a checkpoint's, RUN/config.json): config_from_json,
// then make_paths_absolute, so that runs written before data paths were stored absolute (their
// relative paths meant the working directory) compare equal to configs loaded now; a text run
// saved before data.text.min_class_groups gets 1 (every class kept, as it was split).
Config config_from_saved(const Json& j);

// Every section's field table, top level first: what docs/CONFIG.md and the tests walk.
const TableInfo& config_table_info();

// Applies one "a.b.c=value" override to a JSON tree (creating objects on the way).
void apply_override(Json& root, const std::string& assignment);

}  // namespace ml::config
