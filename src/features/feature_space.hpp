// The feature space of a run: which dense and id features an example has, and the statistics
// behind them (standardisation moments, vocabularies, per-user and per-item aggregates), all
// fitted on training rows only and saved as JSON so that later commands (adapt, eval, predict)
// encode new data exactly as training did.
//
// Dense layout: [row numeric][user numeric][item numeric][aggregates][affinities][one-hot]
// [text buckets].
// Id fields (for embedding models): user id and item id hashed into features.hash_buckets, then
// one field per categorical column (its vocabulary index, 0 = out of vocabulary, or its hash).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/purchase_log.hpp"
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

class FeatureEncoder;

class FeatureSpace {
 public:
  // Fits on `train_rows` (see tasks::training_rows) and the examples of training tasks.
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
  const Affinities& affinities() const { return affinities_; }
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& scale() const { return scale_; }

  // An encoder for one loaded log (maps its dictionary ids onto the fitted statistics).
  FeatureEncoder bind(const data::PurchaseLog& log) const;

  friend void to_json(nlohmann::json& j, const FeatureSpace& f);
  friend void from_json(const nlohmann::json& j, FeatureSpace& f);

 private:
  friend class FeatureEncoder;
  static void bind_affinities(const Affinities& a, const data::PurchaseLog& log, FeatureEncoder& e);
  bool standardize_ = true;
  std::int64_t hash_buckets_ = 1 << 18;
  int text_buckets_ = 64;
  std::vector<std::string> row_numeric_, user_numeric_, item_numeric_;
  std::vector<std::string> row_text_, user_text_, item_text_;
  std::vector<CategoricalField> categorical_;
  AggregateValues user_aggregates_, item_aggregates_;
  Affinities affinities_;
  std::vector<std::string> dense_names_;
  std::vector<float> mean_, scale_;  // per dense dim; (x - mean) / scale
};

// Encodes examples of one log. Cheap to copy; valid while the log and space live.
class FeatureEncoder {
 public:
  // Writes dense_dim() floats and id_fields() ids. `standardized` false gives raw values
  // (used to fit the moments).
  void encode(const tasks::Example& e, float* dense, std::int64_t* ids,
              bool standardized = true) const;

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
};

// Hashed bag of words: lower-cased alphanumeric tokens, counts / token count, into `buckets`.
void hash_text(std::string_view text, int buckets, float* out);

}  // namespace ml::features

namespace ml {
template <>
struct EnumNames<features::Source> {
  using E = features::Source;
  static constexpr EnumName<E> entries[] = {
      {E::kRow, "row"}, {E::kUser, "user"}, {E::kItem, "item"}};
};
}  // namespace ml
