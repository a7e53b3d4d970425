// The feature space of a run: which dense and id features an example has, and the statistics
// behind them (standardisation moments, vocabularies, per-user and per-item aggregates), all
// fitted on training rows only and saved as JSON so that later commands (adapt, eval, predict)
// encode new data exactly as training did.
//
// Dense layout: [row numeric][user numeric][item numeric][aggregates][affinities][one-hot]
// [text buckets][embedding tables]. Only the first five blocks are standardised.
// Id fields (for embedding models): user id and item id hashed into features.hash_buckets, then
// one field per categorical column (its vocabulary index, 0 = out of vocabulary, or its hash).
//
// Aggregates never count the example they describe (see AggregateWindow): a purchase counted in
// its own item's popularity would give the label away.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/purchase_log.hpp"
#include "features/tokenizer.hpp"
#include "tasks/task_set.hpp"

namespace ml::features {

// Which table a feature column comes from; its name prefixes feature names ("item:brand").
enum class Source { kRow, kUser, kItem };
inline std::string source_name(Source s) {
  return enum_name(s);
}

struct CategoricalField {
  Source source = Source::kRow;
  std::string column;
  bool hashed = false;
  std::vector<std::string> vocabulary;  // index i + 1; index 0 is out-of-vocabulary
  bool onehot = false;
  std::int64_t cardinality() const;  // id range of this field
};

struct AggregateValues {
  std::vector<std::string> names;                                 // e.g. "user_frequency"
  std::unordered_map<std::string, std::vector<float>> by_entity;  // entity id -> values
};

// Which of the history rows an example's aggregates count, so that they never count the example
// itself (docs: features.aggregates). by_entity always holds the totals over every history row:
// what rows new to the run (predict --input, adapt --support-csv) are encoded with.
// - kFitted: those totals, for every example. With split.time_cutoff every history row is before
//   the cutoff and every example at or after it, so no example's rows are among them. (Statistics
//   saved before the windows existed load as kFitted: they were trained on the totals.)
// - kBeforeExample: without a cutoff each example is its own cutoff: its aggregates count the
//   history rows strictly before its time (point-in-time aggregates; the "ordered target
//   statistics" of Prokhorenkova et al., CatBoost, NeurIPS 2018, sec. 3.2, ordered by real time).
//   Rows and examples without a time have no place in that order: the rows are never counted,
//   the examples have no history. Sampled negatives take their positive's time, so both classes
//   are read the same way.
// - kWithoutOwnPair: without a cutoff and without timestamps, the totals less every row of the
//   example's (user, item) pair (leave-one-out). This still leaks, more weakly: an entity's value
//   differs between its positives and its negatives by their own count (the leave-one-out target
//   statistic shift, ibid. sec. 3.2), which FeatureSpace::fit warns about.
enum class AggregateWindow { kFitted, kBeforeExample, kWithoutOwnPair };

// The rows aggregates count: purchases (task.label.positive_events; every row when the log has no
// event column) among `train_rows`, or, with features.aggregate_rows = "before_cutoff", among
// every task's rows before split.time_cutoff. Throws DataError for "before_cutoff" without one.
std::vector<bool> aggregate_history(const data::PurchaseLog& log, const tasks::TaskSet& tasks,
                                    const std::vector<bool>& train_rows,
                                    const config::Config& config);

// Per-entity histories for the per-example windows; built by FeatureSpace::bind.
struct AggregateHistory;
// Per-user purchase timelines of model.user_sequence; built by FeatureSpace::bind.
struct SequenceIndex;

// User x item affinities (features.affinities) from the purchases before split.time_cutoff,
// kept by id names so a checkpoint encodes a later log exactly as training did.
struct Affinities {
  // "item" or an item attribute column: user -> value (item id or attribute value) -> purchases.
  struct Table {
    std::string name;
    std::unordered_map<std::string, std::unordered_map<std::string, float>> by_user;
  };
  std::vector<Table> tables;
  bool relative_price = false;
  std::unordered_map<std::string, float> user_purchases;  // all of the user's purchases
  std::unordered_map<std::string, float> user_mean_price, item_mean_price;  // positive prices
  std::vector<std::string> dense_names() const;
  bool empty() const { return tables.empty() && !relative_price; }
};

class EmbeddingTable;  // features/embedding_table.hpp

// A table of features.embeddings as the fitted statistics record it: where and how it was read
// and what it held, so that later commands join the very same vectors or refuse a changed file.
// Its dense inputs: "embedding:NAME#0" .. "#dim-1", then with missing = "learned"
// "embedding:NAME:missing" (1 for an id absent from the table), never standardised.
struct EmbeddingJoin {
  std::string name;  // the file name without its extension, made unique among the run's tables
  config::EmbeddingTableConfig table;
  std::int64_t rows = 0;
  std::uint64_t checksum = 0;  // EmbeddingTable::checksum()
  bool indicator() const { return table.missing == config::MissingEmbedding::kLearned; }
};

class FeatureEncoder;

class FeatureSpace {
 public:
  // Fits on `train_rows` (see tasks::training_rows) and the examples of training tasks. Warns
  // (one line) when aggregates fall back to AggregateWindow::kWithoutOwnPair.
  static FeatureSpace fit(const data::PurchaseLog& log, const tasks::TaskSet& tasks,
                          const std::vector<bool>& train_rows, const config::Config& config);

