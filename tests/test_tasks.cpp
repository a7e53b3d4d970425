// Tests for task building, labels, qualification, the leak-free split and episode sampling.
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
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "data/csv_reader.hpp"
#include "data/purchase_log.hpp"
#include "synth/synthetic_log.hpp"
#include "tasks/episode_sampler.hpp"
#include "tasks/task_set.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"
#include "util/time_parse.hpp"

namespace {

using ml::testing::TempDir;
using ml::testing::write_file;

namespace fs = std::filesystem;
using ml::tasks::EpisodeSampler;
using ml::tasks::Example;
using ml::tasks::LabelKind;
using ml::tasks::Task;
using ml::tasks::TaskRole;
using ml::tasks::TaskSet;

// One row of a hand-made log; empty strings are empty cells.
struct Row {
  Row(std::string u, std::string i, std::string t, std::string e, std::int64_t time,
      std::string r = "", std::string p = "", std::string q = "", std::string c = "")
      : user(std::move(u)),
        item(std::move(i)),
        task(std::move(t)),
        event(std::move(e)),
        ts(time),
        rating(std::move(r)),
        price(std::move(p)),
        quantity(std::move(q)),
        cls(std::move(c)) {}
  std::string user, item, task, event;
  std::int64_t ts = 0;
  std::string rating, price, quantity, cls;
};

std::string to_csv(const std::vector<Row>& rows) {
  std::string out = "user,item,task,event,ts,rating,price,quantity,cls\n";
  for (const auto& r : rows)
    out += r.user + "," + r.item + "," + r.task + "," + r.event + "," + std::to_string(r.ts) + "," +
           r.rating + "," + r.price + "," + r.quantity + "," + r.cls + "\n";
  return out;
}

// A config for the Row layout, built in code.
ml::config::Config base_config(const std::string& file, const std::string& kind) {
  ml::config::Config c;
  c.data.files = {file};
  c.data.columns.user = {"user", 0};
  c.data.columns.item = {"item", 0};
  c.data.columns.task = {"task", 0};
  c.data.columns.timestamp = {"ts", 0};
  c.data.columns.event = {"event", 0};
  c.data.columns.rating = {"rating", 0};
  c.data.columns.price = {"price", 0};
  c.data.columns.quantity = {"quantity", 0};
  c.data.time_format = ml::TimeFormat::kUnix;
  c.features.aggregates.clear();
  c.task.label.kind = ml::testing::choice<ml::config::LabelKind>(kind);
  if (kind == "multiclass") c.task.label.class_column = {"cls", 0};
  c.task.support = 2;
  c.task.query = 2;
  c.split.new_fraction = 0;
  c.split.validation_fraction = 0;
  return c;
}

struct Built {
  ml::data::PurchaseLog log;
  TaskSet set;
};

Built build(const ml::config::Config& config, bool split = true) {
  ml::config::validate(config);
  Built b;
  ml::data::LoadReport report;
  b.log = ml::data::load_purchase_log(config, report);
  EXPECT_EQ(report.rows_rejected, 0);
  b.set = ml::tasks::build_tasks(b.log, config);
  if (split) ml::tasks::split_tasks(b.set, config);
  return b;
}

std::string user_of(const Built& b, const Example& e) {
  return b.log.users.name(e.user);
}
std::string item_of(const Built& b, const Example& e) {
  return b.log.items.name(e.item);
}

std::vector<TaskRole> roles_of(const TaskSet& set) {
  std::vector<TaskRole> out;
  for (const auto& t : set.tasks) out.push_back(t.role);
  return out;
}

// --- implicit labels ---------------------------------------------------------------------------

TEST(TasksImplicit, SampledNegativesAreNeverInteractedItemsOnSyntheticLog) {
  TempDir dir;
  ml::synth::SynthOptions o;
  o.users = 300;
  o.categories = 8;
  o.items_per_category = 20;
  o.sessions = 4000;
  o.days = 60;
  o.seed = 11;
  auto summary = ml::synth::write_synthetic_log(o, dir.file("synth"));

  ml::config::Config c;
  c.data.files = {summary.files.events};
  c.data.columns.user = {"user_id", 0};
  c.data.columns.item = {"item_id", 0};
  c.data.columns.task = {"category", 0};
  c.data.columns.timestamp = {"timestamp", 0};
  c.data.columns.event = {"event", 0};
  c.features.aggregates.clear();
  c.task.label.kind = ml::config::LabelKind::kImplicit;
  c.task.label.positive_events = {"purchase"};
  c.task.label.negatives_per_positive = 1.0;
  Built b = build(c);

  // Independently: every (category, user, item) with any event, and purchases with first time.
  std::set<std::tuple<std::string, std::string, std::string>> interacted;
  std::map<std::tuple<std::string, std::string, std::string>, std::int64_t> first_purchase;
  ml::data::CsvReader reader(summary.files.events, {',', true, '"'});
  const auto& h = reader.header();
  auto col = [&](const std::string& n) {
    return static_cast<std::size_t>(std::find(h.begin(), h.end(), n) - h.begin());
  };
  const std::size_t cu = col("user_id"), ci = col("item_id"), cc = col("category"),
                    ce = col("event"), ct = col("timestamp");
  ASSERT_LT(ct, h.size());
  ml::data::CsvRecord r;
  std::int64_t rows = 0;
  while (reader.next(r)) {
    ++rows;
    auto key = std::make_tuple(std::string(r.fields[cc]), std::string(r.fields[cu]),
                               std::string(r.fields[ci]));
    interacted.insert(key);
    if (r.fields[ce] == "purchase") {
      auto t = *ml::parse_timestamp(r.fields[ct], ml::TimeFormat::kAuto);
      auto it = first_purchase.find(key);
      if (it == first_purchase.end() || t < it->second) first_purchase[key] = t;
    }
  }
  ASSERT_EQ(rows, summary.event_rows);

  std::int64_t negatives = 0, positives = 0;
  for (const auto& task : b.set.tasks) {
    std::set<std::pair<std::int32_t, std::int32_t>> negative_pairs, positive_pairs;
    for (const auto& e : task.examples) {
      auto key = std::make_tuple(task.name, user_of(b, e), item_of(b, e));
      if (e.label > 0.5f) {
        ++positives;
        ASSERT_TRUE(first_purchase.count(key)) << task.name << " " << std::get<1>(key);
        EXPECT_EQ(e.time, first_purchase.at(key));
        EXPECT_GE(e.row, 0);
        EXPECT_TRUE(positive_pairs.insert({e.user, e.item}).second) << "duplicate positive";
      } else {
        ++negatives;
        EXPECT_EQ(e.row, -1);
        EXPECT_FALSE(interacted.count(key))
            << "negative " << std::get<1>(key) << "/" << std::get<2>(key) << " in " << task.name
            << " was interacted with";
        EXPECT_TRUE(negative_pairs.insert({e.user, e.item}).second) << "duplicate negative";
      }
    }
    EXPECT_EQ(task.positives + task.negatives, static_cast<std::int64_t>(task.examples.size()));
  }
  EXPECT_EQ(positives, static_cast<std::int64_t>(first_purchase.size()));
  EXPECT_GT(negatives, 0);
  EXPECT_EQ(negatives, b.set.sampled_negatives);
  EXPECT_EQ(b.set.sampled_negatives + b.set.negatives_short, positives);
}

TEST(TasksImplicit, OnlyRemainingItemIsDrawnAndExhaustedUsersCountShort) {
  TempDir dir;
  std::vector<Row> rows;
  // Ten tasks of 40 items: user u views i0..i38 and buys i0, so i39 is its only negative.
  // User v buys only i39 (which puts i39 in the task's catalogue).
  const std::vector<std::string> tasks = {"A", "B", "C", "D", "E", "F", "G", "H", "I", "J"};
  std::int64_t ts = 1000;
  for (const auto& t : tasks) {
    for (int i = 0; i < 39; ++i)
      rows.push_back({"u", t + "i" + std::to_string(i), t, "view", ts++});
    rows.push_back({"u", t + "i0", t, "purchase", ts++});
    rows.push_back({"v", t + "i39", t, "purchase", ts++});
  }
  // Task Z: w bought every item there is, so none of its 5 negatives can be drawn.
  for (int i = 0; i < 5; ++i)
    rows.push_back({"w", "Zi" + std::to_string(i), "Z", "purchase", ts++});
  write_file(dir.file("log.csv"), to_csv(rows));
  auto c = base_config(dir.file("log.csv"), "implicit");
  Built b = build(c);

  for (const auto& t : tasks) {
    const Task* task = b.set.find(t);
    ASSERT_NE(task, nullptr);
    EXPECT_EQ(task->positives, 2);
    EXPECT_EQ(task->negatives, 2) << "task " << t;
    for (const auto& e : task->examples) {
      if (e.label > 0.5f || user_of(b, e) != "u") continue;
      EXPECT_EQ(item_of(b, e), t + "i39") << "task " << t;
    }
  }
  const Task* z = b.set.find("Z");
  ASSERT_NE(z, nullptr);
  EXPECT_EQ(z->positives, 5);
  EXPECT_EQ(z->negatives, 0);
  EXPECT_EQ(b.set.negatives_short, 5);
  EXPECT_EQ(b.set.sampled_negatives, 20);
}

std::vector<Row> dedup_log() {
  // Task T: 4 users x 3 distinct purchased items, each user's first item bought twice (the
  // second time earlier in the file but later in time), and 30 items in the catalogue.
  std::vector<Row> rows;
  std::int64_t ts = 5000;
  for (int u = 0; u < 4; ++u)
    for (int k = 0; k < 3; ++k) {
      std::string item = "i" + std::to_string(u * 3 + k);
      rows.push_back({"u" + std::to_string(u), item, "T", "purchase", ts + 100});
      if (k == 0) rows.push_back({"u" + std::to_string(u), item, "T", "purchase", ts});
      ++ts;
    }
  for (int i = 12; i < 30; ++i) rows.push_back({"x", "i" + std::to_string(i), "T", "view", ts++});
  return rows;
}

TEST(TasksImplicit, PositivesDeduplicatedPerUserAndItemKeepingFirstTime) {
  TempDir dir;
  auto rows = dedup_log();
  write_file(dir.file("log.csv"), to_csv(rows));
  Built b = build(base_config(dir.file("log.csv"), "implicit"));
  ASSERT_EQ(b.set.tasks.size(), 1u);
  const Task& t = b.set.tasks[0];
  std::map<std::pair<std::string, std::string>, std::int64_t> first;
  for (const auto& r : rows)
    if (r.event == "purchase") {
      auto key = std::make_pair(r.user, r.item);
      if (!first.count(key) || r.ts < first[key]) first[key] = r.ts;
    }
  EXPECT_EQ(first.size(), 12u);
  EXPECT_EQ(t.positives, 12);
  for (const auto& e : t.examples)
    if (e.label > 0.5f) {
      auto key = std::make_pair(user_of(b, e), item_of(b, e));
      ASSERT_TRUE(first.count(key));
      EXPECT_EQ(e.time, first[key]);
      EXPECT_EQ(rows[static_cast<std::size_t>(e.row)].ts, first[key]);
    }
}

TEST(TasksImplicit, NegativesPerPositiveGivesTheAskedCounts) {
  TempDir dir;
  write_file(dir.file("log.csv"), to_csv(dedup_log()));
  for (double ratio : {2.0, 0.5, 1.0}) {
    auto c = base_config(dir.file("log.csv"), "implicit");
    c.task.label.negatives_per_positive = ratio;
    Built b = build(c);
    const Task& t = b.set.tasks[0];
    const auto expected = static_cast<std::int64_t>(std::floor(12 * ratio));
    EXPECT_EQ(t.positives, 12) << ratio;
    EXPECT_EQ(t.negatives, expected) << ratio;
    EXPECT_EQ(b.set.sampled_negatives, expected) << ratio;
    EXPECT_EQ(b.set.negatives_short, 0) << ratio;
    // Negatives belong to users with positives and are spread over them.
    std::map<std::string, int> per_user;
    for (const auto& e : t.examples)
      if (e.label < 0.5f) ++per_user[user_of(b, e)];
    EXPECT_EQ(per_user.count("x"), 0u);
    if (ratio == 2.0) {
      for (const auto& [u, n] : per_user) EXPECT_EQ(n, 6) << u;
    }
  }
}

// --- event, threshold, regression and multiclass labels -----------------------------------------

TEST(TasksEventBinary, PairWithViewCartPurchaseIsOnePositiveAtItsEarliestRow) {
  TempDir dir;
  std::vector<Row> rows = {
      {"u1", "i1", "T", "purchase", 300}, {"u1", "i1", "T", "cart", 200},
      {"u1", "i1", "T", "view", 100},     {"u1", "i2", "T", "view", 150},
      {"u2", "i1", "T", "view", 120},     {"u2", "i1", "T", "view", 110},
      {"u3", "i3", "T", "fav", 130},  // neither positive nor negative: dropped
  };
  write_file(dir.file("log.csv"), to_csv(rows));
  auto c = base_config(dir.file("log.csv"), "event_binary");
  c.task.label.positive_events = {"purchase"};
  c.task.label.negative_events = {"view", "cart"};
  Built b = build(c);
  ASSERT_EQ(b.set.tasks.size(), 1u);
  const Task& t = b.set.tasks[0];
  ASSERT_EQ(t.examples.size(), 3u);
  EXPECT_EQ(t.positives, 1);
  EXPECT_EQ(t.negatives, 2);
  std::map<std::pair<std::string, std::string>, Example> by_pair;
  for (const auto& e : t.examples) by_pair[{user_of(b, e), item_of(b, e)}] = e;
  ASSERT_EQ(by_pair.size(), 3u);
  const Example& p = by_pair.at({"u1", "i1"});
  EXPECT_FLOAT_EQ(p.label, 1.0f);
  EXPECT_EQ(p.row, 2);  // the view at t=100, the third data row
  EXPECT_EQ(p.time, 100);
  EXPECT_FLOAT_EQ(by_pair.at({"u1", "i2"}).label, 0.0f);
  const Example& n = by_pair.at({"u2", "i1"});
  EXPECT_FLOAT_EQ(n.label, 0.0f);
  EXPECT_EQ(n.row, 5);
  EXPECT_EQ(n.time, 110);
}

// The label window with a cutoff at t=1000: rows before it are history and never decide a
// label; each pair with a positive- or negative-event row at or after it is one example, 1 when
// any window row is a purchase, at its earliest window row.
TEST(TasksEventBinary, LabelWindowStartsAtTheCutoffAndHistoryNeverDecidesALabel) {
  TempDir dir;
  std::vector<Row> rows = {
      {"u1", "bought_then_viewed", "T", "purchase", 500},
      {"u1", "bought_then_viewed", "T", "view", 1200},
      {"u1", "viewed_then_bought", "T", "view", 600},
      {"u1", "viewed_then_bought", "T", "purchase", 1300},
      {"u1", "bought_after", "T", "purchase", 1100},
      {"u1", "viewed_after", "T", "view", 1150},
      {"u1", "view_then_buy_after", "T", "purchase", 1500},
      {"u1", "view_then_buy_after", "T", "view", 1400},
      {"u1", "bought_before_and_after", "T", "purchase", 700},
      {"u1", "bought_before_and_after", "T", "view", 1000},  // at the cutoff: in the window
      {"u1", "bought_before_and_after", "T", "purchase", 1600},
      {"u1", "bought_before_only", "T", "purchase", 800},
      {"u1", "viewed_before_only", "T", "view", 900},
      {"u1", "other_event_after", "T", "view", 950},
      {"u1", "other_event_after", "T", "wishlist", 1700},
  };
  write_file(dir.file("log.csv"), to_csv(rows));
  auto c = base_config(dir.file("log.csv"), "event_binary");
  c.task.label.positive_events = {"purchase"};
  c.task.label.negative_events = {"view"};
  c.task.support = 1;
  c.task.query = 1;
  c.split.time_cutoff = "1000";
  Built b = build(c);
  ASSERT_EQ(b.set.tasks.size(), 1u);
  const Task& t = b.set.tasks[0];
  std::map<std::string, Example> by_item;
  for (const auto& e : t.examples) {
    EXPECT_EQ(user_of(b, e), "u1");
    EXPECT_TRUE(by_item.emplace(item_of(b, e), e).second) << "one example per pair";
  }
  // item -> (label, time of the example's row)
  const std::map<std::string, std::pair<float, std::int64_t>> expected = {
      {"bought_then_viewed", {0.0f, 1200}},  {"viewed_then_bought", {1.0f, 1300}},
      {"bought_after", {1.0f, 1100}},        {"viewed_after", {0.0f, 1150}},
      {"view_then_buy_after", {1.0f, 1400}}, {"bought_before_and_after", {1.0f, 1000}},
  };
  ASSERT_EQ(by_item.size(), expected.size());
  for (const auto& [item, want] : expected) {
    ASSERT_TRUE(by_item.count(item)) << item;
    const Example& e = by_item.at(item);
    EXPECT_FLOAT_EQ(e.label, want.first) << item;
    EXPECT_EQ(e.time, want.second) << item;
    ASSERT_GE(e.row, 0);
    EXPECT_EQ(rows[static_cast<std::size_t>(e.row)].ts, want.second) << item;
  }
  EXPECT_EQ(t.positives, 4);
  EXPECT_EQ(t.negatives, 2);
  // The same log without a cutoff is one window: the purchase at 500 makes its pair positive.
  c.split.time_cutoff.clear();
  Built whole = build(c);
  int found = 0;
  for (const auto& e : whole.set.tasks.at(0).examples)
    if (item_of(whole, e) == "bought_then_viewed") {
      ++found;
      EXPECT_FLOAT_EQ(e.label, 1.0f);
      EXPECT_EQ(e.time, 500);
    }
  EXPECT_EQ(found, 1);
}

TEST(TasksThreshold, RatingsAtOrAboveThresholdArePositivesAndEmptyTargetsDropped) {
  TempDir dir;
  std::vector<Row> rows = {
      {"u1", "i1", "T", "", 1, "5"}, {"u1", "i2", "T", "", 2, "4"}, {"u2", "i1", "T", "", 3, "3.5"},
      {"u2", "i2", "T", "", 4, "1"}, {"u3", "i1", "T", "", 5, ""},
  };
  write_file(dir.file("log.csv"), to_csv(rows));
  auto c = base_config(dir.file("log.csv"), "threshold");
  c.task.label.threshold = 4.0;
  Built b = build(c);
  ASSERT_EQ(b.set.tasks.size(), 1u);
  const Task& t = b.set.tasks[0];
  ASSERT_EQ(t.examples.size(), 4u);
  EXPECT_EQ(t.positives, 2);
  EXPECT_EQ(t.negatives, 2);
  const float expected[] = {1, 1, 0, 0};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(t.examples[i].row, static_cast<std::int64_t>(i));
    EXPECT_FLOAT_EQ(t.examples[i].label, expected[i]);
  }
}

