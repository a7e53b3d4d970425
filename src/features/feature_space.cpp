// Feature statistics and encoding: see feature_space.hpp.
#include "features/feature_space.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <tuple>
#include <unordered_set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "features/embedding_table.hpp"
#include "util/base64.hpp"
#include "util/errors.hpp"
#include "util/rng.hpp"
#include "util/strings.hpp"

namespace ml::features {

using data::kNoId;
using data::kNoTime;

std::int64_t CategoricalField::cardinality() const {
  return hashed ? -1 : static_cast<std::int64_t>(vocabulary.size()) + 1;
}

void hash_text(std::string_view text, int buckets, float* out) {
  std::fill(out, out + buckets, 0.0f);
  int tokens = 0;
  std::string token;
  auto flush = [&] {
    if (token.empty()) return;
    out[hash_bytes(token.data(), token.size()) % static_cast<std::uint64_t>(buckets)] += 1.0f;
    ++tokens;
    token.clear();
  };
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || (c & 0x80))
      token.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    else
      flush();
  }
  flush();
  if (tokens)
    for (int b = 0; b < buckets; ++b) out[b] /= static_cast<float>(tokens);
}

namespace {

// Entities without training history: counts are a true zero, the rest unknown.
float aggregate_default(const std::string& name) {
  for (const char* zero : {"frequency", "spend", "popularity", "buyers"})
    if (name.find(zero) != std::string::npos) return 0.0f;
  return data::kMissing;
}

std::uint64_t hash_id(const std::string& s, std::int64_t buckets) {
  // Bucket 0 is kept for "missing"; ids land in 1..buckets-1.
  return 1 + hash_bytes(s.data(), s.size()) % static_cast<std::uint64_t>(buckets - 1);
}

// An entity's purchases summed up: what every aggregate is computed from.
struct Totals {
  double count = 0, spend = 0, price_sum = 0, price_count = 0;
  double buyers = 0;  // distinct users of an item; counted by whoever knows them
  std::int64_t last = kNoTime;
};

void add_row(const data::PurchaseLog& log, std::size_t r, Totals& t) {
  const float q = std::isnan(log.quantity[r]) ? 1.0f : log.quantity[r];
  const float p = log.price[r];
  t.count += 1;
  if (!std::isnan(p)) {
    t.spend += static_cast<double>(p) * q;
    t.price_sum += p;
    t.price_count += 1;
  }
  if (log.timestamp[r] != kNoTime) t.last = std::max(t.last, log.timestamp[r]);
}

// One aggregate of a history; recency is measured up to `reference`.
float aggregate_value(config::Aggregate kind, const Totals& h, std::int64_t reference) {
  switch (kind) {
    case config::Aggregate::kUserFrequency:
    case config::Aggregate::kItemPopularity:
      return static_cast<float>(std::log1p(h.count));
    case config::Aggregate::kUserSpend:
      return static_cast<float>(std::log1p(std::max(0.0, h.spend)));
    case config::Aggregate::kUserRecency:
      return h.last == kNoTime || reference == kNoTime
                 ? data::kMissing
                 : static_cast<float>(static_cast<double>(reference - h.last) / 86400.0);
    case config::Aggregate::kUserMeanPrice:
    case config::Aggregate::kItemMeanPrice:
      return h.price_count > 0 ? static_cast<float>(h.price_sum / h.price_count) : data::kMissing;
    case config::Aggregate::kItemBuyers:
      return static_cast<float>(std::log1p(h.buyers));
  }
  return data::kMissing;
}

std::vector<config::Aggregate> aggregate_kinds(const AggregateValues& values) {
  std::vector<config::Aggregate> kinds;
  for (const auto& name : values.names) {
    const auto kind = enum_from_name<config::Aggregate>(name);
    if (!kind) throw DataError("feature statistics name an unknown aggregate '" + name + "'");
    kinds.push_back(*kind);
  }
  return kinds;
}

// Which event ids count as purchases for histories: the label's positive events (every row when
// the log has no event column).
std::vector<bool> purchase_events(const data::PurchaseLog& log,
                                  const std::vector<std::string>& positive_events) {
  std::vector<bool> counts_as_purchase(log.events.size(), log.events.size() == 0);
  for (const auto& e : positive_events)
    if (auto id = log.events.find(e)) counts_as_purchase[static_cast<std::size_t>(*id)] = true;
  return counts_as_purchase;
}

std::vector<bool> purchase_events(const data::PurchaseLog& log, const config::Config& config) {
  return purchase_events(log, config.task.label.positive_events);
}

bool is_purchase(const data::PurchaseLog& log, const std::vector<bool>& counts_as_purchase,
                 std::size_t row) {
  return log.event[row] == kNoId || counts_as_purchase[static_cast<std::size_t>(log.event[row])];
}

const data::CategoricalColumn* item_attribute(const data::PurchaseLog& log,
                                              const std::string& name) {
  for (const auto& c : log.item_attributes.categorical)
    if (c.name == name) return &c;
  return nullptr;
}

// Affinities from every purchase strictly before the cutoff, whatever its task: the history a
// shop has of a user on the cutoff day. Examples (and so labels) come from rows at or after it,
// which never enter here.
Affinities fit_affinities(const data::PurchaseLog& log, const config::Config& config,
                          std::int64_t cutoff) {
  Affinities a;
  const auto& names = config.features.affinities;
  if (names.empty()) return a;
  if (cutoff == kNoTime)
    throw DataError(
        "features.affinities need split.time_cutoff: they come from the rows before it");
  const std::vector<bool> counts_as_purchase = purchase_events(log, config);
  std::vector<const data::CategoricalColumn*> columns;
  for (const auto& n : names) {
    if (n == config::kAffinityRelativePrice) {
      a.relative_price = true;
      continue;
    }
    const data::CategoricalColumn* column = nullptr;
    if (n != config::kAffinityItem) {
      column = item_attribute(log, n);
      if (!column)
        throw DataError("features.affinities: '" + n +
                        "' is not a categorical column of the loaded item side tables");
    }
    a.tables.push_back({n, {}});
    columns.push_back(column);
  }
  std::vector<double> user_price_sum(log.users.size(), 0), item_price_sum(log.items.size(), 0);
  std::vector<int> user_price_n(log.users.size(), 0), item_price_n(log.items.size(), 0);
  for (std::size_t r = 0; r < log.size(); ++r) {
    const std::int32_t u = log.user[r], i = log.item[r];
    if (u == kNoId || i == kNoId || log.timestamp[r] == kNoTime || log.timestamp[r] >= cutoff ||
        !is_purchase(log, counts_as_purchase, r))
      continue;
    const std::string& user = log.users.name(u);
    a.user_purchases[user] += 1;
    for (std::size_t t = 0; t < a.tables.size(); ++t) {
      const std::int32_t value = columns[t] ? columns[t]->values[static_cast<std::size_t>(i)] : i;
      if (value == kNoId) continue;
      const std::string& value_name =
          columns[t] ? columns[t]->dictionary.name(value) : log.items.name(i);
      a.tables[t].by_user[user][value_name] += 1;
    }
    if (a.relative_price && std::isfinite(log.price[r]) && log.price[r] > 0) {
      user_price_sum[static_cast<std::size_t>(u)] += log.price[r];
      ++user_price_n[static_cast<std::size_t>(u)];
      item_price_sum[static_cast<std::size_t>(i)] += log.price[r];
      ++item_price_n[static_cast<std::size_t>(i)];
    }
  }
  for (std::size_t u = 0; u < user_price_n.size(); ++u)
    if (user_price_n[u] > 0)
      a.user_mean_price[log.users.name(static_cast<std::int32_t>(u))] =
          static_cast<float>(user_price_sum[u] / user_price_n[u]);
  for (std::size_t i = 0; i < item_price_n.size(); ++i)
    if (item_price_n[i] > 0)
      a.item_mean_price[log.items.name(static_cast<std::int32_t>(i))] =
          static_cast<float>(item_price_sum[i] / item_price_n[i]);
  return a;
}

// Totals of every user and item over the history rows.
struct HistoryTotals {
  std::vector<Totals> users, items;
};

HistoryTotals total_history(const data::PurchaseLog& log, const std::vector<bool>& history) {
  HistoryTotals t{std::vector<Totals>(log.users.size()), std::vector<Totals>(log.items.size())};
  std::vector<std::unordered_set<std::int32_t>> buyers(log.items.size());
  for (std::size_t r = 0; r < log.size(); ++r) {
    if (!history[r]) continue;
    if (log.user[r] != kNoId) add_row(log, r, t.users[static_cast<std::size_t>(log.user[r])]);
    if (log.item[r] != kNoId) {
      add_row(log, r, t.items[static_cast<std::size_t>(log.item[r])]);
      if (log.user[r] != kNoId) buyers[static_cast<std::size_t>(log.item[r])].insert(log.user[r]);
    }
  }
  for (std::size_t i = 0; i < buyers.size(); ++i)
    t.items[i].buyers = static_cast<double>(buyers[i].size());
  return t;
}

void fit_aggregates(const data::PurchaseLog& log, const std::vector<bool>& history,
                    const config::Config& config, std::int64_t cutoff, AggregateValues& users,
                    AggregateValues& items) {
  for (config::Aggregate a : config.features.aggregates)
    (config::is_user_aggregate(a) ? users : items).names.push_back(enum_name(a));
  if (users.names.empty() && items.names.empty()) return;

  const HistoryTotals totals = total_history(log, history);
  // Recency of the totals: up to the cutoff, or without one up to the history's last row.
  std::int64_t reference = cutoff;
  if (cutoff == kNoTime)
    for (std::size_t r = 0; r < log.size(); ++r)
      if (history[r] && log.timestamp[r] != kNoTime)
        reference = std::max(reference, log.timestamp[r]);
  auto store = [&](AggregateValues& out, const std::vector<Totals>& of_entity,
                   const data::Dictionary& ids) {
    if (out.names.empty()) return;
    const std::vector<config::Aggregate> kinds = aggregate_kinds(out);
    for (std::size_t id = 0; id < of_entity.size(); ++id) {
      if (of_entity[id].count == 0) continue;
      std::vector<float> v;
      for (config::Aggregate kind : kinds)
        v.push_back(aggregate_value(kind, of_entity[id], reference));
      out.by_entity.emplace(ids.name(static_cast<std::int32_t>(id)), std::move(v));
    }
  };
  store(users, totals.users, log.users);
  store(items, totals.items, log.items);
}

// Per entity, the distinct times of its history rows in order, with the totals through each.
struct Timeline {
  std::vector<std::size_t> begin;  // entity id -> its first entry; id + 1 -> one past its last
  std::vector<std::int64_t> time;
  std::vector<Totals> through;

