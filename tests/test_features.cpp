// Tests for the feature space: training-only statistics, encoding, JSON round trip, hash_text.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/purchase_log.hpp"
#include "features/feature_space.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/run_data.hpp"
#include "tasks/task_set.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"
#include "util/logging.hpp"

namespace {

using ml::testing::TempDir;
using ml::testing::write_file;

namespace fs = std::filesystem;
using ml::features::FeatureSpace;
using ml::tasks::TaskRole;

struct Row {
  std::string user, item, task;
  std::int64_t ts = 0;
  int rating = 0;
  std::string amount, channel;
};

// Four tasks A..D of ten rows. D is held out by name; one of A..C becomes validation.
// - channel: "app"/"web", "promo_<task>" on row 5 of each task, "kiosk" only in D, "late" only
//   on row 9 (the last rows in time), and empty once (C, row 3).
// - users rotate over u0..u4 (u0 takes rows 8 and 9, so histories differ in length); user uD
//   only appears in D and its segment "platinum" exists nowhere else.
// - items of D have brand "nova", which no other item has; item Bi2 has no weight.
// - B row 7 has no amount.
std::vector<Row> make_rows() {
  std::vector<Row> rows;
  const std::string tasks = "ABCD";
  for (int j = 0; j < 10; ++j)
    for (int t = 0; t < 4; ++t) {
      Row r;
      r.task = std::string(1, tasks[static_cast<std::size_t>(t)]);
      r.user = t == 3 && j == 0 ? "uD" : "u" + std::to_string(j >= 8 ? 0 : (t + j) % 5);
      r.item = r.task + "i" + std::to_string(j % 4);
      r.ts = 1000 + 100 * j + t;
      r.rating = j % 5 + 1;
      r.amount = t == 1 && j == 7 ? "" : std::to_string(3 * j + t * t);
      r.channel = t == 3             ? "kiosk"
                  : j == 9           ? "late"
                  : j == 5           ? "promo_" + r.task
                  : t == 2 && j == 3 ? ""
                  : j % 2            ? "web"
                                     : "app";
      rows.push_back(r);
    }
  return rows;
}

struct Fixture {
  TempDir dir;
  std::vector<Row> rows;
  ml::config::Config config;
  ml::data::PurchaseLog log;
  ml::tasks::TaskSet set;
  std::vector<bool> train_rows;
  std::set<std::string> train_tasks, held_out_tasks;

  explicit Fixture(const std::string& cutoff = "", const std::string& categorical = "vocab") {
    rows = make_rows();
    std::string csv = "user,item,task,ts,rating,amount,channel\n";
    for (const auto& r : rows)
      csv += r.user + "," + r.item + "," + r.task + "," + std::to_string(r.ts) + "," +
             std::to_string(r.rating) + "," + r.amount + "," + r.channel + "\n";
    write_file(dir.file("log.csv"), csv);
    std::string items = "item,brand,weight,title\n";
    for (char t : std::string("ABCD"))
      for (int i = 0; i < 4; ++i) {
        std::string id = std::string(1, t) + "i" + std::to_string(i);
        items += id + "," +
                 (t == 'D' ? "nova"
                  : i % 2  ? "acme"
                           : "zeta") +
                 "," + (id == "Bi2" ? "" : std::to_string(100 + 10 * i + (t - 'A'))) +
                 ",\"Crunchy Oats, " + std::to_string(i) + " pack\"\n";
      }
    write_file(dir.file("items.csv"), items);
    write_file(dir.file("users.csv"),
               "user,segment\nu0,gold\nu1,silver\nu2,gold\nu3,bronze\nu4,silver\nuD,platinum\n");

    auto& c = config;
    c.data.files = {dir.file("log.csv")};
    c.data.columns.user = {"user", 0};
    c.data.columns.item = {"item", 0};
    c.data.columns.task = {"task", 0};
    c.data.columns.timestamp = {"ts", 0};
    c.data.columns.rating = {"rating", 0};
    c.data.time_format = ml::TimeFormat::kUnix;
    c.data.features.numeric = {{"amount", 0}};
    c.data.features.categorical = {{"channel", 0}};
    ml::config::SideTable item_table;
    item_table.files = {dir.file("items.csv")};
    item_table.join = ml::config::JoinKey::kItem;
    item_table.key = {"item", 0};
    item_table.features.numeric = {{"weight", 0}};
    item_table.features.categorical = {{"brand", 0}};
    item_table.features.text = {{"title", 0}};
    ml::config::SideTable user_table;
    user_table.files = {dir.file("users.csv")};
    user_table.join = ml::config::JoinKey::kUser;
    user_table.key = {"user", 0};
    user_table.features.categorical = {{"segment", 0}};
    c.data.side_tables = {item_table, user_table};
    c.features.categorical = ml::testing::choice<ml::config::CategoricalEncoding>(categorical);
    c.features.hash_buckets = 97;
    c.features.text_buckets = 8;
    c.features.aggregates = {ml::config::Aggregate::kUserFrequency,
                             ml::config::Aggregate::kItemPopularity};
    c.task.label.kind = ml::config::LabelKind::kThreshold;
    c.task.label.threshold = 4;
    c.task.support = 1;
    c.task.query = 1;
    c.task.stratify = ml::config::Stratify::kNone;
    c.split.new_tasks = {"D"};
    c.split.validation_fraction = 0.34;  // lround(0.34 * 3) = 1 of A, B, C
    c.split.time_cutoff = cutoff;
    ml::config::validate(c);

    ml::data::LoadReport report;
    log = ml::data::load_purchase_log(c, report);
    EXPECT_EQ(report.rows_rejected, 0);
    EXPECT_EQ(log.size(), rows.size());
    set = ml::tasks::build_tasks(log, c);
    ml::tasks::split_tasks(set, c);
    train_rows = ml::tasks::training_rows(log, set);
    for (const auto& t : set.tasks) {
      if (t.role == TaskRole::kTrain) train_tasks.insert(t.name);
      if (t.role == TaskRole::kNew || t.role == TaskRole::kValidation)
        held_out_tasks.insert(t.name);
    }
    EXPECT_EQ(train_tasks.size(), 2u);
    EXPECT_EQ(held_out_tasks.size(), 2u);
    EXPECT_EQ(held_out_tasks.count("D"), 1u);
  }