TEST(TasksRegression, TargetsAreRatingOrSpend) {
  TempDir dir;
  std::vector<Row> rows = {
      {"u1", "i1", "T", "", 1, "5", "2.5", "2"},
      {"u1", "i2", "T", "", 2, "", "4", ""},  // no rating; quantity 1 for spend
      {"u2", "i1", "T", "", 3, "3.5", "", "3"},
  };
  write_file(dir.file("log.csv"), to_csv(rows));
  auto c = base_config(dir.file("log.csv"), "regression");
  c.task.label.target = ml::config::LabelTarget::kRating;
  Built rating = build(c);
  ASSERT_EQ(rating.set.kind, LabelKind::kRegression);
  ASSERT_EQ(rating.set.tasks[0].examples.size(), 2u);
  EXPECT_FLOAT_EQ(rating.set.tasks[0].examples[0].label, 5.0f);
  EXPECT_FLOAT_EQ(rating.set.tasks[0].examples[1].label, 3.5f);

  c.task.label.target = ml::config::LabelTarget::kSpend;
  Built spend = build(c);
  const auto& ex = spend.set.tasks[0].examples;
  ASSERT_EQ(ex.size(), 2u);  // the row without a price has no spend
  EXPECT_FLOAT_EQ(ex[0].label, 5.0f);
  EXPECT_FLOAT_EQ(ex[1].label, 4.0f);
  EXPECT_EQ(ex[1].row, 1);
}