  // The totals of the entity's rows strictly before `t` (count 0 when there are none).
  Totals before(std::int32_t id, std::int64_t t) const {
    if (id == kNoId || t == kNoTime) return {};
    const auto first =
        time.begin() + static_cast<std::ptrdiff_t>(begin[static_cast<std::size_t>(id)]);
    const auto last =
        time.begin() + static_cast<std::ptrdiff_t>(begin[static_cast<std::size_t>(id) + 1]);
    const auto at = std::lower_bound(first, last, t);
    return at == first ? Totals{} : through[static_cast<std::size_t>(at - time.begin()) - 1];
  }
};

// `entity` holds each row's user or item id; `count_buyers` counts an item's distinct users.
Timeline build_timeline(const data::PurchaseLog& log, const std::vector<bool>& history,
                        const std::vector<std::int32_t>& entity, std::size_t entities,
                        bool count_buyers) {
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < log.size(); ++r)
    if (history[r] && entity[r] != kNoId && log.timestamp[r] != kNoTime) rows.push_back(r);
  std::sort(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(entity[a], log.timestamp[a], a) < std::tie(entity[b], log.timestamp[b], b);
  });
  Timeline t;
  t.begin.assign(entities + 1, 0);
  Totals run;
  std::unordered_set<std::int32_t> seen;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const std::size_t r = rows[k];
    if (k == 0 || entity[r] != entity[rows[k - 1]]) {
      run = Totals{};
      seen.clear();
    }
    add_row(log, r, run);
    if (count_buyers && log.user[r] != kNoId && seen.insert(log.user[r]).second) run.buyers += 1;
    const bool time_ends = k + 1 == rows.size() || entity[rows[k + 1]] != entity[r] ||
                           log.timestamp[rows[k + 1]] != log.timestamp[r];
    if (!time_ends) continue;
    t.time.push_back(log.timestamp[r]);
    t.through.push_back(run);
    ++t.begin[static_cast<std::size_t>(entity[r]) + 1];
  }
  for (std::size_t id = 0; id < entities; ++id) t.begin[id + 1] += t.begin[id];
  return t;
}

// Vocabulary of one categorical column: values seen in training, most frequent first.
std::vector<std::string> fit_vocabulary(const data::CategoricalColumn& column,
                                        const std::vector<std::int64_t>& weights, int min_count) {
  std::vector<std::pair<std::int64_t, std::string>> ranked;
  for (std::size_t v = 0; v < weights.size(); ++v)
    if (weights[v] >= min_count)
      ranked.emplace_back(-weights[v], column.dictionary.name(static_cast<std::int32_t>(v)));
  std::sort(ranked.begin(), ranked.end());
  std::vector<std::string> vocabulary;
  for (auto& [w, name] : ranked) vocabulary.push_back(std::move(name));
  return vocabulary;
}

const data::FeatureTable& table_of(const data::PurchaseLog& log, Source s) {
  return s == Source::kRow    ? log.features
         : s == Source::kUser ? log.user_attributes
                              : log.item_attributes;
}

template <typename Column>
int column_index(const std::vector<Column>& columns, const std::string& name) {
  for (std::size_t i = 0; i < columns.size(); ++i)
    if (columns[i].name == name) return static_cast<int>(i);
  return -1;
}

std::vector<std::string> names_of(const std::vector<data::NumericColumn>& c) {
  std::vector<std::string> out;
  for (const auto& x : c) out.push_back(x.name);
  return out;
}
std::vector<std::string> names_of(const std::vector<data::TextColumn>& c) {
  std::vector<std::string> out;
  for (const auto& x : c) out.push_back(x.name);
  return out;
}

}  // namespace

struct AggregateHistory {
  AggregateWindow window = AggregateWindow::kFitted;
  std::vector<config::Aggregate> user_kinds, item_kinds;
  Timeline users, items;  // kBeforeExample
  HistoryTotals totals;   // kWithoutOwnPair, less the pair's
  std::unordered_map<std::uint64_t, Totals> pairs;

