// Tests for the user x item affinity features (features.affinities) and the implicit-label
// negative options (task.label.negative_sampling, task.label.negatives_exclude): values from the
// purchases before the cutoff only, standardisation moments from training tasks only, a JSON
// round trip that encodes identically, and config checks that name the key and the fix.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/purchase_log.hpp"
#include "features/feature_space.hpp"
#include "tasks/task_set.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"

namespace {

using ml::testing::TempDir;
using ml::testing::write_file;

constexpr std::int64_t kCutoff = 2000;

struct Purchase {
  std::string user, item, task;
  std::int64_t ts;
  double price;
};

// Items: task A holds a1..a4, B holds b1..b4, C holds c1..c4. Brands: a1, a2, b1 are "xo";
// a3, b2, c1 are "yu"; the rest "zed".
std::string items_csv() {
  std::string out = "item,brand\n";
  for (char t : std::string("abc"))
    for (int i = 1; i <= 4; ++i) {
      const std::string id = std::string(1, t) + std::to_string(i);
      const std::string brand = id == "a1" || id == "a2" || id == "b1"   ? "xo"
                                : id == "a3" || id == "b2" || id == "c1" ? "yu"
                                                                         : "zed";
      out += id + "," + brand + "\n";
    }
  return out;
}

// Before the cutoff u1 bought a1 (xo, 2.0), b1 (xo, 4.0) and c1 (yu, 6.0); u2 bought a3 (yu,
// 3.0). After it, every user buys in every task (the label window).
std::vector<Purchase> base_purchases() {
  std::vector<Purchase> p = {{"u1", "a1", "A", 1000, 2.0},
                             {"u1", "b1", "B", 1100, 4.0},
                             {"u1", "c1", "C", 1200, 6.0},
                             {"u2", "a3", "A", 1300, 3.0}};
  int t = 0;
  for (const char* user : {"u1", "u2", "u3"})
    for (const char* item : {"a2", "b3", "c2", "a4", "b4", "c3"}) {
      const std::string task(1, static_cast<char>(item[0] - 'a' + 'A'));
      p.push_back({user, item, task, kCutoff + 10 * t++, 5.0});
    }
  return p;
}

std::string log_csv(const std::vector<Purchase>& purchases) {
  std::string out = "user,item,task,ts,price\n";
  for (const auto& p : purchases)
    out += p.user + "," + p.item + "," + p.task + "," + std::to_string(p.ts) + "," +
           std::to_string(p.price) + "\n";
  return out;
}

ml::config::Config affinity_config(const TempDir& dir) {
  ml::config::Config c;
  c.data.files = {dir.file("log.csv")};
  c.data.columns.user = {"user", 0};
  c.data.columns.item = {"item", 0};
  c.data.columns.task = {"task", 0};
  c.data.columns.timestamp = {"ts", 0};
  c.data.columns.price = {"price", 0};
  c.data.time_format = ml::TimeFormat::kUnix;
  ml::config::SideTable items;
  items.files = {dir.file("items.csv")};
  items.join = ml::config::JoinKey::kItem;
  items.key = {"item", 0};
  items.features.categorical = {{"brand", 0}};
  c.data.side_tables = {items};
  c.features.aggregates.clear();
  c.features.affinities = {"item", "brand", "relative_price"};
  c.task.label.kind = ml::config::LabelKind::kImplicit;
  c.task.label.negatives_exclude = ml::config::NegativesExclude::kAfterCutoff;
  c.task.support = 1;
  c.task.query = 1;
  c.task.stratify = ml::config::Stratify::kNone;
  c.split.new_tasks = {"C"};
  c.split.validation_fraction = 0;
  c.split.time_cutoff = std::to_string(kCutoff);
  ml::config::validate(c);
  return c;
}

struct Prepared {
  ml::data::PurchaseLog log;
  ml::tasks::TaskSet tasks;
  ml::features::FeatureSpace space;
};

Prepared prepare(const TempDir& dir, const std::vector<Purchase>& purchases,
                 const ml::config::Config& c) {
  write_file(dir.file("log.csv"), log_csv(purchases));
  write_file(dir.file("items.csv"), items_csv());
  Prepared p;
  ml::data::LoadReport report;
  p.log = ml::data::load_purchase_log(c, report);
  p.tasks = ml::tasks::build_tasks(p.log, c);
  ml::tasks::split_tasks(p.tasks, c);
  p.space =
      ml::features::FeatureSpace::fit(p.log, p.tasks, ml::tasks::training_rows(p.log, p.tasks), c);
  return p;
}

// The raw (unstandardised) named dense features of a (user, item) pair.
std::map<std::string, float> raw_features(const Prepared& p, const std::string& user,
                                          const std::string& item) {
  ml::tasks::Example e;
  // By name, not Dictionary::find, which a copied log cannot serve (see the copy test below).
  auto id_of = [](const ml::data::Dictionary& d, const std::string& name) {
    for (std::size_t i = 0; i < d.size(); ++i)
      if (d.name(static_cast<std::int32_t>(i)) == name) return static_cast<std::int32_t>(i);
    ADD_FAILURE() << name << " is not in the log";
    return ml::data::kNoId;
  };
  e.user = id_of(p.log.users, user);
  e.item = id_of(p.log.items, item);
  std::vector<float> dense(p.space.dense_dim());
  std::vector<std::int64_t> ids(p.space.id_fields());
  p.space.bind(p.log).encode(e, dense.data(), ids.data(), /*standardized=*/false);
  std::map<std::string, float> out;
  for (std::size_t d = 0; d < dense.size(); ++d) out[p.space.dense_names()[d]] = dense[d];
  return out;
}

TEST(FeaturesAffinity, CountsSharesAndRelativePriceFromPurchasesBeforeTheCutoff) {
  TempDir dir;
  const auto c = affinity_config(dir);
  const Prepared p = prepare(dir, base_purchases(), c);
  const auto names = p.space.affinities().dense_names();
  EXPECT_EQ(names, (std::vector<std::string>{"affinity:item:count", "affinity:item:share",
                                             "affinity:brand:count", "affinity:brand:share",
                                             "affinity:relative_price"}));

  // u1 and a2 (brand xo): u1 bought xo twice (a1, b1) of three purchases, a2 itself never
  // before the cutoff; a2 was only bought after it, so it has no mean price.
  auto f = raw_features(p, "u1", "a2");
  EXPECT_FLOAT_EQ(f["affinity:item:count"], 0.0f);
  EXPECT_FLOAT_EQ(f["affinity:brand:count"], std::log1p(2.0f));
  EXPECT_FLOAT_EQ(f["affinity:brand:share"], 2.0f / 3.0f);
  EXPECT_TRUE(std::isnan(f["affinity:relative_price"]));

  // u1 and a1: bought once; a1's mean price 2.0 against u1's mean 4.0.
  f = raw_features(p, "u1", "a1");
  EXPECT_FLOAT_EQ(f["affinity:item:count"], std::log1p(1.0f));
  EXPECT_FLOAT_EQ(f["affinity:item:share"], 1.0f / 3.0f);
  EXPECT_FLOAT_EQ(f["affinity:relative_price"], std::log(2.0f / 4.0f));

  // The held-out task C's purchase before the cutoff is history like any other: c1 is yu, so
  // u1 has one yu purchase when scoring b2.
  f = raw_features(p, "u1", "b2");
  EXPECT_FLOAT_EQ(f["affinity:brand:count"], std::log1p(1.0f));

  // u3 has no history before the cutoff: zero counts, no share, no relative price.
  f = raw_features(p, "u3", "a1");
  EXPECT_FLOAT_EQ(f["affinity:brand:count"], 0.0f);
  EXPECT_FLOAT_EQ(f["affinity:brand:share"], 0.0f);
  EXPECT_TRUE(std::isnan(f["affinity:relative_price"]));
}

TEST(FeaturesAffinity, RowsAtOrAfterTheCutoffNeverChangeAffinitiesOrTheirMoments) {
  TempDir dir;
  const auto c = affinity_config(dir);
  const Prepared before = prepare(dir, base_purchases(), c);
  // More label-window rows: u3 buys xo items, u1 buys a1 again, at and after the cutoff, in a
  // held-out task too (C gets a repeat of c1). None of it may reach the affinities.
  auto purchases = base_purchases();
  purchases.push_back({"u3", "a1", "A", kCutoff, 1.0});
  purchases.push_back({"u3", "b1", "B", kCutoff + 500, 9.0});
  purchases.push_back({"u1", "a1", "A", kCutoff + 600, 50.0});
  purchases.push_back({"u1", "c1", "C", kCutoff + 700, 70.0});
  TempDir dir2;
  const auto c2 = affinity_config(dir2);
  const Prepared after = prepare(dir2, purchases, c2);
  for (const auto& [user, item] : std::vector<std::pair<std::string, std::string>>{
           {"u1", "a1"}, {"u1", "a2"}, {"u3", "a1"}, {"u1", "b2"}, {"u2", "a3"}}) {
    auto x = raw_features(before, user, item), y = raw_features(after, user, item);
    for (const auto& name : before.space.affinities().dense_names()) {
      if (std::isnan(x[name])) {
        EXPECT_TRUE(std::isnan(y[name])) << user << " " << item << " " << name;
      } else {
        EXPECT_FLOAT_EQ(x[name], y[name]) << user << " " << item << " " << name;
      }
    }
  }
  EXPECT_EQ(nlohmann::json(before.space)["affinities"], nlohmann::json(after.space)["affinities"]);
}

TEST(FeaturesAffinity, MomentsComeFromTrainingTasksOnly) {
  TempDir dir;
  const auto c = affinity_config(dir);
  const Prepared p = prepare(dir, base_purchases(), c);
  // Extra label-window rows in the held-out task C (new examples there) leave the moments alone.
  auto purchases = base_purchases();
  purchases.push_back({"u1", "c4", "C", kCutoff + 900, 1.0});
  purchases.push_back({"u2", "c1", "C", kCutoff + 910, 1.0});
  TempDir dir2;
  const Prepared q = prepare(dir2, purchases, affinity_config(dir2));
  ASSERT_NE(p.tasks.find("C")->examples.size(), q.tasks.find("C")->examples.size());
  EXPECT_EQ(p.space.mean(), q.space.mean());
  EXPECT_EQ(p.space.scale(), q.space.scale());
}

TEST(FeaturesAggregateRows, BeforeCutoffCountsHeldOutTasksHistoryButNeverTheLabelWindow) {
  TempDir dir;
  auto c = affinity_config(dir);
  c.features.aggregates = {ml::config::Aggregate::kItemPopularity,
                           ml::config::Aggregate::kUserFrequency};
  const Prepared training = prepare(dir, base_purchases(), c);
  // c1 (held-out task C) was bought once before the cutoff, c2 only after it.
  EXPECT_FLOAT_EQ(raw_features(training, "u1", "c1")["item_popularity"], 0.0f);
  EXPECT_FLOAT_EQ(raw_features(training, "u1", "c1")["user_frequency"], std::log1p(2.0f));

  TempDir dir2;
  auto before = affinity_config(dir2);
  before.features.aggregates = c.features.aggregates;
  before.features.aggregate_rows = ml::config::AggregateRows::kBeforeCutoff;
  const Prepared history = prepare(dir2, base_purchases(), before);
  EXPECT_FLOAT_EQ(raw_features(history, "u1", "c1")["item_popularity"], std::log1p(1.0f));
  EXPECT_FLOAT_EQ(raw_features(history, "u1", "c2")["item_popularity"], 0.0f);
  EXPECT_FLOAT_EQ(raw_features(history, "u1", "c1")["user_frequency"], std::log1p(3.0f));
  EXPECT_FLOAT_EQ(raw_features(history, "u3", "a2")["user_frequency"], 0.0f);

  before.split.time_cutoff = "";
  before.features.affinities.clear();
  before.task.label.negatives_exclude = ml::config::NegativesExclude::kAllTime;
  EXPECT_THROW(ml::config::validate(before), ml::ConfigError);
}

TEST(FeaturesAffinity, BindingACopiedLogAfterTheOriginalIsGone) {
  // A copied Dictionary's index views the original's strings; binding must not depend on it
  // (valgrind found such reads when side-table columns were copied as their vector grew).
  TempDir dir;
  const auto c = affinity_config(dir);
  auto original = std::make_unique<Prepared>(prepare(dir, base_purchases(), c));
  const auto expected = raw_features(*original, "u1", "a2");
  Prepared copy{original->log, original->tasks, original->space};
  original.reset();
  const auto f = raw_features(copy, "u1", "a2");
  EXPECT_FLOAT_EQ(f.at("affinity:brand:count"), expected.at("affinity:brand:count"));
  EXPECT_FLOAT_EQ(f.at("affinity:brand:count"), std::log1p(2.0f));
  EXPECT_FLOAT_EQ(f.at("affinity:brand:share"), 2.0f / 3.0f);
}

TEST(FeaturesAffinity, JsonRoundTripEncodesIdentically) {
  TempDir dir;
  const auto c = affinity_config(dir);
  const Prepared p = prepare(dir, base_purchases(), c);
  ml::features::FeatureSpace copy;
  from_json(nlohmann::json(p.space), copy);
  auto encoder = p.space.bind(p.log), restored = copy.bind(p.log);
  for (const auto& task : p.tasks.tasks)
    for (const auto& e : task.examples) {
      std::vector<float> a(p.space.dense_dim()), b(copy.dense_dim());
      std::vector<std::int64_t> ia(p.space.id_fields()), ib(copy.id_fields());
      encoder.encode(e, a.data(), ia.data());
      restored.encode(e, b.data(), ib.data());
      EXPECT_EQ(a, b);
      EXPECT_EQ(ia, ib);
    }
}

TEST(TasksImplicitNegatives, AfterCutoffLetsAnItemBoughtOnlyBeforeBeANegative) {
  // One task, ten items; u1 bought i0..i7 before the cutoff and i8 after it: with "all_time"
  // only i9 can be u1's negative, with "after_cutoff" any of i0..i7 and i9.
  TempDir dir;
  std::vector<Purchase> purchases;
  for (int i = 0; i < 8; ++i) purchases.push_back({"u1", "i" + std::to_string(i), "A", 100 + i, 1});
  purchases.push_back({"u1", "i8", "A", kCutoff + 1, 1});
  purchases.push_back({"u2", "i9", "A", 50, 1});
  for (int n = 0; n < 6; ++n)  // u2's purchases in the window: they do not restrict u1
    purchases.push_back({"u2", "i" + std::to_string(n), "A", kCutoff + 10 + n, 1});
  write_file(dir.file("log.csv"), log_csv(purchases));
  write_file(dir.file("items.csv"), "item,brand\n");
  auto c = affinity_config(dir);
  c.data.side_tables.clear();
  c.features.affinities.clear();
  c.split.new_tasks.clear();
  c.split.new_fraction = 0;
  std::set<std::string> negatives_all_time, negatives_window;
  for (const char* exclude : {"all_time", "after_cutoff"}) {
    c.task.label.negatives_exclude = ml::testing::choice<ml::config::NegativesExclude>(exclude);
    c.task.label.negatives_per_positive = 4;
    ml::data::LoadReport report;
    auto log = ml::data::load_purchase_log(c, report);
    auto set = ml::tasks::build_tasks(log, c);
    for (const auto& e : set.tasks.at(0).examples)
      if (e.label < 0.5f && log.users.name(e.user) == "u1")
        (std::string(exclude) == "all_time" ? negatives_all_time : negatives_window)
            .insert(log.items.name(e.item));
  }
  EXPECT_EQ(negatives_all_time, (std::set<std::string>{"i9"}));
  EXPECT_EQ(negatives_window.size(), 4u);
  EXPECT_EQ(negatives_window.count("i8"), 0u);  // bought in the window: never a negative
}

TEST(TasksImplicitNegatives, PopularitySamplingDrawsPopularItemsMoreOften) {
  // Item "hot" has 200 rows in the task, each "cold<j>" one; 40 buyers of "hot" after the
  // cutoff and 40 other users with one purchase each need negatives.
  TempDir dir;
  std::vector<Purchase> purchases;
  for (int u = 0; u < 200; ++u) purchases.push_back({"h" + std::to_string(u), "hot", "A", 10, 1});
  for (int j = 0; j < 20; ++j)
    purchases.push_back({"c" + std::to_string(j), "cold" + std::to_string(j), "A", 20, 1});
  for (int u = 0; u < 40; ++u)
    purchases.push_back(
        {"buyer" + std::to_string(u), "cold" + std::to_string(u % 20), "A", kCutoff + u, 1});
  write_file(dir.file("log.csv"), log_csv(purchases));
  write_file(dir.file("items.csv"), "item,brand\n");
  auto c = affinity_config(dir);
  c.data.side_tables.clear();
  c.features.affinities.clear();
  c.split.new_tasks.clear();
  c.split.new_fraction = 0;
  std::map<std::string, int> hot_negatives;
  for (const char* sampling : {"uniform", "popularity"}) {
    c.task.label.negative_sampling = ml::testing::choice<ml::config::NegativeSampling>(sampling);
    ml::data::LoadReport report;
    auto log = ml::data::load_purchase_log(c, report);
    auto set = ml::tasks::build_tasks(log, c);
    int negatives = 0;
    for (const auto& e : set.tasks.at(0).examples)
      if (e.label < 0.5f) {
        ++negatives;
        if (log.items.name(e.item) == "hot") ++hot_negatives[sampling];
      }
    EXPECT_EQ(negatives, 40) << sampling;
  }
  // Uniform: 1 in 21 items is hot (about 2 of 40); popularity: 200 of 220 rows (about 36).
  EXPECT_LT(hot_negatives["uniform"], 10);
  EXPECT_GT(hot_negatives["popularity"], 28);
}

std::string config_error(const ml::config::Json& patch) {
  TempDir dir;
  ml::config::Json j;
  to_json(j, affinity_config(dir));
  j.merge_patch(patch);
  try {
    ml::config::config_from_json(j);
  } catch (const ml::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigAffinity, ChecksNameTheKeyAndTheFix) {
  using ml::config::Json;
  EXPECT_EQ(config_error(Json::object()), "");
  auto e = config_error({{"split", {{"time_cutoff", ""}}},
                         {"task", {{"label", {{"negatives_exclude", "all_time"}}}}}});
  EXPECT_NE(e.find("split.time_cutoff: required by features.affinities"), std::string::npos) << e;
  e = config_error({{"features", {{"affinities", {"brnad"}}}}});
  EXPECT_NE(e.find("features.affinities[0] = \"brnad\""), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'brand'"), std::string::npos) << e;
  e = config_error({{"features", {{"affinities", {"brand", "brand"}}}}});
  EXPECT_NE(e.find("features.affinities[0] = \"brand\": is listed twice"), std::string::npos) << e;
  e = config_error({{"task", {{"label", {{"negatives_exclude", "all_time"}}}}}});
  EXPECT_NE(e.find("task.label.negatives_exclude = \"after_cutoff\""), std::string::npos) << e;
  e = config_error({{"task", {{"label", {{"negative_sampling", "popular"}}}}}});
  EXPECT_NE(e.find("task.label.negative_sampling"), std::string::npos) << e;
  e = config_error(
      {{"features", {{"affinities", Json::array()}}}, {"split", {{"time_cutoff", ""}}}});
  EXPECT_NE(e.find("split.time_cutoff: required by task.label.negatives_exclude"),
            std::string::npos)
      << e;
  e = config_error({{"data", {{"columns", {{"price", nullptr}}}}}});
  EXPECT_NE(e.find("data.columns.price: required by features.affinities[2]"), std::string::npos)
      << e;
}

}  // namespace