TEST(TasksMulticlass, EligibleClassesHaveSupportPlusQueryExamples) {
  TempDir dir;
  std::vector<Row> rows;
  std::int64_t ts = 1;
  auto add = [&](const std::string& cls, int n) {
    for (int i = 0; i < n; ++i)
      rows.push_back({"u", cls + std::to_string(i), "T", "", ts++, "", "", "", cls});
  };
  add("a", 5);
  add("b", 4);
  add("c", 3);
  rows.push_back({"u", "z", "T", "", ts++, "", "", "", ""});  // no class: not an example
  write_file(dir.file("log.csv"), to_csv(rows));
  auto c = base_config(dir.file("log.csv"), "multiclass");
  c.task.label.ways = 2;
  Built b = build(c);
  ASSERT_EQ(b.set.kind, LabelKind::kMulticlass);
  const Task& t = b.set.tasks[0];
  EXPECT_EQ(t.examples.size(), 12u);
  std::vector<std::string> eligible;
  for (auto id : t.eligible_classes) eligible.push_back(b.log.classes.name(id));
  std::sort(eligible.begin(), eligible.end());
  EXPECT_EQ(eligible, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(t.role, TaskRole::kTrain);
  EXPECT_EQ(t.drop_reason, "");

  c.task.label.ways = 3;
  Built three = build(c);
  EXPECT_EQ(three.set.tasks[0].role, TaskRole::kDropped);
  EXPECT_NE(three.set.tasks[0].drop_reason.find("need task.label.ways = 3"), std::string::npos)
      << three.set.tasks[0].drop_reason;
}

// --- qualification ------------------------------------------------------------------------------

// Threshold-labelled tasks with the given positive/negative counts (ratings 5 and 1).
std::vector<Row> labelled_tasks(const std::vector<std::tuple<std::string, int, int>>& spec) {
  std::vector<Row> rows;
  std::int64_t ts = 1000;
  for (const auto& [name, pos, neg] : spec) {
    for (int i = 0; i < pos + neg; ++i)
      rows.push_back({"u" + std::to_string(i % 7), name + "-i" + std::to_string(i), name, "", ts++,
                      i < pos ? "5" : "1"});
  }
  return rows;
}

TEST(TasksQualification, SmallUnbalancedAndOutOfRangeTasksAreDroppedWithReasons) {
  TempDir dir;
  write_file(
      dir.file("log.csv"),
      to_csv(labelled_tasks(
          {{"ok", 3, 3}, {"tiny", 2, 3}, {"few_pos", 2, 6}, {"few_neg", 6, 2}, {"big", 5, 5}})));
  auto c = base_config(dir.file("log.csv"), "threshold");
  c.task.support = 4;  // balanced: 2 positives + 2 negatives, so > 2 of each are needed
  c.task.query = 2;
  c.task.stratify = ml::config::Stratify::kBalanced;
  Built b = build(c);
  auto reason = [&](const std::string& n) { return b.set.find(n)->drop_reason; };
  EXPECT_EQ(reason("ok"), "");
  EXPECT_EQ(b.set.find("ok")->role, TaskRole::kTrain);
  EXPECT_EQ(reason("tiny"), "5 examples, need support + query = 6");
  EXPECT_EQ(b.set.find("tiny")->role, TaskRole::kDropped);
  EXPECT_NE(reason("few_pos").find("2 positives"), std::string::npos) << reason("few_pos");
  EXPECT_NE(reason("few_neg").find("2 negatives"), std::string::npos) << reason("few_neg");
  EXPECT_EQ(reason("big"), "");
  auto cause = [&](const Built& built, const std::string& n) {
    return built.set.find(n)->drop_cause;
  };
  EXPECT_EQ(cause(b, "ok"), ml::tasks::DropCause::kNone);
  EXPECT_EQ(cause(b, "tiny"), ml::tasks::DropCause::kTooFewExamples);
  EXPECT_EQ(cause(b, "few_pos"), ml::tasks::DropCause::kTooFewPositives);
  EXPECT_EQ(cause(b, "few_neg"), ml::tasks::DropCause::kTooFewNegatives);

  c.task.min_examples = 7;
  c.task.max_examples = 8;
  Built limited = build(c);
  EXPECT_NE(limited.set.find("ok")->drop_reason.find("below task.min_examples = 7"),
            std::string::npos)
      << limited.set.find("ok")->drop_reason;
  EXPECT_NE(limited.set.find("big")->drop_reason.find("above task.max_examples = 8"),
            std::string::npos)
      << limited.set.find("big")->drop_reason;
  EXPECT_EQ(limited.set.find("few_pos")->drop_reason.find("positives") != std::string::npos, true);
  // The cause is the real one: a task left out for being too large is not "too small".
  EXPECT_EQ(cause(limited, "ok"), ml::tasks::DropCause::kTooFewExamples);
  EXPECT_EQ(cause(limited, "big"), ml::tasks::DropCause::kTooManyExamples);
  std::vector<ml::tasks::DropCause> dropped;
  for (const Task* t : limited.set.with_role(TaskRole::kDropped)) dropped.push_back(t->drop_cause);
  const auto counts = ml::tasks::count_drop_causes(dropped);
  EXPECT_EQ(ml::tasks::drop_counts_text(counts),
            "2 too small, 1 above task.max_examples, 1 too few positives, 1 too few negatives");
  int total = 0;
  for (const auto& [c2, n] : counts) total += n;
  EXPECT_EQ(total, static_cast<int>(dropped.size()));
  // few_pos/few_neg have 8 examples: within both limits, still unbalanced.
  c.task.stratify = ml::config::Stratify::kNone;
  Built none = build(c);
  EXPECT_EQ(none.set.find("few_pos")->drop_reason, "");
  EXPECT_EQ(none.set.find("few_neg")->drop_reason, "");
}

// --- split ----------------------------------------------------------------------------------

// 37 qualifying tasks T00..T36 (3 positives, 3 negatives each) and 2 too small to qualify.
std::string split_log(TempDir& dir) {
  std::vector<std::tuple<std::string, int, int>> spec;
  for (int t = 0; t < 37; ++t) {
    char name[8];
    std::snprintf(name, sizeof name, "T%02d", t);
    spec.emplace_back(name, 3, 3);
  }
  spec.emplace_back("small1", 1, 1);
  spec.emplace_back("small2", 1, 1);
  write_file(dir.file("log.csv"), to_csv(labelled_tasks(spec)));
  return dir.file("log.csv");
}

TEST(TasksSplit, SeededFractionsRoundAndAreReproducible) {
  TempDir dir;
  auto c = base_config(split_log(dir), "threshold");
  c.split.new_fraction = 0.2;
  c.split.validation_fraction = 0.1;
  Built a = build(c);
  ASSERT_EQ(a.set.tasks.size(), 39u);
  // Both fractions are of the 37 qualifying tasks: lround(7.4) = 7 new, lround(3.7) = 4.
  EXPECT_EQ(a.set.with_role(TaskRole::kNew).size(), 7u);
  EXPECT_EQ(a.set.with_role(TaskRole::kValidation).size(), 4u);
  EXPECT_EQ(a.set.with_role(TaskRole::kTrain).size(), 26u);
  EXPECT_EQ(a.set.find("small1")->role, TaskRole::kDropped);
  EXPECT_EQ(a.set.find("small2")->role, TaskRole::kDropped);

  Built again = build(c);
  EXPECT_EQ(roles_of(a.set), roles_of(again.set));
  // Splitting twice gives the same roles too.
  ml::tasks::split_tasks(again.set, c);
  EXPECT_EQ(roles_of(a.set), roles_of(again.set));

  int differing_seeds = 0;
  for (std::uint64_t seed : {1, 2, 3}) {
    auto other = c;
    other.seed = seed;
    Built o = build(other);
    EXPECT_EQ(o.set.with_role(TaskRole::kNew).size(), 7u);
    differing_seeds += roles_of(o.set) != roles_of(a.set) ? 1 : 0;
  }
  EXPECT_GE(differing_seeds, 2);
}

TEST(TasksSplit, ExplicitNewTasksAreHeldOutAndUnknownNamesSuggest) {
  TempDir dir;
  auto c = base_config(split_log(dir), "threshold");
  c.split.new_tasks = {"T05", "T07", "small1"};
  c.split.new_fraction = 0.5;  // ignored when new_tasks is given
  c.split.validation_fraction = 0.1;
  Built b = build(c);
  std::set<std::string> news;
  for (const Task* t : b.set.with_role(TaskRole::kNew)) news.insert(t->name);
  EXPECT_EQ(news, (std::set<std::string>{"T05", "T07", "small1"}));
  // Validation comes from the 35 remaining qualifying tasks: lround(3.5) = 4.
  EXPECT_EQ(b.set.with_role(TaskRole::kValidation).size(), 4u);
  EXPECT_EQ(b.set.with_role(TaskRole::kTrain).size(), 31u);

  c.split.new_tasks = {"T05", "T-05"};
  ml::config::validate(c);
  ml::data::LoadReport report;
  auto log = ml::data::load_purchase_log(c, report);
  auto set = ml::tasks::build_tasks(log, c);
  try {
    ml::tasks::split_tasks(set, c);
    FAIL() << "expected a DataError for an unknown task name";
  } catch (const ml::DataError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("'T-05'"), std::string::npos) << what;
    EXPECT_NE(what.find("did you mean 'T05'"), std::string::npos) << what;
  }
}