  // The history one side's aggregates of `e` count.
  Totals of(const tasks::Example& e, Source side) const {
    const std::int32_t id = side == Source::kUser ? e.user : e.item;
    if (id == kNoId) return {};
    if (window == AggregateWindow::kBeforeExample)
      return (side == Source::kUser ? users : items).before(id, e.time);
    Totals t = (side == Source::kUser ? totals.users : totals.items)[static_cast<std::size_t>(id)];
    const auto own = pairs.find(tasks::pair_key(e.user, e.item));
    if (own == pairs.end()) return t;
    t.count -= own->second.count;
    t.spend -= own->second.spend;
    t.price_sum -= own->second.price_sum;
    t.price_count -= own->second.price_count;
    if (side == Source::kItem && e.user != kNoId) t.buyers -= 1;
    return t;
  }
};

struct SequenceIndex {
  // From the bound log: per user id, its purchases' times and items in time order
  // (begin[u] .. begin[u + 1]).
  std::vector<std::size_t> begin;
  std::vector<std::int64_t> time;
  std::vector<std::int32_t> item;
  // For rows new to the run: per user id, the stored last purchases (item names, oldest first).
  std::vector<const std::vector<std::string>*> recent;
  bool from_log = false;
};

namespace {

// The log rows a user sequence may hold: purchases (by `events`) with a user, an item and a
// time, before `cutoff` when there is one; sorted by user, then time, then row.
std::vector<std::size_t> sequence_rows(const data::PurchaseLog& log,
                                       const std::vector<std::string>& events,
                                       std::int64_t cutoff) {
  const std::vector<bool> counts = purchase_events(log, events);
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < log.size(); ++r)
    if (log.user[r] != kNoId && log.item[r] != kNoId && log.timestamp[r] != kNoTime &&
        (cutoff == kNoTime || log.timestamp[r] < cutoff) && is_purchase(log, counts, r))
      rows.push_back(r);
  std::sort(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) {
    return std::tie(log.user[a], log.timestamp[a], a) < std::tie(log.user[b], log.timestamp[b], b);
  });
  return rows;
}

// An item's text for the tokenizer: its `columns` of the item side table, joined by " | " ("" when
// it has none).
std::string item_text(const data::PurchaseLog& log, const std::vector<int>& columns,
                      std::int32_t item) {
  std::string text;
  for (int c : columns) {
    if (c < 0 || item == kNoId) continue;
    const std::string_view v =
        log.item_attributes.text[static_cast<std::size_t>(c)].at(static_cast<std::size_t>(item));
    if (v.empty()) continue;
    if (!text.empty()) text += " | ";
    text += v;
  }
  return text;
}

std::vector<int> text_columns(const data::PurchaseLog& log, const std::vector<std::string>& names) {
  std::vector<int> out;
  for (const auto& n : names) out.push_back(column_index(log.item_attributes.text, n));
  return out;
}

}  // namespace

std::vector<bool> aggregate_history(const data::PurchaseLog& log, const tasks::TaskSet& tasks,
                                    const std::vector<bool>& train_rows,
                                    const config::Config& config) {
  const bool before_cutoff = config.features.aggregate_rows == config::AggregateRows::kBeforeCutoff;
  if (before_cutoff && tasks.cutoff == kNoTime)
    throw DataError("features.aggregate_rows = \"before_cutoff\" needs split.time_cutoff");
  if (train_rows.size() != log.size())
    throw std::invalid_argument("aggregate_history: train_rows must have one entry per log row");
  const std::vector<bool> counts_as_purchase = purchase_events(log, config);
  std::vector<bool> rows(log.size(), false);
  for (std::size_t r = 0; r < log.size(); ++r) {
    const bool history = before_cutoff
                             ? log.timestamp[r] != kNoTime && log.timestamp[r] < tasks.cutoff
                             : static_cast<bool>(train_rows[r]);
    rows[r] = history && is_purchase(log, counts_as_purchase, r);
  }
  return rows;
}

FeatureSpace FeatureSpace::fit(const data::PurchaseLog& log, const tasks::TaskSet& tasks,
                               const std::vector<bool>& train_rows, const config::Config& config) {
  FeatureSpace f;
  const auto& fc = config.features;
  f.standardize_ = fc.standardize;
  f.hash_buckets_ = fc.hash_buckets;
  f.text_buckets_ = fc.text_buckets;
  f.row_numeric_ = names_of(log.features.numeric);
  f.user_numeric_ = names_of(log.user_attributes.numeric);
  f.item_numeric_ = names_of(log.item_attributes.numeric);
  f.row_text_ = names_of(log.features.text);
  f.user_text_ = names_of(log.user_attributes.text);
  f.item_text_ = names_of(log.item_attributes.text);
  const std::vector<bool> history = aggregate_history(log, tasks, train_rows, config);
  fit_aggregates(log, history, config, tasks.cutoff, f.user_aggregates_, f.item_aggregates_);
  f.aggregate_window_ = tasks.cutoff != kNoTime                  ? AggregateWindow::kFitted
                        : !config.data.columns.timestamp.empty() ? AggregateWindow::kBeforeExample
                                                                 : AggregateWindow::kWithoutOwnPair;
  if (f.aggregate_window_ == AggregateWindow::kWithoutOwnPair &&
      !(f.user_aggregates_.names.empty() && f.item_aggregates_.names.empty()))
    spdlog::warn(
        "features.aggregates without data.columns.timestamp: an example's aggregates leave out "
        "its own (user, item) rows, but an entity's value still differs between its positives and "
        "negatives by their own count, which can leak labels; map a timestamp column (each example "
        "then counts only earlier rows) or set features.aggregates = []");
  f.affinities_ = fit_affinities(log, config, tasks.cutoff);
  f.fit_context(log, tasks, config);

  for (Source s : {Source::kRow, Source::kUser, Source::kItem}) {
    for (const auto& column : table_of(log, s).categorical) {
      CategoricalField field;
      field.source = s;
      field.column = column.name;
      field.hashed = fc.categorical == config::CategoricalEncoding::kHash;
      if (!field.hashed) {
        std::vector<std::int64_t> weights(column.dictionary.size(), 0);
        for (std::size_t r = 0; r < log.size(); ++r) {
          if (!train_rows[r]) continue;
          std::int64_t index = s == Source::kRow    ? static_cast<std::int64_t>(r)
                               : s == Source::kUser ? log.user[r]
                                                    : log.item[r];
          if (index == kNoId) continue;
          std::int32_t v = column.values[static_cast<std::size_t>(index)];
          if (v != kNoId) ++weights[static_cast<std::size_t>(v)];
        }
        field.vocabulary = fit_vocabulary(column, weights, fc.min_count);
        field.onehot = static_cast<int>(field.vocabulary.size()) <= fc.onehot_max;
      }
      f.categorical_.push_back(std::move(field));
    }
  }

  auto add_names = [&](const std::vector<std::string>& names, const char* prefix) {
    for (const auto& n : names) f.dense_names_.push_back(std::string(prefix) + n);
  };
  add_names(f.row_numeric_, "row:");
  add_names(f.user_numeric_, "user:");
  add_names(f.item_numeric_, "item:");
  add_names(f.user_aggregates_.names, "");
  add_names(f.item_aggregates_.names, "");
  add_names(f.affinities_.dense_names(), "");
  const std::size_t standardized_dims = f.dense_names_.size();
  for (const auto& field : f.categorical_) {
    if (!field.onehot) continue;
    std::string prefix = std::string(source_name(field.source)) + ":" + field.column + "=";
    f.dense_names_.push_back(prefix + "<other>");
    for (const auto& v : field.vocabulary) f.dense_names_.push_back(prefix + v);
  }
  for (const auto* names : {&f.row_text_, &f.user_text_, &f.item_text_})
    for (const auto& n : *names)
      for (int b = 0; b < f.text_buckets_; ++b)
        f.dense_names_.push_back("text:" + n + "#" + std::to_string(b));
  for (const auto& table : config.features.embeddings) {
    EmbeddingJoin j;
    j.table = table;
    j.name = std::filesystem::path(table.file).stem().string();
    const std::string stem = j.name;
    for (int n = 2; std::any_of(f.embeddings_.begin(), f.embeddings_.end(),
                                [&](const EmbeddingJoin& o) { return o.name == j.name; });
         ++n)
      j.name = stem + "_" + std::to_string(n);
    const auto opened = EmbeddingTable::open(table);
    j.rows = opened->rows();
    j.checksum = opened->checksum();
    for (int k = 0; k < table.dim; ++k)
      f.dense_names_.push_back("embedding:" + j.name + "#" + std::to_string(k));
    if (j.indicator()) f.dense_names_.push_back("embedding:" + j.name + ":missing");
    f.embeddings_.push_back(std::move(j));
  }

  // Moments of the standardised block over the examples of training tasks (Welford).
  f.mean_.assign(f.dense_dim(), 0.0f);
  f.scale_.assign(f.dense_dim(), 1.0f);
  if (f.standardize_ && standardized_dims > 0) {
    FeatureEncoder encoder = f.bind(log, history);
    std::vector<double> mean(standardized_dims, 0), m2(standardized_dims, 0);
    std::vector<std::int64_t> count(standardized_dims, 0);
    std::vector<float> dense(f.dense_dim());
    std::vector<std::int64_t> ids(f.id_fields());
    for (const auto& task : tasks.tasks) {
      if (task.role != tasks::TaskRole::kTrain) continue;
      for (const auto& e : task.examples) {
        encoder.encode(e, dense.data(), ids.data(), /*standardized=*/false);
        for (std::size_t d = 0; d < standardized_dims; ++d) {
          if (std::isnan(dense[d])) continue;
          double delta = dense[d] - mean[d];
          mean[d] += delta / static_cast<double>(++count[d]);
          m2[d] += delta * (dense[d] - mean[d]);
        }
      }
    }
    for (std::size_t d = 0; d < standardized_dims; ++d) {
      double sd = count[d] > 1 ? std::sqrt(m2[d] / static_cast<double>(count[d] - 1)) : 0.0;
      f.mean_[d] = static_cast<float>(mean[d]);
      f.scale_[d] = sd > 1e-8 ? static_cast<float>(sd) : 1.0f;
    }
  }
  return f;
}