  std::size_t dense_dim() const { return dense_names_.size(); }
  const std::vector<std::string>& dense_names() const { return dense_names_; }
  std::size_t id_fields() const { return 2 + categorical_.size(); }
  std::vector<std::string> id_field_names() const;
  std::vector<std::int64_t> id_field_cardinalities() const;
  const std::vector<CategoricalField>& categorical() const { return categorical_; }
  const AggregateValues& user_aggregates() const { return user_aggregates_; }
  const AggregateValues& item_aggregates() const { return item_aggregates_; }
  AggregateWindow aggregate_window() const { return aggregate_window_; }
  const Affinities& affinities() const { return affinities_; }
  const std::vector<EmbeddingJoin>& embeddings() const { return embeddings_; }
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& scale() const { return scale_; }

  // Model inputs beyond the feature vector (models/context_model.hpp).
  // model.item_text: the tokenizer trained on the text of the items of training tasks only
  // (null when item text is off), and the tokens kept per item text.
  const Tokenizer* item_tokenizer() const { return item_tokenizer_.get(); }
  std::int64_t item_text_max_len() const { return item_text_max_len_; }
  // model.user_sequence: items per sequence (0: off).
  int sequence_length() const { return sequence_length_; }

  // An encoder for one loaded log (maps its dictionary ids onto the fitted statistics); opens the
  // embedding tables (EmbeddingTable::open: read once per process) and throws DataError when one
  // is not the file the statistics were fitted with (checksum, rows). Every
  // example reads the aggregate totals: right for rows the history never held (predict --input,
  // adapt --support-csv), wrong for the fitted log's own examples, which need the overload below.
  FeatureEncoder bind(const data::PurchaseLog& log) const;
  // The encoder for the log the space was fitted on (or the same log loaded again), `history`
  // being aggregate_history() of it: with a per-example aggregate_window() each example's
  // aggregates leave out its own rows as the window says. Throws std::invalid_argument when
  // `history` does not have one entry per log row.
  FeatureEncoder bind(const data::PurchaseLog& log, const std::vector<bool>& history) const;

  // The first dense feature that is not finite in `dense` (`rows` x dense_dim() values, as
  // FeatureEncoder::encode writes them) or in its fitted moments, described for an error line:
  // "dense feature 'item:weight' is not finite (inf in 3 of 20 rows)". "" when all are finite.
  // What a NaN loss comes from when its inputs are to blame.
  std::string non_finite_feature(const float* dense, std::size_t rows) const;

  friend void to_json(nlohmann::json& j, const FeatureSpace& f);
  friend void from_json(const nlohmann::json& j, FeatureSpace& f);

 private:
  friend class FeatureEncoder;
  static void bind_affinities(const Affinities& a, const data::PurchaseLog& log, FeatureEncoder& e);
  // model.item_text's tokenizer and model.user_sequence's settings and stored recent items.
  void fit_context(const data::PurchaseLog& log, const tasks::TaskSet& tasks,
                   const config::Config& config);
  void bind_embeddings(const data::PurchaseLog& log, FeatureEncoder& e) const;
  bool standardize_ = true;
  std::int64_t hash_buckets_ = 1 << 18;
  int text_buckets_ = 64;
  std::vector<std::string> row_numeric_, user_numeric_, item_numeric_;
  std::vector<std::string> row_text_, user_text_, item_text_;
  std::vector<CategoricalField> categorical_;
  AggregateValues user_aggregates_, item_aggregates_;
  AggregateWindow aggregate_window_ = AggregateWindow::kFitted;
  Affinities affinities_;
  std::vector<std::string> dense_names_;
  std::vector<float> mean_, scale_;  // per dense dim; (x - mean) / scale
  std::vector<std::string> item_text_columns_;
  std::int64_t item_text_max_len_ = 0;
  std::shared_ptr<const Tokenizer> item_tokenizer_;
  int sequence_length_ = 0;
  std::int64_t sequence_cutoff_ = data::kNoTime;  // split.time_cutoff: sequences end before it
  std::vector<std::string> sequence_events_;      // events that count (every row without events)
  // Each user's last sequence_length_ purchased items (names, oldest first) over the whole log
  // before the cutoff: the sequence of rows new to the run, as aggregates use their totals.
  std::unordered_map<std::string, std::vector<std::string>> recent_items_;
  std::vector<EmbeddingJoin> embeddings_;
};

// Encodes examples of one log. Cheap to copy; valid while the log and space live.
class FeatureEncoder {
 public:
  // Writes dense_dim() floats and id_fields() ids. `standardized` false gives raw values
  // (used to fit the moments).
  void encode(const tasks::Example& e, float* dense, std::int64_t* ids,
              bool standardized = true) const;