// --- why training would have nothing to train on --------------------------------------------

// training_tasks_problem() of `rows` under `c` (with the log written to dir/log.csv).
std::string problem_of(TempDir& dir, const std::vector<Row>& rows, ml::config::Config c) {
  write_file(dir.file("log.csv"), to_csv(rows));
  c.data.files = {dir.file("log.csv")};
  Built b = build(c);
  return ml::tasks::training_tasks_problem(b.log, b.set, c);
}

TEST(TasksTrainingProblem, NamesTheCauseInTheLogsTerms) {
  TempDir dir;
  const auto threshold = base_config(dir.file("log.csv"), "threshold");
  const auto two_tasks = labelled_tasks({{"A", 3, 3}, {"B", 3, 3}});  // times 1000..1011
  EXPECT_EQ(problem_of(dir, two_tasks, threshold), "");

  // A cutoff after the last row leaves no example.
  auto late = threshold;
  late.split.time_cutoff = "2030-01-01";
  EXPECT_EQ(problem_of(dir, two_tasks, late),
            "split.time_cutoff = 2030-01-01 is after the log's last time (1970-01-01T00:16:51): "
            "examples come from the rows at or after the cutoff, and there are none");

  // No positive example: ratings below the threshold only.
  auto strict = threshold;
  strict.task.label.threshold = 6;
  std::string p = problem_of(dir, two_tasks, strict);
  EXPECT_NE(p.find("task.label.threshold = 6.000: no example is positive"), std::string::npos) << p;

  // Implicit labels whose positive event no row has.
  auto implicit = base_config(dir.file("log.csv"), "implicit");
  std::vector<Row> views;
  for (int i = 0; i < 8; ++i) views.push_back({"u1", "i" + std::to_string(i), "A", "view", 1000});
  p = problem_of(dir, views, implicit);
  EXPECT_EQ(p,
            "task.label.positive_events = ['purchase']: no row with a task key has such an event "
            "(the log's events: 'view')");

  // Every task too small, with the counts and the largest task.
  auto big = threshold;
  big.task.support = 4;
  big.task.query = 4;
  p = problem_of(dir, labelled_tasks({{"A", 3, 3}, {"B", 2, 2}}), big);
  EXPECT_EQ(p,
            "no task qualifies for task.support = 4 + task.query = 4: of 2 task(s) with examples, "
            "2 too small; the largest, 'A' (6 examples): 6 examples, need support + query = 8 "
            "(metalearn inspect --tasks lists every task)");

  // Every qualifying task held out by name.
  auto named = threshold;
  named.split.new_tasks = {"A", "B"};
  p = problem_of(dir, two_tasks, named);
  EXPECT_NE(p.find("all 2 qualifying task(s) for task.support = 2 + task.query = 2 are held out "
                   "(2 new, 0 validation)"),
            std::string::npos)
      << p;

  // No row has a task key.
  std::vector<Row> keyless = two_tasks;
  for (Row& r : keyless) r.task = "";
  p = problem_of(dir, keyless, threshold);
  EXPECT_EQ(p,
            "data.columns.task = 'task': no row has a task key (the column is empty in every "
            "row)");
}