std::vector<std::string> Affinities::dense_names() const {
  std::vector<std::string> names;
  for (const auto& t : tables) {
    names.push_back("affinity:" + t.name + ":count");
    names.push_back("affinity:" + t.name + ":share");
  }
  if (relative_price) names.push_back("affinity:relative_price");
  return names;
}

std::vector<std::string> FeatureSpace::id_field_names() const {
  std::vector<std::string> names = {"user", "item"};
  for (const auto& c : categorical_)
    names.push_back(std::string(source_name(c.source)) + ":" + c.column);
  return names;
}

std::vector<std::int64_t> FeatureSpace::id_field_cardinalities() const {
  std::vector<std::int64_t> sizes = {hash_buckets_, hash_buckets_};
  for (const auto& c : categorical_) sizes.push_back(c.hashed ? hash_buckets_ : c.cardinality());
  return sizes;
}

void FeatureSpace::bind_affinities(const Affinities& a, const data::PurchaseLog& log,
                                   FeatureEncoder& e) {
  if (a.empty()) return;
  auto by_user = [&](const std::unordered_map<std::string, float>& values) {
    std::vector<float> out(log.users.size(), data::kMissing);
    for (std::size_t u = 0; u < out.size(); ++u) {
      auto it = values.find(log.users.name(static_cast<std::int32_t>(u)));
      if (it != values.end()) out[u] = it->second;
    }
    return out;
  };
  e.user_purchases_ = by_user(a.user_purchases);
  e.user_mean_price_ = by_user(a.user_mean_price);
  e.item_mean_price_.assign(log.items.size(), data::kMissing);
  for (std::size_t i = 0; i < log.items.size(); ++i) {
    auto it = a.item_mean_price.find(log.items.name(static_cast<std::int32_t>(i)));
    if (it != a.item_mean_price.end()) e.item_mean_price_[i] = it->second;
  }
  for (const auto& table : a.tables) {
    FeatureEncoder::AffinityBinding b;
    const data::CategoricalColumn* column =
        table.name == config::kAffinityItem ? nullptr : item_attribute(log, table.name);
    if (table.name != config::kAffinityItem && !column)
      throw DataError("features.affinities: '" + table.name +
                      "' is not a categorical column of the loaded item side tables");
    b.value_of_item.resize(log.items.size(), kNoId);
    for (std::size_t i = 0; i < log.items.size(); ++i)
      b.value_of_item[i] = column ? column->values[i] : static_cast<std::int32_t>(i);
    b.purchases_by_user.resize(log.users.size());
    const data::Dictionary& values = column ? column->dictionary : log.items;
    for (std::size_t u = 0; u < log.users.size(); ++u) {
      auto it = table.by_user.find(log.users.name(static_cast<std::int32_t>(u)));
      if (it == table.by_user.end()) continue;
      for (const auto& [value_name, count] : it->second) {
        if (const auto id = values.find(value_name)) b.purchases_by_user[u][*id] = count;
      }
    }
    e.affinities_.push_back(std::move(b));
  }
}

void FeatureSpace::fit_context(const data::PurchaseLog& log, const tasks::TaskSet& tasks,
                               const config::Config& config) {
  const auto& text = config.model.item_text;
  if (text.enabled()) {
    item_text_columns_ = text.columns;
    item_text_max_len_ = text.max_len;
    // Like every statistic, the vocabulary comes from training tasks only: the titles of items
    // that occur in held-out tasks alone must not shape it.
    const std::vector<int> columns = text_columns(log, item_text_columns_);
    std::vector<bool> seen(log.items.size(), false);
    std::vector<std::string> texts;
    for (const auto& task : tasks.tasks) {
      if (task.role != tasks::TaskRole::kTrain) continue;
      for (const auto& e : task.examples) {
        if (e.item == kNoId || seen[static_cast<std::size_t>(e.item)]) continue;
        seen[static_cast<std::size_t>(e.item)] = true;
        std::string t = item_text(log, columns, e.item);
        if (!t.empty()) texts.push_back(std::move(t));
      }
    }
    if (texts.empty())
      throw DataError("model.item_text.columns (" + join(item_text_columns_, ", ") +
                      "): no item of a training task has text there to train the tokenizer on");
    item_tokenizer_ = std::make_shared<const Tokenizer>(
        Tokenizer::train(texts, tokenizer_options(config.features.tokenizer, config.seed)));
  }
  const auto& sequence = config.model.user_sequence;
  if (!sequence.enabled()) return;
  sequence_length_ = sequence.length;
  sequence_cutoff_ = tasks.cutoff;
  sequence_events_ = config.task.label.positive_events;
  const std::vector<std::size_t> rows = sequence_rows(log, sequence_events_, sequence_cutoff_);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const std::size_t r = rows[k];
    if (k + 1 < rows.size() && log.user[rows[k + 1]] == log.user[r]) continue;
    // r is the user's last row: take up to L rows back from it.
    std::size_t first = k;
    while (first > 0 && log.user[rows[first - 1]] == log.user[r] &&
           k + 1 - first < static_cast<std::size_t>(sequence_length_))
      --first;
    std::vector<std::string>& items = recent_items_[log.users.name(log.user[r])];
    for (std::size_t j = first; j <= k; ++j) items.push_back(log.items.name(log.item[rows[j]]));
  }
}