  std::int64_t cutoff_time() const {
    return config.split.time_cutoff.empty() ? std::numeric_limits<std::int64_t>::max()
                                            : std::stoll(config.split.time_cutoff);
  }
  // The test's own notion of a training row: a train-role task, before the cutoff.
  bool is_training_row(const Row& r) const {
    return train_tasks.count(r.task) && r.ts < cutoff_time();
  }
  std::string validation_task() const {
    for (const auto& t : set.tasks)
      if (t.role == TaskRole::kValidation) return t.name;
    return "";
  }
  FeatureSpace fit() const { return FeatureSpace::fit(log, set, train_rows, config); }
  std::vector<bool> history() const {
    return ml::features::aggregate_history(log, set, train_rows, config);
  }
};

std::size_t dim_of(const FeatureSpace& f, const std::string& name) {
  const auto& names = f.dense_names();
  auto it = std::find(names.begin(), names.end(), name);
  EXPECT_NE(it, names.end()) << name;
  return static_cast<std::size_t>(it - names.begin());
}

std::size_t field_of(const FeatureSpace& f, const std::string& name) {
  auto names = f.id_field_names();
  auto it = std::find(names.begin(), names.end(), name);
  EXPECT_NE(it, names.end()) << name;
  return static_cast<std::size_t>(it - names.begin());
}

struct Encoded {
  std::vector<float> dense;
  std::vector<std::int64_t> ids;
};

Encoded encode(const ml::features::FeatureEncoder& encoder, const FeatureSpace& f,
               const ml::tasks::Example& e, bool standardized = true) {
  Encoded out{std::vector<float>(f.dense_dim(), -123.0f),
              std::vector<std::int64_t>(f.id_fields(), -7)};
  encoder.encode(e, out.dense.data(), out.ids.data(), standardized);
  return out;
}

// As the run encodes the examples of the log it was fitted on.
Encoded encode(const FeatureSpace& f, const Fixture& fx, const ml::tasks::Example& e,
               bool standardized = true) {
  return encode(f.bind(fx.log, fx.history()), f, e, standardized);
}

// The example built from log row r (threshold labels: one example per row).
const ml::tasks::Example* example_of_row(const ml::tasks::TaskSet& set, std::size_t r) {
  for (const auto& t : set.tasks)
    for (const auto& e : t.examples)
      if (e.row == static_cast<std::int64_t>(r)) return &e;
  return nullptr;
}

std::size_t row_where(const std::string& task, int j) {
  return static_cast<std::size_t>(j) * 4 + static_cast<std::size_t>(task[0] - 'A');
}

TEST(FeaturesLeakage, ValuesSeenOnlyInHeldOutRowsAreOutOfVocabulary) {
  Fixture fx;
  FeatureSpace f = fx.fit();
  const std::string v = fx.validation_task();
  ASSERT_FALSE(v.empty());
  const std::string t = *fx.train_tasks.begin();

  // The test's expected vocabulary of channel: values on training rows.
  std::set<std::string> expected;
  for (const auto& r : fx.rows)
    if (fx.is_training_row(r) && !r.channel.empty()) expected.insert(r.channel);
  const auto& fields = f.categorical();
  auto channel = std::find_if(fields.begin(), fields.end(),
                              [](const auto& c) { return c.column == "channel"; });
  ASSERT_NE(channel, fields.end());
  EXPECT_EQ(std::set<std::string>(channel->vocabulary.begin(), channel->vocabulary.end()),
            expected);
  EXPECT_EQ(expected.count("kiosk"), 0u);
  EXPECT_EQ(expected.count("promo_" + v), 0u);

  const std::size_t ch = field_of(f, "row:channel"), brand = field_of(f, "item:brand"),
                    segment = field_of(f, "user:segment");
  // D's row 0: channel kiosk, brand nova, user uD (platinum): all out of vocabulary.
  const auto* d0 = example_of_row(fx.set, row_where("D", 0));
  ASSERT_NE(d0, nullptr);
  auto enc = encode(f, fx, *d0);
  EXPECT_EQ(enc.ids[ch], 0);
  EXPECT_EQ(enc.ids[brand], 0);
  EXPECT_EQ(enc.ids[segment], 0);
  EXPECT_FLOAT_EQ(enc.dense[dim_of(f, "row:channel=<other>")], 1.0f);
  EXPECT_FLOAT_EQ(enc.dense[dim_of(f, "item:brand=<other>")], 1.0f);
  EXPECT_FLOAT_EQ(enc.dense[dim_of(f, "user:segment=<other>")], 1.0f);
  // The validation task's promo value is out of vocabulary; a training task's is not.
  auto promo_v = encode(f, fx, *example_of_row(fx.set, row_where(v, 5)));
  EXPECT_EQ(promo_v.ids[ch], 0);
  auto promo_t = encode(f, fx, *example_of_row(fx.set, row_where(t, 5)));
  EXPECT_GT(promo_t.ids[ch], 0);
  EXPECT_FLOAT_EQ(promo_t.dense[dim_of(f, "row:channel=promo_" + t)], 1.0f);
  // Vocabulary indices of training values run from 1.
  auto app = encode(f, fx, *example_of_row(fx.set, row_where(t, 0)));
  EXPECT_GE(app.ids[ch], 1);
  EXPECT_LE(app.ids[ch], static_cast<std::int64_t>(expected.size()));
}

TEST(FeaturesLeakage, AggregatesAndMomentsComeFromTrainingRowsOnly) {
  Fixture fx;
  FeatureSpace f = fx.fit();
  std::map<std::string, int> user_rows, item_rows;
  for (const auto& r : fx.rows)
    if (fx.is_training_row(r)) {
      ++user_rows[r.user];
      ++item_rows[r.item];
    }
  const auto& ua = f.user_aggregates();
  ASSERT_EQ(ua.names, (std::vector<std::string>{"user_frequency"}));
  EXPECT_EQ(ua.by_entity.size(), user_rows.size());
  for (const auto& [user, n] : user_rows) {
    ASSERT_TRUE(ua.by_entity.count(user)) << user;
    EXPECT_NEAR(ua.by_entity.at(user)[0], std::log1p(n), 1e-5) << user;
  }
  EXPECT_EQ(ua.by_entity.count("uD"), 0u);  // only in the held-out task
  const auto& ia = f.item_aggregates();
  for (const auto& [item, n] : item_rows)
    EXPECT_NEAR(ia.by_entity.at(item)[0], std::log1p(n), 1e-5) << item;
  for (const auto& kv : ia.by_entity) EXPECT_TRUE(item_rows.count(kv.first)) << kv.first;

  // Without a cutoff each example is its own: user_frequency of an example = the user's
  // training rows strictly before its time (its own row never), 0 without any. Rows new to the
  // run (an encoder without the history) read the totals.
  ASSERT_EQ(f.aggregate_window(), ml::features::AggregateWindow::kBeforeExample);
  const std::size_t uf = dim_of(f, "user_frequency"), ip = dim_of(f, "item_popularity");
  const auto totals = f.bind(fx.log);
  for (std::size_t r = 0; r < fx.rows.size(); ++r) {
    const auto* e = example_of_row(fx.set, r);
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(e->time, fx.rows[r].ts);
    int user_before = 0, item_before = 0;
    for (const auto& h : fx.rows)
      if (fx.is_training_row(h) && h.ts < fx.rows[r].ts) {
        user_before += h.user == fx.rows[r].user;
        item_before += h.item == fx.rows[r].item;
      }
    auto raw = encode(f, fx, *e, /*standardized=*/false);
    EXPECT_NEAR(raw.dense[uf], std::log1p(user_before), 1e-5) << "row " << r;
    EXPECT_NEAR(raw.dense[ip], std::log1p(item_before), 1e-5) << "row " << r;
    auto new_row = encode(totals, f, *e, /*standardized=*/false);
    auto it = user_rows.find(fx.rows[r].user);
    EXPECT_NEAR(new_row.dense[uf], it == user_rows.end() ? 0.0 : std::log1p(it->second), 1e-5);
  }

  // Standardisation of row:amount: mean and sample sd over examples of training tasks.
  std::vector<double> amounts;
  for (const auto& r : fx.rows)
    if (fx.train_tasks.count(r.task) &&
        r.ts >= (fx.config.split.time_cutoff.empty() ? std::numeric_limits<std::int64_t>::min()
                                                     : fx.cutoff_time()) &&
        !r.amount.empty())
      amounts.push_back(std::stod(r.amount));
  ASSERT_GT(amounts.size(), 2u);
  double mean = 0;
  for (double a : amounts) mean += a;
  mean /= static_cast<double>(amounts.size());
  double ss = 0;
  for (double a : amounts) ss += (a - mean) * (a - mean);
  const double sd = std::sqrt(ss / static_cast<double>(amounts.size() - 1));
  const std::size_t am = dim_of(f, "row:amount");
  EXPECT_NEAR(f.mean()[am], mean, 1e-4);
  EXPECT_NEAR(f.scale()[am], sd, 1e-4);
  // All rows' mean (held-out tasks included) differs, so the check above can tell them apart.
  double all = 0;
  int n = 0;
  for (const auto& r : fx.rows)
    if (!r.amount.empty()) all += std::stod(r.amount), ++n;
  EXPECT_GT(std::abs(all / n - mean), 0.1);
}

TEST(FeaturesLeakage, TimeCutoffKeepsLaterRowsOutOfStatistics) {
  Fixture fx("1700");  // rows j >= 7 are at or after the cutoff
  FeatureSpace f = fx.fit();
  // "late" occurs only on row 9 of each task, in training tasks too, but after the cutoff.
  const auto& fields = f.categorical();
  auto channel = std::find_if(fields.begin(), fields.end(),
                              [](const auto& c) { return c.column == "channel"; });
  ASSERT_NE(channel, fields.end());
  EXPECT_EQ(std::count(channel->vocabulary.begin(), channel->vocabulary.end(), "late"), 0);
  const std::string t = *fx.train_tasks.begin();
  const auto* late = example_of_row(fx.set, row_where(t, 9));
  ASSERT_NE(late, nullptr);
  EXPECT_EQ(encode(f, fx, *late).ids[field_of(f, "row:channel")], 0);
  // Examples exist only at or after the cutoff.
  for (const auto& task : fx.set.tasks)
    for (const auto& e : task.examples) EXPECT_GE(e.time, 1700);

  std::map<std::string, int> user_rows;
  for (const auto& r : fx.rows)
    if (fx.is_training_row(r)) ++user_rows[r.user];
  const auto& ua = f.user_aggregates();
  EXPECT_EQ(ua.by_entity.size(), user_rows.size());
  for (const auto& [user, n] : user_rows)
    EXPECT_NEAR(ua.by_entity.at(user)[0], std::log1p(n), 1e-5) << user;
  // Every history row is before every example: each example reads the totals.
  EXPECT_EQ(f.aggregate_window(), ml::features::AggregateWindow::kFitted);
  for (const auto& task : fx.set.tasks)
    for (const auto& e : task.examples) {
      auto it = user_rows.find(fx.log.users.name(e.user));
      EXPECT_NEAR(encode(f, fx, e, /*standardized=*/false).dense[dim_of(f, "user_frequency")],
                  it == user_rows.end() ? 0.0 : std::log1p(it->second), 1e-5);
    }

  std::vector<double> amounts;
  for (const auto& r : fx.rows)
    if (fx.train_tasks.count(r.task) && r.ts >= 1700 && !r.amount.empty())
      amounts.push_back(std::stod(r.amount));
  double mean = 0;
  for (double a : amounts) mean += a;
  mean /= static_cast<double>(amounts.size());
  EXPECT_NEAR(f.mean()[dim_of(f, "row:amount")], mean, 1e-4);
}

// A planted leak: ten tasks, each holding one user's only purchase of an item nobody else buys
// and two items a viewer only looked at, earlier. Counting an example's own purchase makes
// item_popularity (and item_buyers) 1 for every positive and 0 for every negative: a perfectly
// separating feature. Counting only what the example does not describe leaves 0 for all.
struct PlantedLeak {
  TempDir dir;
  ml::config::Config config;
  std::unique_ptr<ml::pipeline::RunData> run;
  std::string log_text;