TEST(TasksTrainingProblem, ASingleTaskIsRefusedWhenTheSplitAsksForHeldOutTasks) {
  TempDir dir;
  auto c = base_config(dir.file("log.csv"), "threshold");
  c.split.new_fraction = 0.2;
  c.split.validation_fraction = 0.1;
  const auto one = labelled_tasks({{"Only", 3, 3}});
  const std::string p = problem_of(dir, one, c);
  EXPECT_NE(p.find("only one task qualifies ('Only', of 1 task key(s) in data.columns.task = "
                   "'task')"),
            std::string::npos)
      << p;
  EXPECT_NE(p.find("split.new_fraction = 0.20 and split.validation_fraction = 0.10"),
            std::string::npos)
      << p;
  Built b = build(c);
  EXPECT_THROW(ml::tasks::require_training_tasks(b.log, b.set, c), ml::DataError);
  // Asking for no held-out tasks trains on the one task.
  c.split.new_fraction = 0;
  c.split.validation_fraction = 0;
  EXPECT_EQ(problem_of(dir, one, c), "");
}

TEST(TasksSplit, TrainingRowsExcludeHeldOutTasksAndRowsAfterCutoff) {
  TempDir dir;
  // Tasks P0..P9: 8 rows each, times 100..107 + 1000 * task; cutoff at 5003 splits P5.
  std::vector<Row> rows;
  for (int t = 0; t < 10; ++t)
    for (int i = 0; i < 8; ++i)
      rows.push_back({"u" + std::to_string(i), "i" + std::to_string(i), "P" + std::to_string(t), "",
                      1000 * t + (t == 5 ? i : 100 + i), i % 2 ? "5" : "1"});
  rows.push_back({"u1", "i1", "", "", 50, "5"});    // no task: history only
  rows.push_back({"u1", "i1", "", "", 9000, "5"});  // no task, after the cutoff
  write_file(dir.file("log.csv"), to_csv(rows));
  auto c = base_config(dir.file("log.csv"), "threshold");
  c.split.new_fraction = 0.3;
  c.split.validation_fraction = 0.2;

  for (bool with_cutoff : {false, true}) {
    if (with_cutoff) c.split.time_cutoff = "5003";
    Built b = build(c);
    std::set<std::string> held_out;
    for (const auto& t : b.set.tasks) {
      if (t.role == TaskRole::kNew || t.role == TaskRole::kValidation) held_out.insert(t.name);
    }
    std::set<std::string> train;
    for (const Task* t : b.set.with_role(TaskRole::kTrain)) train.insert(t->name);
    ASSERT_FALSE(train.empty());
    ASSERT_FALSE(held_out.empty());
    for (const auto& n : held_out) EXPECT_EQ(train.count(n), 0u) << n;

    const std::int64_t cutoff = with_cutoff ? 5003 : std::numeric_limits<std::int64_t>::max();
    auto training = ml::tasks::training_rows(b.log, b.set);
    ASSERT_EQ(training.size(), rows.size());
    std::int64_t before = 0;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      bool expected = !held_out.count(rows[r].task) && rows[r].ts < cutoff;
      EXPECT_EQ(training[r], expected) << "row " << r << " task " << rows[r].task;
      before += rows[r].ts < cutoff ? 1 : 0;
    }
    if (with_cutoff) {
      EXPECT_EQ(b.set.cutoff, 5003);
      EXPECT_EQ(b.set.rows_before_cutoff, before);
      for (const auto& t : b.set.tasks)
        for (const auto& e : t.examples) EXPECT_GE(e.time, 5003) << t.name;
      // P5 keeps only its rows at or after 5003: times 5003..5007.
      EXPECT_EQ(b.set.find("P5")->examples.size(), 5u);
      EXPECT_EQ(b.set.find("P0"), nullptr);  // all of P0..P4 lies before the cutoff
    }
  }
}