FeatureEncoder FeatureSpace::bind(const data::PurchaseLog& log) const {
  FeatureEncoder e;
  e.space_ = this;
  e.log_ = &log;
  auto bind_numeric = [](const std::vector<std::string>& names,
                         const std::vector<data::NumericColumn>& columns) {
    std::vector<int> out;
    for (const auto& n : names) out.push_back(column_index(columns, n));
    return out;
  };
  auto bind_text = [](const std::vector<std::string>& names,
                      const std::vector<data::TextColumn>& columns) {
    std::vector<int> out;
    for (const auto& n : names) out.push_back(column_index(columns, n));
    return out;
  };
  // A row feature the run was trained on must be in every log read with the run's config: a
  // column missing here means it was read under another name, and scoring without it would be
  // silently wrong.
  auto require_row_columns = [&log](const std::vector<std::string>& names,
                                    const std::vector<int>& found) {
    for (std::size_t k = 0; k < names.size(); ++k)
      if (found[k] < 0) {
        std::vector<std::string> read;
        for (const auto& c : log.features.numeric) read.push_back(c.name);
        for (const auto& c : log.features.categorical) read.push_back(c.name);
        for (const auto& c : log.features.text) read.push_back(c.name);
        throw DataError("the run's row feature column '" + names[k] +
                        "' was not read from this file (it read: " +
                        (read.empty() ? std::string("none") : join(read, ", ")) +
                        "); name the column in the run's config, or give it by --column");
      }
  };
  e.row_numeric_ = bind_numeric(row_numeric_, log.features.numeric);
  require_row_columns(row_numeric_, e.row_numeric_);
  e.user_numeric_ = bind_numeric(user_numeric_, log.user_attributes.numeric);
  e.item_numeric_ = bind_numeric(item_numeric_, log.item_attributes.numeric);
  e.row_text_ = bind_text(row_text_, log.features.text);
  require_row_columns(row_text_, e.row_text_);
  e.user_text_ = bind_text(user_text_, log.user_attributes.text);
  e.item_text_ = bind_text(item_text_, log.item_attributes.text);
  for (const auto& field : categorical_) {
    FeatureEncoder::CategoricalBinding b;
    const auto& columns = table_of(log, field.source).categorical;
    b.column = column_index(columns, field.column);
    if (field.source == Source::kRow) require_row_columns({field.column}, {b.column});
    if (b.column >= 0) {
      const auto& dict = columns[static_cast<std::size_t>(b.column)].dictionary;
      std::unordered_map<std::string, std::int64_t> index;
      for (std::size_t i = 0; i < field.vocabulary.size(); ++i)
        index.emplace(field.vocabulary[i], static_cast<std::int64_t>(i) + 1);
      for (std::size_t v = 0; v < dict.size(); ++v) {
        const std::string& name = dict.name(static_cast<std::int32_t>(v));
        if (field.hashed) {
          b.index_of_value.push_back(static_cast<std::int64_t>(hash_id(name, hash_buckets_)));
        } else {
          auto it = index.find(name);
          b.index_of_value.push_back(it == index.end() ? 0 : it->second);
        }
      }
    }
    e.categorical_.push_back(std::move(b));
  }
  auto bind_aggregates = [](const AggregateValues& values, const data::Dictionary& ids,
                            std::vector<const std::vector<float>*>& out) {
    if (values.names.empty()) return;
    out.resize(ids.size(), nullptr);
    for (std::size_t id = 0; id < ids.size(); ++id) {
      auto it = values.by_entity.find(ids.name(static_cast<std::int32_t>(id)));
      if (it != values.by_entity.end()) out[id] = &it->second;
    }
  };
  bind_aggregates(user_aggregates_, log.users, e.user_aggregates_);
  bind_aggregates(item_aggregates_, log.items, e.item_aggregates_);
  bind_affinities(affinities_, log, e);
  for (std::size_t id = 0; id < log.users.size(); ++id)
    e.user_hash_.push_back(hash_id(log.users.name(static_cast<std::int32_t>(id)), hash_buckets_));
  for (std::size_t id = 0; id < log.items.size(); ++id)
    e.item_hash_.push_back(hash_id(log.items.name(static_cast<std::int32_t>(id)), hash_buckets_));
  if (item_tokenizer_) {
    // Each item's text encoded once here, not once per example.
    const std::vector<int> columns = text_columns(log, item_text_columns_);
    auto tokens = std::make_shared<std::vector<std::vector<std::int64_t>>>(log.items.size());
    for (std::size_t id = 0; id < log.items.size(); ++id) {
      std::vector<std::int64_t> ids =
          item_tokenizer_->encode(item_text(log, columns, static_cast<std::int32_t>(id)));
      if (static_cast<std::int64_t>(ids.size()) > item_text_max_len_)
        ids.resize(static_cast<std::size_t>(item_text_max_len_));
      (*tokens)[id] = std::move(ids);
    }
    e.item_tokens_ = std::move(tokens);
  }
  bind_embeddings(log, e);
  if (sequence_length_ > 0) {
    auto index = std::make_shared<SequenceIndex>();
    for (std::size_t id = 0; id < log.users.size(); ++id) {
      const auto it = recent_items_.find(log.users.name(static_cast<std::int32_t>(id)));
      index->recent.push_back(it == recent_items_.end() ? nullptr : &it->second);
    }
    e.sequences_ = std::move(index);
  }
  return e;
}

void FeatureSpace::bind_embeddings(const data::PurchaseLog& log, FeatureEncoder& e) const {
  for (const auto& j : embeddings_) {
    FeatureEncoder::EmbeddingBinding b;
    b.table = EmbeddingTable::open(j.table);
    if (b.table->checksum() != j.checksum || b.table->rows() != j.rows)
      throw DataError(fmt::format(
          "features.embeddings: embedding table '{}' is not the file the run was trained with "
          "(now {} rows, XXH3-64 {:016x}; the run recorded {} rows, {:016x}): restore that file, "
          "or train again on this one",
          j.table.file, b.table->rows(), b.table->checksum(), j.rows, j.checksum));
    const data::Dictionary& ids = j.table.join == config::JoinKey::kItem ? log.items : log.users;
    b.row_of.resize(ids.size());
    for (std::size_t id = 0; id < ids.size(); ++id)
      b.row_of[id] = b.table->find(ids.name(static_cast<std::int32_t>(id)));
    e.embeddings_.push_back(std::move(b));
  }
}