  PlantedLeak(const std::string& label_kind, bool timestamps) {
    std::string csv = timestamps ? "user,item,task,event,ts\n" : "user,item,task,event\n";
    for (int k = 0; k < 10; ++k) {
      const std::string task = "T" + std::to_string(k), user = "u" + std::to_string(k % 3);
      auto row = [&](const std::string& who, const std::string& item, const std::string& event,
                     int ts) {
        csv += who + "," + task + item + "," + task + "," + event +
               (timestamps ? "," + std::to_string(ts) : "") + "\n";
      };
      row("viewer", "v0", "view", 500 + k);
      row("viewer", "v1", "view", 500 + k);
      row(user, "b", "purchase", 1000 + k);
    }
    write_file(dir.file("log.csv"), csv);
    auto& c = config;
    c.data.files = {dir.file("log.csv")};
    c.data.cache = "off";
    c.data.columns.user = {"user", 0};
    c.data.columns.item = {"item", 0};
    c.data.columns.task = {"task", 0};
    c.data.columns.event = {"event", 0};
    if (timestamps) c.data.columns.timestamp = {"ts", 0};
    c.data.time_format = ml::TimeFormat::kUnix;
    c.features.aggregates = {ml::config::Aggregate::kUserFrequency,
                             ml::config::Aggregate::kItemPopularity,
                             ml::config::Aggregate::kItemBuyers};
    c.task.label.kind = ml::testing::choice<ml::config::LabelKind>(label_kind);
    c.task.label.positive_events = {"purchase"};
    c.task.label.negative_events = {"view"};
    c.task.label.negatives_per_positive = 2;  // the two viewed items: all a user has left
    c.task.support = 1;
    c.task.query = 1;
    c.task.stratify = ml::config::Stratify::kNone;
    c.split.new_fraction = 0;
    c.split.validation_fraction = 0;
    ml::config::validate(c);
    const std::string log_file = dir.file("fit.log");
    auto logger = spdlog::default_logger();
    const auto level = logger->level();
    logger->set_level(spdlog::level::warn);
    {
      ml::ScopedLogFile capture(log_file);
      run = ml::pipeline::prepare_run_data(c);
      logger->flush();
    }
    logger->set_level(level);
    log_text = ml::testing::slurp(log_file);
  }