// --- episodes -------------------------------------------------------------------------------

Task binary_task(const std::string& name, int positives, int negatives) {
  Task t;
  t.name = name;
  for (int i = 0; i < positives + negatives; ++i) {
    Example e;
    e.row = i;
    e.label = i < positives ? 1.0f : 0.0f;
    t.examples.push_back(e);
  }
  t.positives = positives;
  t.negatives = negatives;
  t.role = TaskRole::kTrain;
  return t;
}

void expect_valid_binary(const ml::tasks::Episode& e, const Task& t, int k, int q) {
  ASSERT_EQ(e.support.size(), static_cast<std::size_t>(k));
  ASSERT_EQ(e.query.size(), static_cast<std::size_t>(q));
  std::set<std::size_t> s(e.support.begin(), e.support.end()), qs(e.query.begin(), e.query.end());
  EXPECT_EQ(s.size(), e.support.size()) << "repeated support example";
  EXPECT_EQ(qs.size(), e.query.size()) << "repeated query example";
  for (auto i : qs) EXPECT_EQ(s.count(i), 0u) << "support and query share example " << i;
  for (auto i : s) EXPECT_LT(i, t.examples.size());
  for (auto i : qs) EXPECT_LT(i, t.examples.size());
}

int count_positives(const std::vector<std::size_t>& idx, const Task& t) {
  int n = 0;
  for (auto i : idx) n += t.examples[i].label > 0.5f ? 1 : 0;
  return n;
}

TEST(EpisodeSampler, SameSeedTaskAndIndexGiveTheSameEpisodeInAnyOrder) {
  Task a = binary_task("alpha", 20, 20), b = binary_task("beta", 20, 20);
  EpisodeSampler s(LabelKind::kBinary, {4, 6, ml::config::Stratify::kBalanced, 5}, 42);
  auto first = s.sample(a, 3);
  for (std::uint64_t i = 0; i < 5; ++i) s.sample(b, i);  // other draws in between
  auto again = s.sample(a, 3);
  EXPECT_EQ(first.support, again.support);
  EXPECT_EQ(first.query, again.query);
  EpisodeSampler fresh(LabelKind::kBinary, {4, 6, ml::config::Stratify::kBalanced, 5}, 42);
  EXPECT_EQ(fresh.sample(a, 3).support, first.support);
  EXPECT_EQ(fresh.sample(a, 3).query, first.query);

  // Different indices, seeds and task names do not all repeat one episode.
  int differing = 0;
  for (std::uint64_t i = 0; i < 10; ++i) differing += s.sample(a, i).support != first.support;
  EXPECT_GE(differing, 5);
  EpisodeSampler other_seed(LabelKind::kBinary, {4, 6, ml::config::Stratify::kBalanced, 5}, 43);
  auto o = other_seed.sample(a, 3);
  auto renamed = a;
  renamed.name = "alpha2";
  auto r = s.sample(renamed, 3);
  EXPECT_FALSE(o.support == first.support && o.query == first.query);
  EXPECT_FALSE(r.support == first.support && r.query == first.query);
}

TEST(EpisodeSampler, BalancedBinaryEpisodesAreDisjointAndHoldBothClasses) {
  Task t = binary_task("t", 12, 30);
  EpisodeSampler s(LabelKind::kBinary, {4, 10, ml::config::Stratify::kBalanced, 5}, 7);
  for (std::uint64_t i = 0; i < 50; ++i) {
    auto e = s.sample(t, i);
    ASSERT_NO_FATAL_FAILURE(expect_valid_binary(e, t, 4, 10));
    EXPECT_EQ(count_positives(e.support, t), 2);
    int qp = count_positives(e.query, t);
    EXPECT_GE(qp, 1);
    EXPECT_LE(qp, 9);
  }
  // A task with 3 positives: the support takes 2, the only one left must be in the query.
  Task rare = binary_task("rare", 3, 40);
  for (std::uint64_t i = 0; i < 30; ++i) {
    auto e = s.sample(rare, i);
    ASSERT_NO_FATAL_FAILURE(expect_valid_binary(e, rare, 4, 10));
    EXPECT_EQ(count_positives(e.support, rare), 2);
    EXPECT_EQ(count_positives(e.query, rare), 1);
  }
  EXPECT_EQ(s.binary_support_split(3, 40), std::make_pair(2, 2));
  EpisodeSampler odd(LabelKind::kBinary, {5, 4, ml::config::Stratify::kBalanced, 5}, 7);
  EXPECT_EQ(odd.binary_support_split(10, 10), std::make_pair(2, 3));
}