FeatureEncoder FeatureSpace::bind(const data::PurchaseLog& log,
                                  const std::vector<bool>& history) const {
  if (history.size() != log.size())
    throw std::invalid_argument("FeatureSpace::bind: history must have one entry per log row");
  FeatureEncoder e = bind(log);
  if (sequence_length_ > 0) {
    // The fitted log's examples read their own past, row by row, instead of the stored totals.
    auto index = std::make_shared<SequenceIndex>();
    index->from_log = true;
    const std::vector<std::size_t> rows = sequence_rows(log, sequence_events_, sequence_cutoff_);
    index->begin.assign(log.users.size() + 1, 0);
    for (std::size_t r : rows) {
      index->time.push_back(log.timestamp[r]);
      index->item.push_back(log.item[r]);
      ++index->begin[static_cast<std::size_t>(log.user[r]) + 1];
    }
    for (std::size_t id = 0; id < log.users.size(); ++id) index->begin[id + 1] += index->begin[id];
    e.sequences_ = std::move(index);
  }
  if (aggregate_window_ == AggregateWindow::kFitted ||
      (user_aggregates_.names.empty() && item_aggregates_.names.empty()))
    return e;
  auto h = std::make_shared<AggregateHistory>();
  h->window = aggregate_window_;
  h->user_kinds = aggregate_kinds(user_aggregates_);
  h->item_kinds = aggregate_kinds(item_aggregates_);
  if (aggregate_window_ == AggregateWindow::kBeforeExample) {
    if (!h->user_kinds.empty())
      h->users = build_timeline(log, history, log.user, log.users.size(), /*count_buyers=*/false);
    if (!h->item_kinds.empty())
      h->items = build_timeline(log, history, log.item, log.items.size(), /*count_buyers=*/true);
  } else {
    h->totals = total_history(log, history);
    for (std::size_t r = 0; r < log.size(); ++r)
      if (history[r]) add_row(log, r, h->pairs[tasks::pair_key(log.user[r], log.item[r])]);
  }
  e.history_ = std::move(h);
  return e;
}

void FeatureEncoder::encode(const tasks::Example& e, float* dense, std::int64_t* ids,
                            bool standardized) const {
  const FeatureSpace& f = *space_;
  const data::PurchaseLog& log = *log_;
  float* d = dense;
  auto numeric = [&](const std::vector<int>& columns, const std::vector<data::NumericColumn>& table,
                     std::int64_t index) {
    for (int c : columns)
      *d++ = (c < 0 || index < 0)
                 ? data::kMissing
                 : table[static_cast<std::size_t>(c)].values[static_cast<std::size_t>(index)];
  };
  numeric(row_numeric_, log.features.numeric, e.row);
  numeric(user_numeric_, log.user_attributes.numeric, e.user);
  numeric(item_numeric_, log.item_attributes.numeric, e.item);
  auto aggregates = [&](const AggregateValues& values,
                        const std::vector<const std::vector<float>*>& bound, Source side) {
    if (history_) {
      const auto& kinds = side == Source::kUser ? history_->user_kinds : history_->item_kinds;
      if (kinds.empty()) return;
      const Totals h = history_->of(e, side);
      const std::int64_t reference =
          history_->window == AggregateWindow::kBeforeExample ? e.time : kNoTime;
      for (config::Aggregate kind : kinds) *d++ = aggregate_value(kind, h, reference);
      return;
    }
    const std::int32_t id = side == Source::kUser ? e.user : e.item;
    const std::vector<float>* v =
        id == kNoId || bound.empty() ? nullptr : bound[static_cast<std::size_t>(id)];
    for (std::size_t k = 0; k < values.names.size(); ++k)
      *d++ = v ? (*v)[k] : aggregate_default(values.names[k]);
  };
  aggregates(f.user_aggregates_, user_aggregates_, Source::kUser);
  aggregates(f.item_aggregates_, item_aggregates_, Source::kItem);
  if (!f.affinities_.empty()) {
    const auto u = static_cast<std::size_t>(e.user), i = static_cast<std::size_t>(e.item);
    const bool known = e.user != kNoId && e.item != kNoId;
    const float total = known ? user_purchases_[u] : data::kMissing;
    for (const auto& b : affinities_) {
      float count = 0;
      if (known && b.value_of_item[i] != kNoId) {
        auto it = b.purchases_by_user[u].find(b.value_of_item[i]);
        if (it != b.purchases_by_user[u].end()) count = it->second;
      }
      *d++ = std::log1p(count);
      *d++ = std::isnan(total) || total <= 0 ? 0.0f : count / total;  // no history: no share
    }
    if (f.affinities_.relative_price) {
      const float item_price = known ? item_mean_price_[i] : data::kMissing;
      const float user_price = known ? user_mean_price_[u] : data::kMissing;
      *d++ = std::isnan(item_price) || std::isnan(user_price) ? data::kMissing
                                                              : std::log(item_price / user_price);
    }
  }
  const auto standardized_dims = static_cast<std::size_t>(d - dense);
  for (std::size_t k = 0; k < standardized_dims; ++k) {
    if (std::isnan(dense[k]))
      dense[k] = standardized ? 0.0f : data::kMissing;  // missing -> the training mean
    else if (standardized)
      dense[k] = (dense[k] - f.mean_[k]) / f.scale_[k];
  }

  ids[0] =
      e.user == kNoId ? 0 : static_cast<std::int64_t>(user_hash_[static_cast<std::size_t>(e.user)]);
  ids[1] =
      e.item == kNoId ? 0 : static_cast<std::int64_t>(item_hash_[static_cast<std::size_t>(e.item)]);
  for (std::size_t k = 0; k < f.categorical_.size(); ++k) {
    const auto& field = f.categorical_[k];
    const auto& binding = categorical_[k];
    std::int64_t entity = field.source == Source::kRow    ? e.row
                          : field.source == Source::kUser ? e.user
                                                          : e.item;
    std::int64_t index = 0;
    if (binding.column >= 0 && entity >= 0) {
      std::int32_t value = table_of(log, field.source)
                               .categorical[static_cast<std::size_t>(binding.column)]
                               .values[static_cast<std::size_t>(entity)];
      if (value != kNoId) index = binding.index_of_value[static_cast<std::size_t>(value)];
    }
    ids[2 + k] = index;
    if (field.onehot) {
      const auto width = field.vocabulary.size() + 1;
      std::fill(d, d + width, 0.0f);
      d[index] = 1.0f;
      d += width;
    }
  }
  auto text = [&](const std::vector<int>& columns, const std::vector<data::TextColumn>& table,
                  std::int64_t index) {
    for (int c : columns) {
      std::string_view s =
          (c < 0 || index < 0)
              ? std::string_view()
              : table[static_cast<std::size_t>(c)].at(static_cast<std::size_t>(index));
      hash_text(s, f.text_buckets_, d);
      d += f.text_buckets_;
    }
  };
  text(row_text_, log.features.text, e.row);
  text(user_text_, log.user_attributes.text, e.user);
  text(item_text_, log.item_attributes.text, e.item);
  for (std::size_t k = 0; k < f.embeddings_.size(); ++k) {
    const EmbeddingJoin& j = f.embeddings_[k];
    const std::int64_t r =
        embedding_row(k, j.table.join == config::JoinKey::kItem ? e.item : e.user);
    const auto dim = static_cast<std::size_t>(j.table.dim);
    if (r < 0) {
      std::fill(d, d + dim, 0.0f);
    } else {
      const float* v = embeddings_[k].table->row(r);
      double norm = 1;
      if (j.table.normalize == config::EmbeddingNormalize::kL2) {
        double sum = 0;
        for (std::size_t c = 0; c < dim; ++c) sum += static_cast<double>(v[c]) * v[c];
        norm = sum > 0 ? std::sqrt(sum) : 1;
      }
      for (std::size_t c = 0; c < dim; ++c) d[c] = static_cast<float>(v[c] / norm);
    }
    d += dim;
    if (j.indicator()) *d++ = r < 0 ? 1.0f : 0.0f;
  }
}