  const FeatureSpace& space() const { return *space_; }
  // model.item_text: the token ids of the example's item's text (its columns joined by " | "),
  // at most item_text_max_len(), without padding; empty for an item without text.
  const std::vector<std::int64_t>& item_tokens(const tasks::Example& e) const;
  // model.user_sequence: the item-table rows (hashed item ids, as ids column 1) of the user's
  // last sequence_length() purchases, oldest first (at most that many). For the log the space
  // was bound to with its history: the purchases strictly before the example's time (and before
  // split.time_cutoff), never the example's own row or a later one, and none for an example
  // without a time. For rows new to the run (bind(log)): the user's last purchases over the
  // run's whole log, as stored at fit time.
  std::vector<std::int64_t> recent_items(const tasks::Example& e) const;
  // The row of space().embeddings()[table] that log id `entity` (a user or item id, by the
  // table's join) has: -1 when the table lacks it or `entity` is kNoId.
  std::int64_t embedding_row(std::size_t table, std::int32_t entity) const;

 private:
  friend class FeatureSpace;
  const FeatureSpace* space_ = nullptr;
  const data::PurchaseLog* log_ = nullptr;
  // Column indices into the log's tables for each named feature column.
  std::vector<int> row_numeric_, user_numeric_, item_numeric_;
  std::vector<int> row_text_, user_text_, item_text_;
  struct CategoricalBinding {
    int column = -1;
    std::vector<std::int64_t> index_of_value;  // log dictionary id -> field index
  };
  std::vector<CategoricalBinding> categorical_;
  std::vector<const std::vector<float>*> user_aggregates_, item_aggregates_;  // by log id
  std::shared_ptr<const AggregateHistory> history_;   // per-example windows; null: the totals
  std::vector<std::uint64_t> user_hash_, item_hash_;  // hashed id bucket by log id
  // Affinities by log id: per table, the item's value id (item id or attribute value id, kNoId
  // when unknown) and per user the purchases of each value; then the per-user and per-item
  // numbers (NaN when unknown).
  struct AffinityBinding {
    std::vector<std::int32_t> value_of_item;
    std::vector<std::unordered_map<std::int32_t, float>> purchases_by_user;
  };
  std::vector<AffinityBinding> affinities_;
  std::vector<float> user_purchases_, user_mean_price_, item_mean_price_;
  std::shared_ptr<const std::vector<std::vector<std::int64_t>>> item_tokens_;  // by log item id
  std::shared_ptr<const SequenceIndex> sequences_;
  struct EmbeddingBinding {
    std::shared_ptr<const EmbeddingTable> table;
    std::vector<std::int64_t> row_of;  // log user or item id -> table row, -1 when absent
  };
  std::vector<EmbeddingBinding> embeddings_;
};

// Hashed bag of words: lower-cased alphanumeric tokens, counts / token count, into `buckets`.
void hash_text(std::string_view text, int buckets, float* out);

}  // namespace ml::features

namespace ml {
template <>
struct EnumNames<features::AggregateWindow> {
  using E = features::AggregateWindow;
  static constexpr EnumName<E> entries[] = {{E::kFitted, "fitted"},
                                            {E::kBeforeExample, "before_example"},
                                            {E::kWithoutOwnPair, "without_own_pair"}};
};

template <>
struct EnumNames<features::Source> {
  using E = features::Source;
  static constexpr EnumName<E> entries[] = {
      {E::kRow, "row"}, {E::kUser, "user"}, {E::kItem, "item"}};
};
}  // namespace ml