TEST(EpisodeSampler, ProportionalAndUnstratifiedSupports) {
  EpisodeSampler prop(LabelKind::kBinary, {4, 6, ml::config::Stratify::kProportional, 5}, 1);
  EXPECT_EQ(prop.binary_support_split(30, 10), std::make_pair(3, 1));
  EXPECT_EQ(prop.binary_support_split(1, 99), std::make_pair(1, 3));  // at least one of each
  Task t = binary_task("p", 30, 10);
  for (std::uint64_t i = 0; i < 20; ++i) {
    auto e = prop.sample(t, i);
    ASSERT_NO_FATAL_FAILURE(expect_valid_binary(e, t, 4, 6));
    EXPECT_EQ(count_positives(e.support, t), 3);
  }
  EpisodeSampler none(LabelKind::kBinary, {4, 6, ml::config::Stratify::kNone, 5}, 1);
  Task u = binary_task("n", 5, 30);
  for (std::uint64_t i = 0; i < 20; ++i) {
    auto e = none.sample(u, i);
    ASSERT_NO_FATAL_FAILURE(expect_valid_binary(e, u, 4, 6));
    int qp = count_positives(e.query, u);
    // The query holds both classes whenever the support left a positive.
    if (count_positives(e.support, u) < 5) {
      EXPECT_GE(qp, 1);
    }
    EXPECT_LE(qp, 5);
  }
}

TEST(EpisodeSampler, MulticlassEpisodesAreNWayKShot) {
  Task t;
  t.name = "m";
  const std::vector<std::int32_t> classes = {3, 5, 8, 9};
  for (std::int32_t c : classes)
    for (int i = 0; i < 6; ++i) {
      Example e;
      e.row = static_cast<std::int64_t>(t.examples.size());
      e.label = static_cast<float>(c);
      t.examples.push_back(e);
    }
  Example odd;
  odd.label = 11.0f;  // a class with one example: not eligible
  t.examples.push_back(odd);
  t.eligible_classes = classes;
  EpisodeSampler s(LabelKind::kMulticlass, {2, 3, ml::config::Stratify::kBalanced, 3}, 9);
  EXPECT_EQ(s.check(t), "");
  std::set<std::int32_t> seen_classes;
  for (std::uint64_t i = 0; i < 20; ++i) {
    auto e = s.sample(t, i);
    ASSERT_EQ(e.classes.size(), 3u);
    std::set<std::int32_t> distinct(e.classes.begin(), e.classes.end());
    EXPECT_EQ(distinct.size(), 3u);
    for (auto c : e.classes) {
      EXPECT_TRUE(std::count(classes.begin(), classes.end(), c)) << c;
      seen_classes.insert(c);
    }
    ASSERT_EQ(e.support.size(), 6u);
    ASSERT_EQ(e.query.size(), 9u);
    std::map<std::int32_t, int> in_support, in_query;
    for (auto i : e.support) ++in_support[static_cast<std::int32_t>(t.examples[i].label)];
    for (auto i : e.query) ++in_query[static_cast<std::int32_t>(t.examples[i].label)];
    for (auto c : e.classes) {
      EXPECT_EQ(in_support[c], 2);
      EXPECT_EQ(in_query[c], 3);
    }
    EXPECT_EQ(in_support.size(), 3u);
    EXPECT_EQ(in_query.size(), 3u);
    std::set<std::size_t> s1(e.support.begin(), e.support.end());
    for (auto i : e.query) EXPECT_EQ(s1.count(i), 0u);
  }
  EXPECT_EQ(seen_classes.size(), 4u);  // every eligible class shows up across episodes
}

TEST(EpisodeSampler, QueryRowsComeInARandomOrderThatIsTheSameForTheSameEpisode) {
  // Every row goes into the episode (n = support + query), so only the order is random: it must
  // not be the log's, nor "one positive, one negative, then the rest", nor a class at a time.
  Task r = binary_task("ratings", 10, 0);
  Task b = binary_task("bought", 10, 10);
  EpisodeSampler reg(LabelKind::kRegression, {2, 8, ml::config::Stratify::kBalanced, 5}, 9);
  EpisodeSampler bin(LabelKind::kBinary, {4, 16, ml::config::Stratify::kBalanced, 5}, 9);
  std::set<std::size_t> first_rows;
  int sorted = 0, positive_first = 0, negative_second = 0;
  for (std::uint64_t i = 0; i < 60; ++i) {
    const auto e = reg.sample(r, i);
    EXPECT_EQ(e.query, reg.sample(r, i).query) << "episode " << i << " is not reproducible";
    first_rows.insert(e.query.front());
    sorted += std::is_sorted(e.query.begin(), e.query.end());
    const auto f = bin.sample(b, i);
    EXPECT_EQ(f.query, bin.sample(b, i).query);
    positive_first += b.examples[f.query[0]].label > 0.5f;
    negative_second += b.examples[f.query[1]].label < 0.5f;
  }
  EXPECT_GE(first_rows.size(), 6u);  // 8 query rows of 10 can come first
  EXPECT_LE(sorted, 1);
  // Half the query is positive: about 30 of 60 episodes start with a positive.
  EXPECT_GT(positive_first, 15);
  EXPECT_LT(positive_first, 45);
  EXPECT_LT(negative_second, 45);
}

TEST(EpisodeSampler, CheckExplainsWhyATaskCannotGiveAnEpisode) {
  EpisodeSampler s(LabelKind::kBinary, {4, 6, ml::config::Stratify::kBalanced, 5}, 1);
  EXPECT_EQ(s.check(binary_task("ok", 3, 7)), "");
  EXPECT_EQ(s.check(binary_task("small", 4, 5)), "9 examples, need support + query = 10");
  EXPECT_EQ(s.check(binary_task("pos", 2, 20)),
            "2 positives, need more than the 2 a support set takes");
  EXPECT_EQ(s.check(binary_task("neg", 20, 2)),
            "2 negatives, need more than the 2 a support set takes");
  EXPECT_THROW(s.sample(binary_task("pos", 2, 20), 0), ml::DataError);
  EXPECT_EQ(s.diagnose(binary_task("ok", 3, 7)).cause, ml::tasks::DropCause::kNone);
  EXPECT_EQ(s.diagnose(binary_task("small", 4, 5)).cause, ml::tasks::DropCause::kTooFewExamples);
  EXPECT_EQ(s.diagnose(binary_task("pos", 2, 20)).cause, ml::tasks::DropCause::kTooFewPositives);
  EXPECT_EQ(s.diagnose(binary_task("neg", 20, 2)).cause, ml::tasks::DropCause::kTooFewNegatives);

  EpisodeSampler none(LabelKind::kBinary, {4, 6, ml::config::Stratify::kNone, 5}, 1);
  EXPECT_EQ(none.check(binary_task("one", 20, 0)), "only one label class");
  EXPECT_EQ(none.diagnose(binary_task("one", 20, 0)).cause, ml::tasks::DropCause::kOneLabelClass);
  EXPECT_EQ(none.check(binary_task("two", 1, 19)), "");

  Task m;
  m.name = "m";
  m.examples.resize(30);
  m.eligible_classes = {1, 2};
  EpisodeSampler mc(LabelKind::kMulticlass, {2, 3, ml::config::Stratify::kBalanced, 3}, 1);
  EXPECT_EQ(mc.check(m), "2 classes with >= 5 examples, need task.label.ways = 3");
  EXPECT_EQ(mc.diagnose(m).cause, ml::tasks::DropCause::kTooFewClasses);
  EXPECT_THROW(mc.sample(m, 0), ml::DataError);

  Task r = binary_task("r", 10, 0);
  EpisodeSampler reg(LabelKind::kRegression, {4, 6, ml::config::Stratify::kBalanced, 5}, 1);
  EXPECT_EQ(reg.check(r), "");
  auto e = reg.sample(r, 0);
  EXPECT_EQ(e.support.size(), 4u);
  EXPECT_EQ(e.query.size(), 6u);
  std::set<std::size_t> all(e.support.begin(), e.support.end());
  all.insert(e.query.begin(), e.query.end());
  EXPECT_EQ(all.size(), 10u);
  EXPECT_EQ(reg.check(binary_task("r9", 9, 0)), "9 examples, need support + query = 10");
}