std::int64_t FeatureEncoder::embedding_row(std::size_t table, std::int32_t entity) const {
  return entity == kNoId ? -1 : embeddings_[table].row_of[static_cast<std::size_t>(entity)];
}

const std::vector<std::int64_t>& FeatureEncoder::item_tokens(const tasks::Example& e) const {
  static const std::vector<std::int64_t> none;
  if (!item_tokens_ || e.item == kNoId) return none;
  return (*item_tokens_)[static_cast<std::size_t>(e.item)];
}

std::vector<std::int64_t> FeatureEncoder::recent_items(const tasks::Example& e) const {
  std::vector<std::int64_t> out;
  if (!sequences_ || e.user == kNoId) return out;
  const SequenceIndex& s = *sequences_;
  const auto user = static_cast<std::size_t>(e.user);
  const auto length = static_cast<std::ptrdiff_t>(space_->sequence_length_);
  if (!s.from_log) {
    if (!s.recent[user]) return out;
    const auto& names = *s.recent[user];
    for (auto it = names.end() - std::min(length, static_cast<std::ptrdiff_t>(names.size()));
         it != names.end(); ++it)
      out.push_back(static_cast<std::int64_t>(hash_id(*it, space_->hash_buckets_)));
    return out;
  }
  if (e.time == kNoTime) return out;  // no place in time: no past
  const auto first = s.time.begin() + static_cast<std::ptrdiff_t>(s.begin[user]);
  const auto last = s.time.begin() + static_cast<std::ptrdiff_t>(s.begin[user + 1]);
  // Strictly before the example's time: never its own row, nor one at the same moment.
  const auto end = std::lower_bound(first, last, e.time);
  for (auto it = end - std::min(length, end - first); it != end; ++it)
    out.push_back(static_cast<std::int64_t>(item_hash_[static_cast<std::size_t>(
        s.item[static_cast<std::size_t>(it - s.time.begin())])]));
  return out;
}

namespace {

template <typename Map>
nlohmann::json sorted_object(const Map& m) {  // sorted keys: the same statistics, the same bytes
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : std::map<std::string, typename Map::mapped_type>(m.begin(), m.end()))
    out[k] = v;
  return out;
}

nlohmann::json affinities_json(const Affinities& a) {
  nlohmann::json tables = nlohmann::json::array();
  for (const auto& t : a.tables) {
    nlohmann::json users = nlohmann::json::object();
    for (const auto& [user, values] : t.by_user) users[user] = sorted_object(values);
    tables.push_back({{"name", t.name}, {"by_user", users}});
  }
  return {{"tables", tables},
          {"relative_price", a.relative_price},
          {"user_purchases", sorted_object(a.user_purchases)},
          {"user_mean_price", sorted_object(a.user_mean_price)},
          {"item_mean_price", sorted_object(a.item_mean_price)}};
}

void affinities_from_json(const nlohmann::json& j, Affinities& a) {
  a = Affinities{};
  for (const auto& t : j.at("tables")) {
    Affinities::Table table{t.at("name").get<std::string>(), {}};
    for (auto it = t.at("by_user").begin(); it != t.at("by_user").end(); ++it)
      table.by_user[it.key()] = it.value().get<std::unordered_map<std::string, float>>();
    a.tables.push_back(std::move(table));
  }
  a.relative_price = j.at("relative_price").get<bool>();
  a.user_purchases = j.at("user_purchases").get<std::unordered_map<std::string, float>>();
  a.user_mean_price = j.at("user_mean_price").get<std::unordered_map<std::string, float>>();
  a.item_mean_price = j.at("item_mean_price").get<std::unordered_map<std::string, float>>();
}

template <typename E>
E choice_from_json(const nlohmann::json& j, const char* key) {
  const auto name = j.at(key).get<std::string>();
  const auto value = enum_from_name<E>(name);
  if (!value)
    throw DataError("feature statistics: unknown embedding " + std::string(key) + " '" + name +
                    "'");
  return *value;
}

EmbeddingJoin embedding_join_from_json(const nlohmann::json& t) {
  EmbeddingJoin e;
  e.name = t.at("name").get<std::string>();
  e.table.file = t.at("file").get<std::string>();
  e.table.join = choice_from_json<config::JoinKey>(t, "join");
  e.table.format = choice_from_json<config::EmbeddingFormat>(t, "format");
  const auto& key = t.at("key");
  if (key.is_string()) e.table.key.name = key.get<std::string>();
  if (key.is_number()) e.table.key.position = key.get<int>();
  e.table.csv.delimiter = choice_from_json<config::Delimiter>(t.at("csv"), "delimiter");
  e.table.csv.header = t.at("csv").at("header").get<bool>();
  e.table.dim = t.at("dim").get<int>();
  e.table.missing = choice_from_json<config::MissingEmbedding>(t, "missing");
  e.table.normalize = choice_from_json<config::EmbeddingNormalize>(t, "normalize");
  e.rows = t.at("rows").get<std::int64_t>();
  const auto checksum = t.at("checksum").get<std::string>();
  const auto parsed =
      std::from_chars(checksum.data(), checksum.data() + checksum.size(), e.checksum, 16);
  if (checksum.empty() || parsed.ec != std::errc() ||
      parsed.ptr != checksum.data() + checksum.size())
    throw DataError("feature statistics: embedding checksum '" + checksum + "' is not hex");
  return e;
}

}  // namespace

std::string FeatureSpace::non_finite_feature(const float* dense, std::size_t rows) const {
  const std::size_t dims = dense_dim();
  for (std::size_t d = 0; d < dims; ++d) {
    if (!std::isfinite(mean_[d]) || !std::isfinite(scale_[d]))
      return "dense feature '" + dense_names_[d] + "' has a non-finite training mean (" +
             fmt::format("{}", mean_[d]) + ") or scale (" + fmt::format("{}", scale_[d]) +
             "): a value in its training rows is not finite";
    std::size_t bad = 0;
    float first = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const float v = dense[r * dims + d];
      if (std::isfinite(v)) continue;
      if (bad++ == 0) first = v;
    }
    if (bad > 0)
      return "dense feature '" + dense_names_[d] + "' is not finite (" + fmt::format("{}", first) +
             " in " + std::to_string(bad) + " of " + std::to_string(rows) + " rows)";
  }
  return "";
}