  // The single-feature AUC of dense dim `name` over every example, raw values.
  double auc(const ml::features::FeatureEncoder& encoder, const std::string& name,
             std::vector<float>* values = nullptr) const {
    const auto& f = run->features;
    const std::size_t d = dim_of(f, name);
    std::vector<float> scores, labels;
    for (const auto& task : run->tasks.tasks)
      for (const auto& e : task.examples) {
        scores.push_back(encode(encoder, f, e, /*standardized=*/false).dense[d]);
        labels.push_back(e.label);
      }
    if (values) *values = scores;
    return ml::metrics::roc_auc(scores, labels);
  }
};

TEST(FeaturesLeakage, AggregatesNeverCountTheExampleTheyDescribe) {
  for (const std::string kind : {"implicit", "event_binary"})
    for (bool timestamps : {true, false}) {
      SCOPED_TRACE(kind + (timestamps ? " with timestamps" : " without timestamps"));
      PlantedLeak p(kind, timestamps);
      ASSERT_EQ(p.run->tasks.tasks.size(), 10u);
      for (const auto& t : p.run->tasks.tasks) {
        ASSERT_EQ(t.positives, 1) << t.name;
        ASSERT_EQ(t.negatives, 2) << t.name;
      }
      const auto& f = p.run->features;
      EXPECT_EQ(f.aggregate_window(), timestamps ? ml::features::AggregateWindow::kBeforeExample
                                                 : ml::features::AggregateWindow::kWithoutOwnPair);
      // The leaky computation (the totals, own purchase included) separates perfectly...
      const auto totals = f.bind(p.run->log);
      EXPECT_DOUBLE_EQ(p.auc(totals, "item_popularity"), 1.0);
      EXPECT_DOUBLE_EQ(p.auc(totals, "item_buyers"), 1.0);
      // ...the run's own encoder carries nothing of the label: 0 for every example.
      for (const char* name : {"item_popularity", "item_buyers"}) {
        std::vector<float> values;
        EXPECT_DOUBLE_EQ(p.auc(p.run->encoder, name, &values), 0.5) << name;
        for (float v : values) EXPECT_EQ(v, 0.0f) << name;
      }
      // Only the fallback without timestamps cannot rule the leak out: it says so, once.
      const std::string warning = "features.aggregates without data.columns.timestamp";
      std::size_t warnings = 0;
      for (auto at = p.log_text.find(warning); at != std::string::npos;
           at = p.log_text.find(warning, at + 1))
        ++warnings;
      EXPECT_EQ(warnings, timestamps ? 0u : 1u) << p.log_text;
    }
}

TEST(FeaturesEncode, LayoutStandardisationMissingValuesAndOneHot) {
  Fixture fx;
  FeatureSpace f = fx.fit();
  const auto& names = f.dense_names();
  ASSERT_EQ(f.mean().size(), f.dense_dim());
  ASSERT_EQ(f.scale().size(), f.dense_dim());
  // Layout: row numeric, user numeric, item numeric, aggregates, one-hot, text.
  EXPECT_EQ(names[0], "row:amount");
  EXPECT_EQ(names[1], "item:weight");
  EXPECT_EQ(names[2], "user_frequency");
  EXPECT_EQ(names[3], "item_popularity");
  const std::size_t standardized = 4;
  std::size_t text_dims = 0;
  for (const auto& n : names) text_dims += n.rfind("text:", 0) == 0 ? 1 : 0;
  EXPECT_EQ(text_dims, 8u);
  EXPECT_EQ(f.id_fields(), 2u + 3u);
  const auto cards = f.id_field_cardinalities();
  ASSERT_EQ(cards.size(), f.id_fields());
  EXPECT_EQ(cards[0], 97);
  EXPECT_EQ(cards[1], 97);

  std::vector<std::vector<double>> values(standardized);
  std::vector<std::vector<bool>> present(standardized);
  for (const auto& task : fx.set.tasks)
    for (const auto& e : task.examples) {
      auto enc = encode(f, fx, e);
      auto raw = encode(f, fx, e, /*standardized=*/false);
      ASSERT_EQ(enc.dense.size(), f.dense_dim());
      for (float x : enc.dense) EXPECT_TRUE(std::isfinite(x));
      for (std::size_t k = 0; k < enc.ids.size(); ++k) {
        EXPECT_GE(enc.ids[k], 0);
        EXPECT_LT(enc.ids[k], cards[k]) << f.id_field_names()[k];
      }
      EXPECT_GE(enc.ids[0], 1);  // user and item are always present here
      EXPECT_GE(enc.ids[1], 1);
      for (std::size_t d = 0; d < standardized; ++d) {
        if (std::isnan(raw.dense[d])) {
          EXPECT_FLOAT_EQ(enc.dense[d], 0.0f) << names[d] << ": missing -> 0";
        } else {
          EXPECT_NEAR(enc.dense[d], (raw.dense[d] - f.mean()[d]) / f.scale()[d], 1e-5);
        }
        if (task.role == TaskRole::kTrain && !std::isnan(raw.dense[d]))
          values[d].push_back(enc.dense[d]);
      }
      // Each one-hot field has exactly one 1, at its id.
      for (std::size_t k = 0; k < f.categorical().size(); ++k) {
        const auto& field = f.categorical()[k];
        ASSERT_TRUE(field.onehot) << field.column;
        const std::string prefix =
            std::string(ml::features::source_name(field.source)) + ":" + field.column + "=";
        const std::size_t first = dim_of(f, prefix + "<other>");
        double sum = 0;
        for (std::size_t i = 0; i <= field.vocabulary.size(); ++i) {
          EXPECT_EQ(names[first + i].rfind(prefix, 0), 0u);
          sum += enc.dense[first + i];
        }
        EXPECT_DOUBLE_EQ(sum, 1.0) << prefix;
        EXPECT_FLOAT_EQ(enc.dense[first + static_cast<std::size_t>(enc.ids[2 + k])], 1.0f);
        EXPECT_EQ(cards[2 + k], static_cast<std::int64_t>(field.vocabulary.size()) + 1);
      }
      // Text buckets: a bag of words over the item title, normalised to sum 1.
      double text_sum = 0;
      for (std::size_t d = f.dense_dim() - 8; d < f.dense_dim(); ++d) text_sum += enc.dense[d];
      EXPECT_NEAR(text_sum, 1.0, 1e-5);
    }
  // Over training examples the standardised dims have mean 0 and sample sd 1.
  for (std::size_t d = 0; d < standardized; ++d) {
    ASSERT_GT(values[d].size(), 2u) << names[d];
    double mean = 0;
    for (double x : values[d]) mean += x;
    mean /= static_cast<double>(values[d].size());
    double ss = 0;
    for (double x : values[d]) ss += (x - mean) * (x - mean);
    const double sd = std::sqrt(ss / static_cast<double>(values[d].size() - 1));
    EXPECT_NEAR(mean, 0.0, 1e-4) << names[d];
    EXPECT_NEAR(sd, 1.0, 1e-4) << names[d];  // the data makes every one of them vary
  }

  // The row without an amount and the item without a weight encode as 0 (the training mean).
  const auto* no_amount = example_of_row(fx.set, row_where("B", 7));
  ASSERT_NE(no_amount, nullptr);
  EXPECT_TRUE(std::isnan(encode(f, fx, *no_amount, false).dense[0]));
  EXPECT_FLOAT_EQ(encode(f, fx, *no_amount).dense[0], 0.0f);
  const auto* bi2 = example_of_row(fx.set, row_where("B", 2));
  ASSERT_EQ(fx.log.items.name(bi2->item), "Bi2");
  EXPECT_FLOAT_EQ(encode(f, fx, *bi2).dense[1], 0.0f);
  // The empty channel cell is the out-of-vocabulary id.
  const auto* empty = example_of_row(fx.set, row_where("C", 3));
  EXPECT_EQ(encode(f, fx, *empty).ids[field_of(f, "row:channel")], 0);

  // A sampled negative (no row): row features are missing, user and item ones are not.
  ml::tasks::Example neg = *example_of_row(fx.set, row_where("A", 1));
  neg.row = -1;
  auto enc = encode(f, fx, neg);
  EXPECT_FLOAT_EQ(enc.dense[0], 0.0f);
  EXPECT_EQ(enc.ids[field_of(f, "row:channel")], 0);
  EXPECT_GT(enc.ids[field_of(f, "item:brand")], 0);
}

TEST(FeaturesEncode, HashedCategoricalsStayWithinTheBuckets) {
  Fixture fx("", "hash");
  FeatureSpace f = fx.fit();
  for (auto c : f.id_field_cardinalities()) EXPECT_EQ(c, 97);
  for (const auto& n : f.dense_names()) EXPECT_EQ(n.find('='), std::string::npos) << n;
  const std::size_t ch = field_of(f, "row:channel");
  for (const auto& task : fx.set.tasks)
    for (const auto& e : task.examples) {
      auto enc = encode(f, fx, e);
      for (auto id : enc.ids) {
        EXPECT_GE(id, 0);
        EXPECT_LT(id, 97);
      }
      const std::string& channel = fx.rows[static_cast<std::size_t>(e.row)].channel;
      if (channel.empty()) {
        EXPECT_EQ(enc.ids[ch], 0);
      } else {
        EXPECT_GE(enc.ids[ch], 1);  // even values never seen in training get a bucket
      }
    }
  // The same value always lands in the same bucket.
  auto a = encode(f, fx, *example_of_row(fx.set, row_where("A", 0)));
  auto b = encode(f, fx, *example_of_row(fx.set, row_where("B", 2)));
  EXPECT_EQ(a.ids[ch], b.ids[ch]);  // both "app"
}

TEST(FeaturesJson, RoundTripEncodesIdentically) {
  Fixture fx;
  FeatureSpace f = fx.fit();
  nlohmann::json j;
  to_json(j, f);
  const std::string text = j.dump();
  FeatureSpace g;
  from_json(nlohmann::json::parse(text), g);
  EXPECT_EQ(g.dense_names(), f.dense_names());
  EXPECT_EQ(g.id_field_cardinalities(), f.id_field_cardinalities());
  int compared = 0;
  for (const auto& task : fx.set.tasks)
    for (const auto& e : task.examples) {
      auto a = encode(f, fx, e), b = encode(g, fx, e);
      EXPECT_EQ(a.dense, b.dense);
      EXPECT_EQ(a.ids, b.ids);
      ++compared;
    }
  EXPECT_EQ(compared, 40);
  nlohmann::json again;
  to_json(again, g);
  EXPECT_EQ(again.dump(), text);
}

TEST(FeaturesJson, CorruptOrIncompleteStatisticsThrowDataError) {
  Fixture fx;
  FeatureSpace f = fx.fit();
  nlohmann::json good;
  to_json(good, f);
  auto expect_data_error = [](const nlohmann::json& j, const std::string& what) {
    FeatureSpace g;
    EXPECT_THROW(from_json(j, g), ml::DataError) << what;
  };
  for (const char* key : {"mean", "scale", "dense_names", "categorical", "aggregates", "numeric"}) {
    auto j = good;
    j.erase(key);
    expect_data_error(j, std::string("without ") + key);
  }
  auto wrong_type = good;
  wrong_type["mean"] = "not a list";
  expect_data_error(wrong_type, "mean as a string");
  auto short_mean = good;
  short_mean["mean"].erase(short_mean["mean"].size() - 1);
  expect_data_error(short_mean, "mean shorter than the layout");
  auto no_vocab = good;
  no_vocab["categorical"][0].erase("vocabulary");
  expect_data_error(no_vocab, "categorical field without vocabulary");
  expect_data_error(nlohmann::json::array(), "an array");
  // A truncated file does not even parse; what parses of it is incomplete.
  const std::string text = good.dump();
  auto truncated = nlohmann::json::parse(text.substr(0, text.size() / 2), nullptr, false);
  EXPECT_TRUE(truncated.is_discarded());
}

TEST(FeaturesHashText, DeterministicCaseInsensitiveAndNormalised) {
  const int buckets = 1024;
  std::vector<float> a(buckets), b(buckets), c(buckets);
  ml::features::hash_text("Crunchy OATS, 500g pack", buckets, a.data());
  ml::features::hash_text("Crunchy OATS, 500g pack", buckets, b.data());
  EXPECT_EQ(a, b);
  ml::features::hash_text("crunchy oats 500G PACK", buckets, c.data());
  EXPECT_EQ(a, c);
  double sum = 0;
  int nonzero = 0;
  for (float x : a) {
    sum += x;
    nonzero += x > 0 ? 1 : 0;
  }
  EXPECT_NEAR(sum, 1.0, 1e-6);
  EXPECT_GE(nonzero, 1);
  EXPECT_LE(nonzero, 4);

  // Counts over the token count: "oats" twice in three tokens.
  std::vector<float> one(buckets), three(buckets);
  ml::features::hash_text("oats", buckets, one.data());
  auto bucket = static_cast<std::size_t>(std::max_element(one.begin(), one.end()) - one.begin());
  EXPECT_FLOAT_EQ(one[bucket], 1.0f);
  ml::features::hash_text("Oats-oats;bran", buckets, three.data());
  EXPECT_GE(three[bucket], 2.0f / 3.0f - 1e-6f);
  double sum3 = 0;
  for (float x : three) sum3 += x;
  EXPECT_NEAR(sum3, 1.0, 1e-6);

  // No tokens: all zeros (not NaN). Different text: a different vector.
  std::vector<float> empty(buckets, 5.0f);
  ml::features::hash_text(" ,;- ", buckets, empty.data());
  for (float x : empty) EXPECT_EQ(x, 0.0f);
  std::vector<float> other(buckets);
  ml::features::hash_text("chocolate biscuits", buckets, other.data());
  EXPECT_NE(other, a);
}

}  // namespace