// --- support "all": every example of the task not in the query ---------------------------------

TEST(EpisodeSampler, SupportAllIsEveryExampleNotInTheQuery) {
  const int all = ml::config::kSupportAll;
  // Binary: the query keeps its size and both classes; the support is the rest of the task.
  Task t = binary_task("heavy", 9, 40);
  EpisodeSampler s(LabelKind::kBinary, {all, 6, ml::config::Stratify::kBalanced, 5}, 3);
  EXPECT_EQ(s.check(t), "");
  for (std::uint64_t i = 0; i < 20; ++i) {
    auto e = s.sample(t, i);
    ASSERT_NO_FATAL_FAILURE(expect_valid_binary(e, t, 49 - 6, 6));
    EXPECT_GE(count_positives(e.query, t), 1);
    EXPECT_LE(count_positives(e.query, t), 5);
    EXPECT_EQ(count_positives(e.support, t) + count_positives(e.query, t), 9);
  }
  // The same index gives the same episode; another index another query.
  EXPECT_EQ(s.sample(t, 4).query, s.sample(t, 4).query);
  EXPECT_NE(s.sample(t, 4).query, s.sample(t, 5).query);

  // Regression: the same, without classes.
  Task r = binary_task("r", 15, 0);
  EpisodeSampler reg(LabelKind::kRegression, {all, 6, ml::config::Stratify::kBalanced, 5}, 3);
  auto e = reg.sample(r, 0);
  ASSERT_NO_FATAL_FAILURE(expect_valid_binary(e, r, 9, 6));

  // Multiclass: the support is every other example of the episode's classes, none of the rest.
  Task m;
  m.name = "m";
  const std::map<std::int32_t, int> sizes = {{3, 4}, {5, 7}, {8, 3}};
  for (const auto& [c, n] : sizes)
    for (int i = 0; i < n; ++i) {
      Example x;
      x.label = static_cast<float>(c);
      m.examples.push_back(x);
    }
  m.eligible_classes = {3, 5, 8};
  EpisodeSampler mc(LabelKind::kMulticlass, {all, 2, ml::config::Stratify::kBalanced, 2}, 3);
  EXPECT_EQ(mc.check(m), "");
  for (std::uint64_t i = 0; i < 10; ++i) {
    auto ep = mc.sample(m, i);
    ASSERT_EQ(ep.classes.size(), 2u);
    std::map<std::int32_t, int> in_support, in_query;
    for (auto j : ep.support) ++in_support[static_cast<std::int32_t>(m.examples[j].label)];
    for (auto j : ep.query) ++in_query[static_cast<std::int32_t>(m.examples[j].label)];
    EXPECT_EQ(in_support.size(), 2u);
    for (auto c : ep.classes) {
      EXPECT_EQ(in_query[c], 2);
      EXPECT_EQ(in_support[c], sizes.at(c) - 2);
    }
    std::set<std::size_t> support(ep.support.begin(), ep.support.end());
    EXPECT_EQ(support.size(), ep.support.size());
    for (auto j : ep.query) EXPECT_EQ(support.count(j), 0u);
  }
}

TEST(EpisodeSampler, SupportAllNeedsOnlyTheQueryPlusOneExample) {
  const int all = ml::config::kSupportAll;
  EpisodeSampler s(LabelKind::kBinary, {all, 6, ml::config::Stratify::kBalanced, 5}, 1);
  EXPECT_EQ(s.check(binary_task("just", 1, 6)), "");  // stratification does not apply
  EXPECT_EQ(s.check(binary_task("small", 2, 4)), "6 examples, need query + 1 = 7");
  EXPECT_EQ(s.check(binary_task("one", 0, 30)), "only one label class");
  auto e = s.sample(binary_task("just", 1, 6), 0);
  EXPECT_EQ(e.support.size(), 1u);
  EXPECT_EQ(e.query.size(), 6u);
  Task m;
  m.name = "m";
  m.examples.resize(30);
  m.eligible_classes = {1};
  EpisodeSampler mc(LabelKind::kMulticlass, {all, 3, ml::config::Stratify::kBalanced, 2}, 1);
  EXPECT_EQ(mc.check(m), "1 classes with >= 4 examples, need task.label.ways = 2");
}

TEST(TasksQualification, SupportAllKeepsSmallAndHeavyTasksThatAFixedKDrops) {
  TempDir dir;
  write_file(dir.file("log.csv"),
             to_csv(labelled_tasks({{"light", 2, 2}, {"heavy", 30, 30}, {"tiny", 1, 1}})));
  auto c = base_config(dir.file("log.csv"), "threshold");
  c.task.query = 3;
  c.task.stratify = ml::config::Stratify::kNone;
  c.task.support = 10;
  Built fixed = build(c);
  EXPECT_EQ(fixed.set.find("light")->role, TaskRole::kDropped);
  EXPECT_EQ(fixed.set.find("heavy")->role, TaskRole::kTrain);

  c.task.support = ml::config::kSupportAll;
  Built all = build(c);
  EXPECT_EQ(all.set.find("light")->drop_reason, "");
  EXPECT_EQ(all.set.find("heavy")->drop_reason, "");
  EXPECT_EQ(all.set.find("tiny")->drop_reason, "2 examples, need query + 1 = 4");
  // max_examples still bounds a task (and so the largest support) when asked to.
  c.task.max_examples = 20;
  Built capped = build(c);
  EXPECT_EQ(capped.set.find("light")->drop_reason, "");
  EXPECT_EQ(capped.set.find("heavy")->drop_reason, "60 examples, above task.max_examples = 20");

  // Multiclass: a class is eligible with query + 1 examples.
  std::vector<Row> rows;
  std::int64_t ts = 1;
  for (const auto& [cls, n] : std::vector<std::pair<std::string, int>>{{"a", 4}, {"b", 3}})
    for (int i = 0; i < n; ++i)
      rows.push_back({"u", cls + std::to_string(i), "T", "", ts++, "", "", "", cls});
  write_file(dir.file("classes.csv"), to_csv(rows));
  auto mc = base_config(dir.file("classes.csv"), "multiclass");
  mc.task.label.ways = 2;
  mc.task.query = 3;
  mc.task.support = ml::config::kSupportAll;
  EXPECT_EQ(build(mc).set.tasks[0].eligible_classes.size(), 1u);  // b has 3 < 3 + 1
  mc.task.query = 2;
  EXPECT_EQ(build(mc).set.tasks[0].eligible_classes.size(), 2u);
}

}  // namespace