void to_json(nlohmann::json& j, const FeatureSpace& f) {
  nlohmann::json categorical = nlohmann::json::array();
  for (const auto& c : f.categorical_)
    categorical.push_back({{"source", source_name(c.source)},
                           {"column", c.column},
                           {"hashed", c.hashed},
                           {"onehot", c.onehot},
                           {"vocabulary", c.vocabulary}});
  auto aggregates = [](const AggregateValues& a) {
    nlohmann::json values = nlohmann::json::object();
    for (const auto& [id, v] :
         std::map<std::string, std::vector<float>>(a.by_entity.begin(), a.by_entity.end()))
      values[id] = v;
    return nlohmann::json{{"names", a.names}, {"values", values}};
  };
  j = {{"standardize", f.standardize_},
       {"hash_buckets", f.hash_buckets_},
       {"text_buckets", f.text_buckets_},
       {"numeric", {{"row", f.row_numeric_}, {"user", f.user_numeric_}, {"item", f.item_numeric_}}},
       {"text", {{"row", f.row_text_}, {"user", f.user_text_}, {"item", f.item_text_}}},
       {"categorical", categorical},
       {"aggregates",
        {{"user", aggregates(f.user_aggregates_)}, {"item", aggregates(f.item_aggregates_)}}},
       {"aggregate_window", enum_name(f.aggregate_window_)},
       {"affinities", affinities_json(f.affinities_)},
       {"dense_names", f.dense_names_},
       {"mean", f.mean_},
       {"scale", f.scale_}};
  if (f.item_tokenizer_)
    j["item_text"] = {{"columns", f.item_text_columns_},
                      {"max_len", f.item_text_max_len_},
                      {"tokenizer", base64_encode(f.item_tokenizer_->to_bytes())}};
  if (!f.embeddings_.empty()) {
    nlohmann::json tables = nlohmann::json::array();
    for (const auto& e : f.embeddings_)
      tables.push_back(
          {{"name", e.name},
           {"file", e.table.file},
           {"join", enum_name(e.table.join)},
           {"format", enum_name(e.table.format)},
           {"key", e.table.key},
           {"csv",
            {{"delimiter", enum_name(e.table.csv.delimiter)}, {"header", e.table.csv.header}}},
           {"dim", e.table.dim},
           {"missing", enum_name(e.table.missing)},
           {"normalize", enum_name(e.table.normalize)},
           {"rows", e.rows},
           {"checksum", fmt::format("{:016x}", e.checksum)}});
    j["embeddings"] = tables;
  }
  if (f.sequence_length_ > 0)
    j["user_sequence"] = {
        {"length", f.sequence_length_},
        {"cutoff",
         f.sequence_cutoff_ == kNoTime ? nlohmann::json() : nlohmann::json(f.sequence_cutoff_)},
        {"events", f.sequence_events_},
        {"recent", sorted_object(f.recent_items_)}};
}

void from_json(const nlohmann::json& j, FeatureSpace& f) {
  try {
    f.standardize_ = j.at("standardize").get<bool>();
    f.hash_buckets_ = j.at("hash_buckets").get<std::int64_t>();
    f.text_buckets_ = j.at("text_buckets").get<int>();
    for (Source s : enum_values<Source>()) {
      auto& numeric = s == Source::kRow    ? f.row_numeric_
                      : s == Source::kUser ? f.user_numeric_
                                           : f.item_numeric_;
      auto& text = s == Source::kRow    ? f.row_text_
                   : s == Source::kUser ? f.user_text_
                                        : f.item_text_;
      numeric = j.at("numeric").at(source_name(s)).get<std::vector<std::string>>();
      text = j.at("text").at(source_name(s)).get<std::vector<std::string>>();
    }
    f.categorical_.clear();
    for (const auto& c : j.at("categorical")) {
      CategoricalField field;
      field.source =
          enum_from_name<Source>(c.at("source").get<std::string>()).value_or(Source::kItem);
      field.column = c.at("column").get<std::string>();
      field.hashed = c.at("hashed").get<bool>();
      field.onehot = c.at("onehot").get<bool>();
      field.vocabulary = c.at("vocabulary").get<std::vector<std::string>>();
      f.categorical_.push_back(std::move(field));
    }
    auto aggregates = [](const nlohmann::json& a, AggregateValues& out) {
      out.names = a.at("names").get<std::vector<std::string>>();
      out.by_entity.clear();
      for (auto it = a.at("values").begin(); it != a.at("values").end(); ++it) {
        std::vector<float> v;
        for (const auto& x : it.value()) v.push_back(x.is_null() ? data::kMissing : x.get<float>());
        out.by_entity.emplace(it.key(), std::move(v));
      }
    };
    aggregates(j.at("aggregates").at("user"), f.user_aggregates_);
    aggregates(j.at("aggregates").at("item"), f.item_aggregates_);
    // Statistics saved before the windows existed were trained on the totals: encode as trained.
    f.aggregate_window_ = AggregateWindow::kFitted;
    if (j.contains("aggregate_window")) {
      const auto name = j.at("aggregate_window").get<std::string>();
      const auto window = enum_from_name<AggregateWindow>(name);
      if (!window) throw DataError("feature statistics: unknown aggregate_window '" + name + "'");
      f.aggregate_window_ = *window;
    }
    // Statistics saved before affinities existed have none.
    if (j.contains("affinities"))
      affinities_from_json(j.at("affinities"), f.affinities_);
    else
      f.affinities_ = Affinities{};
    // Statistics without the context encoders' parts (older runs, or runs without them).
    f.item_tokenizer_.reset();
    f.item_text_columns_.clear();
    f.item_text_max_len_ = 0;
    if (j.contains("item_text")) {
      const auto& t = j.at("item_text");
      f.item_text_columns_ = t.at("columns").get<std::vector<std::string>>();
      f.item_text_max_len_ = t.at("max_len").get<std::int64_t>();
      try {
        f.item_tokenizer_ = std::make_shared<const Tokenizer>(
            Tokenizer::from_bytes(base64_decode(t.at("tokenizer").get<std::string>())));
      } catch (const Error& e) {
        throw DataError(std::string("feature statistics' item-text tokenizer: ") + e.what());
      }
    }
    f.sequence_length_ = 0;
    f.recent_items_.clear();
    if (j.contains("user_sequence")) {
      const auto& q = j.at("user_sequence");
      f.sequence_length_ = q.at("length").get<int>();
      f.sequence_cutoff_ = q.at("cutoff").is_null() ? kNoTime : q.at("cutoff").get<std::int64_t>();
      f.sequence_events_ = q.at("events").get<std::vector<std::string>>();
      f.recent_items_ =
          q.at("recent").get<std::unordered_map<std::string, std::vector<std::string>>>();
    }
    f.embeddings_.clear();
    if (j.contains("embeddings"))
      for (const auto& t : j.at("embeddings")) f.embeddings_.push_back(embedding_join_from_json(t));
    f.dense_names_ = j.at("dense_names").get<std::vector<std::string>>();
    f.mean_ = j.at("mean").get<std::vector<float>>();
    f.scale_ = j.at("scale").get<std::vector<float>>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(std::string("feature statistics are incomplete or corrupt: ") + e.what());
  }
  if (f.mean_.size() != f.dense_names_.size() || f.scale_.size() != f.dense_names_.size())
    throw DataError("feature statistics are inconsistent: mean/scale sizes differ from the layout");
  // A fitted scale is positive (a constant column gets 1): 0, a negative or NaN one would turn
  // the column into Inf or NaN for every row encoded. (A non-finite fitted moment, from inputs
  // that overflow, is reported by the divergence check as the input to blame.)
  for (std::size_t d = 0; d < f.scale_.size(); ++d)
    if (!(f.scale_[d] > 0))
      throw DataError("feature statistics are inconsistent: dense feature '" + f.dense_names_[d] +
                      "' has scale " + fmt::format("{}", f.scale_[d]) + " (a positive scale)");
}

}  // namespace ml::features
