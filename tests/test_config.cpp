// Tests for the typed config: defaults, strict JSON, validation messages, overrides, loading.
#include <gtest/gtest.h>
#include <algorithm>

#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/json_object.hpp"
#include "util/errors.hpp"

#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using ml::ConfigError;
using ml::UsageError;
using ml::config::apply_override;
using ml::config::Config;
using ml::config::config_from_json;
using ml::config::Json;
using ml::config::load_config;

// A small config for the default implicit label, with a timestamp so that every default
// aggregate applies.
Json minimal() {
  return Json::parse(R"({
    "data": {"files": ["log.csv"],
             "columns": {"task": "category", "user": "user_id", "item": "item_id",
                         "timestamp": "ts"}}})");
}

// The message of the ConfigError that `f` throws ("" and a test failure if it throws none).
template <typename E = ConfigError>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

std::string parse_error(const Json& j) {
  return error_of([&] { config_from_json(j); });
}

// minimal() with one JSON pointer set to `value`.
Json with(const std::string& pointer, const Json& value) {
  Json j = minimal();
  j[Json::json_pointer(pointer)] = value;
  return j;
}

Json to_json_of(const Config& c) {
  Json j;
  to_json(j, c);
  return j;
}

TEST(ConfigDefaults, MinimalConfigFillsEveryDefault) {
  const Config c = config_from_json(minimal());
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.data.files, std::vector<std::string>{"log.csv"});
  EXPECT_EQ(c.data.format.delimiter, ml::config::Delimiter::kAuto);
  EXPECT_EQ(c.data.format.delimiter_char(), 0);
  EXPECT_TRUE(c.data.format.header);
  EXPECT_EQ(c.data.columns.task.name, "category");
  EXPECT_EQ(c.data.columns.user.name, "user_id");
  EXPECT_EQ(c.data.columns.item.name, "item_id");
  EXPECT_EQ(c.data.columns.timestamp.name, "ts");
  EXPECT_TRUE(c.data.columns.event.empty());
  EXPECT_TRUE(c.data.columns.rating.empty());
  EXPECT_TRUE(c.data.columns.price.empty());
  EXPECT_TRUE(c.data.columns.quantity.empty());
  EXPECT_TRUE(c.data.features.empty());
  EXPECT_TRUE(c.data.side_tables.empty());
  EXPECT_EQ(c.data.bad_rows, ml::config::BadRows::kSkip);
  EXPECT_EQ(c.data.show_bad_rows, 5);
  EXPECT_EQ(c.data.time_format, ml::TimeFormat::kAuto);

  EXPECT_TRUE(c.features.standardize);
  EXPECT_EQ(c.features.categorical, ml::config::CategoricalEncoding::kVocab);
  EXPECT_EQ(c.features.hash_buckets, 262144);
  EXPECT_EQ(c.features.min_count, 1);
  EXPECT_EQ(c.features.onehot_max, 32);
  EXPECT_EQ(c.features.text_buckets, 64);
  using ml::config::Aggregate;
  EXPECT_EQ(c.features.aggregates,
            (std::vector<Aggregate>{Aggregate::kUserFrequency, Aggregate::kUserSpend,
                                    Aggregate::kUserRecency, Aggregate::kItemPopularity,
                                    Aggregate::kItemMeanPrice}));

  EXPECT_EQ(c.task.label.kind, ml::config::LabelKind::kImplicit);
  EXPECT_EQ(c.task.label.positive_events, std::vector<std::string>{"purchase"});
  EXPECT_EQ(c.task.label.negative_events, std::vector<std::string>{"view"});
  EXPECT_DOUBLE_EQ(c.task.label.negatives_per_positive, 1.0);
  EXPECT_EQ(c.task.label.target, ml::config::LabelTarget::kRating);
  EXPECT_DOUBLE_EQ(c.task.label.threshold, 4.0);
  EXPECT_TRUE(c.task.label.class_column.empty());
  EXPECT_EQ(c.task.label.ways, 5);
  EXPECT_EQ(c.task.support, 10);
  EXPECT_EQ(c.task.query, 15);
  EXPECT_EQ(c.task.min_examples, 0);
  EXPECT_EQ(c.task.max_examples, 0);
  EXPECT_EQ(c.task.stratify, ml::config::Stratify::kBalanced);

  EXPECT_TRUE(c.split.new_tasks.empty());
  EXPECT_DOUBLE_EQ(c.split.new_fraction, 0.2);
  EXPECT_DOUBLE_EQ(c.split.validation_fraction, 0.1);
  EXPECT_EQ(c.split.time_cutoff, "");

  EXPECT_EQ(c.run.dir, "runs/default");
  EXPECT_EQ(c.run.device.name(), "auto");
  EXPECT_EQ(c.run.threads, 0);
  EXPECT_EQ(c.source_path, "");  // not read from a file
}

TEST(ConfigDefaults, ResolvedJsonHasEveryKeyAndRoundTrips) {
  const Json first = to_json_of(config_from_json(minimal()));
  // Every section of the resolved config is written out, defaults included.
  for (const char* key :
       {"/seed", "/data/bad_rows", "/data/format/header", "/data/columns/event",
        "/features/hash_buckets", "/task/label/ways", "/split/time_cutoff", "/run/threads"})
    EXPECT_TRUE(first.contains(Json::json_pointer(key))) << key;
  EXPECT_TRUE(first["data"]["columns"]["event"].is_null());  // unset columns are null
  const Json second = to_json_of(config_from_json(first));
  EXPECT_EQ(first, second) << first.dump(2) << "\n---\n" << second.dump(2);
}

TEST(ConfigDefaults, NonDefaultConfigRoundTrips) {
  const Json j = Json::parse(R"({
    "seed": 7,
    "data": {"files": ["a.tsv", "b.tsv"], "format": {"delimiter": "tab", "header": false},
             "columns": {"task": 3, "user": 1, "item": 2, "event": 4, "price": 5,
                         "timestamp": 6},
             "side_tables": [{"files": ["items.csv"], "join": "item", "key": "item_id",
                              "format": {"delimiter": ";"},
                              "features": {"numeric": ["weight"], "categorical": ["brand"],
                                           "text": ["title"]}}],
             "bad_rows": "fail", "show_bad_rows": 0, "time_format": "unix"},
    "features": {"standardize": false, "categorical": "hash", "hash_buckets": 1024,
                 "aggregates": ["item_buyers"]},
    "task": {"label": {"kind": "event_binary", "positive_events": ["purchase", "cart"]},
             "support": 3, "query": 4, "min_examples": 8, "max_examples": 100,
             "stratify": "none"},
    "split": {"new_tasks": ["FROZEN PIZZA"], "new_fraction": 0.0, "time_cutoff": "2017-07-01"},
    "run": {"dir": "runs/x", "device": "cuda:1", "threads": 2}})");
  const Config c = config_from_json(j);
  EXPECT_EQ(c.data.columns.task.position, 3);
  EXPECT_EQ(c.data.columns.task.name, "");
  EXPECT_EQ(c.data.format.delimiter_char(), '\t');
  ASSERT_EQ(c.data.side_tables.size(), 1u);
  EXPECT_EQ(c.data.side_tables[0].format.delimiter_char(), ';');
  EXPECT_TRUE(c.data.side_tables[0].format.header);
  EXPECT_EQ(c.data.side_tables[0].features.text[0].name, "title");
  EXPECT_EQ(c.task.label.positive_events, (std::vector<std::string>{"purchase", "cart"}));
  EXPECT_EQ(c.run.device.name(), "cuda:1");

  const Json first = to_json_of(c);
  EXPECT_EQ(first["data"]["columns"]["task"], 3);  // positions stay integers
  EXPECT_EQ(first["data"]["columns"]["user"], 1);
  const Json second = to_json_of(config_from_json(first));
  EXPECT_EQ(first, second);
}

TEST(ConfigDefaults, SingleValuesAcceptedWhereListsAreExpected) {
  Json j = minimal();
  j["data"]["files"] = "only.csv";
  j["task"]["label"] = {{"kind", "event_binary"}, {"positive_events", "buy"}};
  j["data"]["columns"]["event"] = "event";
  const Config c = config_from_json(j);
  EXPECT_EQ(c.data.files, std::vector<std::string>{"only.csv"});
  EXPECT_EQ(c.task.label.positive_events, std::vector<std::string>{"buy"});
}

TEST(ConfigDefaults, DefaultAggregatesAdaptToTheColumns) {
  Json j = minimal();
  j["data"]["columns"].erase("timestamp");
  const Config c = config_from_json(j);
  const auto& a = c.features.aggregates;
  using ml::config::Aggregate;
  EXPECT_EQ(std::find(a.begin(), a.end(), Aggregate::kUserRecency), a.end());
  EXPECT_NE(std::find(a.begin(), a.end(), Aggregate::kUserFrequency), a.end());
  EXPECT_NE(std::find(a.begin(), a.end(), Aggregate::kItemPopularity), a.end());
}

TEST(ConfigDefaults, ExplicitRecencyWithoutTimestampIsNamed) {
  Json j = minimal();
  j["data"]["columns"].erase("timestamp");
  j["features"]["aggregates"] = {"user_frequency", "user_recency"};
  const std::string m = parse_error(j);
  EXPECT_NE(m.find("data.columns.timestamp"), std::string::npos) << m;
  EXPECT_NE(m.find("user_recency"), std::string::npos) << m;
  j["features"]["aggregates"] = {"user_frequency", "item_popularity"};
  EXPECT_NO_THROW(config_from_json(j));
}

// Each case: where a bad value goes, and the parts its message must contain.
struct BadValue {
  std::string pointer;
  Json value;
  std::vector<std::string> parts;
};

TEST(ConfigValidation, MessagesNamePathValueAndExpectation) {
  const std::vector<BadValue> cases = {
      {"/task/support", 0, {"task.support = 0: must be >= 1"}},
      {"/task/support", -3, {"task.support = -3: must be >= 1"}},
      // -1 is how "all" is held inside: written as a number it is still an error.
      {"/task/support", -1, {"task.support = -1: must be >= 1 or \"all\""}},
      {"/task/support", "every", {"task.support = \"every\": expected an integer or \"all\""}},
      {"/train/selection_metric",
       "rmse",
       {"train.selection_metric = \"rmse\": not a metric of task.label.kind = \"implicit\"",
        "\"auc\""}},
      {"/train/selection_metric", "f1", {"train.selection_metric = \"f1\"", "must be one of:"}},
      {"/task/query", 0, {"task.query = 0: must be from 1 to 1000000"}},
      {"/split/new_fraction", 1.5, {"split.new_fraction = 1.5", "must be in [0, 1)"}},
      {"/split/new_fraction", -0.1, {"split.new_fraction = -0.1", "must be in [0, 1)"}},
      {"/split/validation_fraction", 0.9, {"split.validation_fraction = 0.9", "< 1"}},
      {"/split/time_cutoff", "next tuesday", {"split.time_cutoff = \"next tuesday\"", "ISO-8601"}},
      {"/run/device", "gpu", {"run.device = \"gpu\"", "\"cpu\"", "\"cuda:N\"", "\"auto\""}},
      {"/run/device", "cuda:x", {"run.device = \"cuda:x\""}},
      {"/run/device", "cuda:-1", {"run.device = \"cuda:-1\""}},
      {"/run/dir", "", {"run.dir = \"\": must not be empty"}},
      {"/run/threads", -1, {"run.threads = -1: must be from 0 to 1024 (0 = OMP_NUM_THREADS"}},
      {"/data/bad_rows", "ignore", {"data.bad_rows = \"ignore\": must be one of: skip, fail"}},
      {"/data/show_bad_rows", -1, {"data.show_bad_rows = -1: must be >= 0"}},
      {"/data/time_format", "iso", {"data.time_format = \"iso\"", "must be one of:", "iso8601"}},
      {"/data/format/delimiter", "::", {"data.format.delimiter = \"::\"", "must be"}},
      {"/task/label/kind",
       "implict",
       {"task.label.kind = \"implict\"", "must be one of:", "event_binary",
        "did you mean 'implicit'?"}},
      {"/task/label/ways", 1, {"task.label.ways = 1: must be from 2 to 1000"}},
      {"/task/label/negatives_per_positive", 0, {"task.label.negatives_per_positive = 0"}},
      {"/task/label/target", "revenue", {"task.label.target = \"revenue\"", "spend"}},
      {"/task/stratify", "balance", {"task.stratify = \"balance\"", "did you mean 'balanced'?"}},
      {"/task/max_examples", 5, {"task.max_examples = 5", "task.support + task.query"}},
      {"/features/hash_buckets", 1, {"features.hash_buckets = 1: must be from 2 to 16777216"}},
      {"/features/min_count", 0, {"features.min_count = 0: must be >= 1"}},
      {"/features/aggregates",
       {"user_frequency", "item_colour"},
       {"features.aggregates[1] = \"item_colour\"", "must be one of:", "item_popularity"}},
      {"/features/categorical", "onehot", {"features.categorical = \"onehot\"", "vocab, hash"}},
  };
  for (const auto& c : cases) {
    const std::string m = parse_error(with(c.pointer, c.value));
    for (const auto& part : c.parts)
      EXPECT_NE(m.find(part), std::string::npos)
          << c.pointer << " = " << c.value.dump() << ": '" << m << "' lacks '" << part << "'";
  }
}

TEST(ConfigValidation, BoundaryValuesAccepted) {
  EXPECT_EQ(config_from_json(with("/task/support", 1)).task.support, 1);
  EXPECT_DOUBLE_EQ(config_from_json(with("/split/new_fraction", 0.0)).split.new_fraction, 0.0);
  EXPECT_EQ(config_from_json(with("/run/device", "cuda:0")).run.device.name(), "cuda:0");
  EXPECT_EQ(config_from_json(with("/run/device", "cpu")).run.device.name(), "cpu");
  EXPECT_EQ(config_from_json(with("/data/show_bad_rows", 0)).data.show_bad_rows, 0);
  // A whole-valued float is an integer.
  EXPECT_EQ(config_from_json(with("/task/support", 3.0)).task.support, 3);
}

TEST(ConfigValidation, SupportAllReadsWritesAndBoundsMaxExamples) {
  const Config all = config_from_json(with("/task/support", "all"));
  EXPECT_EQ(all.task.support, ml::config::kSupportAll);
  EXPECT_EQ(to_json_of(all)["task"]["support"], "all");
  EXPECT_EQ(config_from_json(to_json_of(all)).task.support, ml::config::kSupportAll);
  EXPECT_EQ(ml::config::support_name(all.task.support), "all");
  EXPECT_EQ(ml::config::min_episode_examples(ml::config::kSupportAll, 15), 16);
  EXPECT_EQ(ml::config::min_episode_examples(10, 15), 25);
  // max_examples needs room for one episode: query + 1 with "all", support + query otherwise.
  Json j = with("/task/support", "all");
  j["task"]["max_examples"] = 16;
  EXPECT_EQ(config_from_json(j).task.max_examples, 16);
  j["task"]["max_examples"] = 15;
  EXPECT_NE(parse_error(j).find("task.query + 1"), std::string::npos) << parse_error(j);
}

TEST(ConfigValidation, SelectionMetricMustBeOneOfTheLabelKindsMetrics) {
  using ml::config::SelectionMetric;
  EXPECT_EQ(config_from_json(minimal()).train.selection_metric, SelectionMetric::kAuto);
  Json regression = minimal();
  regression["data"]["columns"]["rating"] = "rating";
  regression["task"]["label"] = {{"kind", "regression"}};
  for (const char* ok : {"auto", "loss", "rmse", "mae"}) {
    regression["train"]["selection_metric"] = ok;
    EXPECT_NO_THROW(config_from_json(regression)) << ok;
  }
  for (const char* bad : {"auc", "accuracy"}) {
    regression["train"]["selection_metric"] = bad;
    EXPECT_NE(parse_error(regression).find("not a metric of task.label.kind = \"regression\""),
              std::string::npos)
        << bad;
  }
  Json multiclass = minimal();
  multiclass["task"]["label"] = {{"kind", "multiclass"}, {"class_column", "type"}};
  multiclass["train"]["selection_metric"] = "accuracy";
  EXPECT_NO_THROW(config_from_json(multiclass));
  multiclass["train"]["selection_metric"] = "auc";
  EXPECT_NE(parse_error(multiclass).find("(use \"auto\", \"loss\" or \"accuracy\")"),
            std::string::npos)
      << parse_error(multiclass);
}

TEST(ConfigUnknownKeys, TopLevelTypoSuggestsKey) {
  const std::string m = parse_error(with("/sed", 1));
  EXPECT_NE(m.find("sed"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'seed'?"), std::string::npos) << m;
  EXPECT_EQ(m.rfind("sed: unknown key", 0), 0u) << m;  // the path comes first
}

TEST(ConfigUnknownKeys, NestedTypoNamesFullPath) {
  const std::string m = parse_error(with("/task/suport", 5));
  EXPECT_NE(m.find("task.suport: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'support'?"), std::string::npos) << m;
  EXPECT_NE(m.find("allowed keys here:"), std::string::npos) << m;

  const std::string deep = parse_error(with("/data/columns/prize", "price"));
  EXPECT_NE(deep.find("data.columns.prize: unknown key"), std::string::npos) << deep;
  EXPECT_NE(deep.find("did you mean 'price'?"), std::string::npos) << deep;

  Json side = minimal();
  side["data"]["side_tables"] = Json::parse(
      R"([{"files": ["i.csv"], "key": "item_id", "features": {"numeric": ["w"]},
          "jion": "item"}])");
  const std::string table = parse_error(side);
  EXPECT_NE(table.find("data.side_tables[0].jion: unknown key"), std::string::npos) << table;
  EXPECT_NE(table.find("did you mean 'join'?"), std::string::npos) << table;
}

TEST(ConfigUnknownKeys, UnrelatedKeyHasNoSuggestion) {
  const std::string m = parse_error(with("/task/colour_scheme", "blue"));
  EXPECT_NE(m.find("task.colour_scheme: unknown key"), std::string::npos) << m;
  EXPECT_EQ(m.find("did you mean"), std::string::npos) << m;
}

TEST(ConfigTypes, WrongTypesNameExpectation) {
  EXPECT_NE(
      parse_error(with("/task/support", "ten")).find("task.support = \"ten\": expected an integer"),
      std::string::npos);
  EXPECT_NE(parse_error(with("/task/support", 2.5)).find("task.support = 2.5: expected an integer"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/features/standardize", "yes"))
                .find("features.standardize = \"yes\": expected true or false"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/run/device", 0)).find("run.device = 0: expected a string"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/split/new_fraction", "0.2"))
                .find("split.new_fraction = \"0.2\": expected a number"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/seed", -1)).find("seed = -1: expected a non-negative integer"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/task/query", 5000000000LL)).find("fits in 32 bits"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/data/files", Json::array({"a.csv", 3})))
                .find("data.files[1] = 3: expected a string"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/data/columns/user", 0)).find("data.columns.user = 0"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/data/columns/user", true))
                .find("expected a column name or a 1-based column position"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/task", 5)).find("task = 5: expected an object"), std::string::npos);
  EXPECT_NE(parse_error(Json::array()).find("(top level)"), std::string::npos);
}

TEST(ConfigValidation, RequiredSections) {
  Json no_files = minimal();
  no_files["data"].erase("files");
  EXPECT_NE(parse_error(no_files).find("data.files"), std::string::npos);
  Json no_task = minimal();
  no_task["data"]["columns"].erase("task");
  EXPECT_NE(parse_error(no_task).find("data.columns.task"), std::string::npos);
}

TEST(ConfigCrossField, EventBinaryNeedsEventColumn) {
  Json j = minimal();
  j["task"]["label"]["kind"] = "event_binary";
  const std::string m = parse_error(j);
  EXPECT_NE(m.find("data.columns.event"), std::string::npos) << m;
  EXPECT_NE(m.find("event_binary"), std::string::npos) << m;
  j["data"]["columns"]["event"] = "event_type";
  EXPECT_NO_THROW(config_from_json(j));
}

TEST(ConfigCrossField, ImplicitRejectsRowLevelFeatures) {
  Json j = minimal();
  j["data"]["features"] = {{"numeric", {"discount"}}};
  const std::string m = parse_error(j);
  EXPECT_EQ(m.rfind("data.features", 0), 0u) << m;
  EXPECT_NE(m.find("implicit"), std::string::npos) << m;
  EXPECT_NE(m.find("side_tables"), std::string::npos) << m;  // says what to do instead
  // The same columns are fine for a label that reads real rows.
  j["task"]["label"]["kind"] = "event_binary";
  j["data"]["columns"]["event"] = "event_type";
  EXPECT_NO_THROW(config_from_json(j));
}

TEST(ConfigCrossField, TimeCutoffNeedsTimestamp) {
  Json j = minimal();
  j["data"]["columns"].erase("timestamp");
  j["features"]["aggregates"] = {"user_frequency"};
  j["split"]["time_cutoff"] = "2017-07-01";
  const std::string m = parse_error(j);
  EXPECT_NE(m.find("data.columns.timestamp"), std::string::npos) << m;
  EXPECT_NE(m.find("split.time_cutoff"), std::string::npos) << m;
  j["data"]["columns"]["timestamp"] = "ts";
  EXPECT_NO_THROW(config_from_json(j));
}

TEST(ConfigCrossField, HeaderlessLogNeedsPositions) {
  Json j = minimal();
  j["data"]["format"]["header"] = false;
  const std::string m = parse_error(j);
  EXPECT_NE(m.find("data.format.header = false"), std::string::npos) << m;
  EXPECT_NE(m.find("1-based position"), std::string::npos) << m;
  j["data"]["columns"] = {{"task", 3}, {"user", 1}, {"item", 2}, {"timestamp", 4}};
  EXPECT_NO_THROW(config_from_json(j));
  // One name among positions is still caught, and named in the message.
  j["data"]["columns"]["timestamp"] = "ts";
  EXPECT_NE(parse_error(j).find("'ts'"), std::string::npos);
}

TEST(ConfigCrossField, HeaderlessSideTableNeedsPositions) {
  Json j = minimal();
  j["data"]["side_tables"] = Json::parse(R"([{"files": ["items.csv"], "key": "item_id",
      "format": {"header": false}, "features": {"numeric": [2]}}])");
  const std::string m = parse_error(j);
  EXPECT_NE(m.find("data.side_tables[0].format.header = false"), std::string::npos) << m;
  EXPECT_NE(m.find("'item_id'"), std::string::npos) << m;
  j["data"]["side_tables"][0]["key"] = 1;
  EXPECT_NO_THROW(config_from_json(j));
  j["data"]["side_tables"][0]["features"]["categorical"] = {"brand"};
  EXPECT_NE(parse_error(j).find("'brand'"), std::string::npos);
}

TEST(ConfigCrossField, RegressionTargetsNeedTheirColumns) {
  Json j = minimal();
  j["task"]["label"] = {{"kind", "regression"}, {"target", "spend"}};
  std::string m = parse_error(j);
  EXPECT_NE(m.find("data.columns.price"), std::string::npos) << m;
  EXPECT_NE(m.find("\"spend\""), std::string::npos) << m;
  j["data"]["columns"]["price"] = "price";
  EXPECT_NO_THROW(config_from_json(j));

  j["task"]["label"]["target"] = "rating";
  m = parse_error(j);
  EXPECT_NE(m.find("data.columns.rating"), std::string::npos) << m;
  j["task"]["label"] = {{"kind", "threshold"}, {"target", "quantity"}};
  EXPECT_NE(parse_error(j).find("data.columns.quantity"), std::string::npos);
}

TEST(ConfigCrossField, MulticlassNeedsClassColumn) {
  Json j = minimal();
  j["task"]["label"] = {{"kind", "multiclass"}};
  EXPECT_NE(parse_error(j).find("task.label.class_column"), std::string::npos);
  j["task"]["label"]["class_column"] = "product_type";
  EXPECT_NO_THROW(config_from_json(j));
}

TEST(ConfigCrossField, SideTableJoinNeedsLogColumn) {
  Json j = minimal();
  j["data"]["columns"] = {{"task", "category"}, {"item", "item_id"}};
  j["task"]["label"] = {{"kind", "event_binary"}};
  j["data"]["columns"]["event"] = "event";
  j["features"]["aggregates"] = Json::array();
  j["data"]["side_tables"] = Json::parse(
      R"([{"files": ["users.csv"], "join": "user", "key": "uid",
          "features": {"numeric": ["age"]}}])");
  const std::string m = parse_error(j);
  EXPECT_NE(m.find("data.columns.user"), std::string::npos) << m;
  EXPECT_NE(m.find("data.side_tables[0].join"), std::string::npos) << m;
}

TEST(ConfigCrossField, ValidateCatchesConfigsBuiltInCode) {
  Config c;
  c.data.files = {"log.csv"};
  c.data.columns.task.name = "category";
  c.data.columns.item.name = "item_id";
  // implicit without a user column
  std::string m = error_of([&] { ml::config::validate(c); });
  EXPECT_NE(m.find("data.columns.user"), std::string::npos) << m;
  c.data.columns.user.name = "user_id";
  c.features.aggregates = {ml::config::Aggregate::kUserFrequency};
  EXPECT_NO_THROW(ml::config::validate(c));
}

TEST(ConfigOverride, CreatesNestedObjectsAndParsesJson) {
  Json root = Json::object();
  apply_override(root, "task.support=5");
  apply_override(root, "task.label.kind=event_binary");  // plain word: a string
  apply_override(root, "features.standardize=false");
  apply_override(root, "split.new_fraction=0.25");
  apply_override(root, "task.label.positive_events=[\"purchase\",\"cart\"]");
  apply_override(root, "run.dir=runs/a=b");  // only the first '=' separates
  apply_override(root, "run.device=\"5\"");  // quoted: a string even though it looks numeric
  apply_override(root, "seed=7");
  EXPECT_EQ(root["task"]["support"], 5);
  EXPECT_TRUE(root["task"]["support"].is_number_integer());
  EXPECT_EQ(root["task"]["label"]["kind"], "event_binary");
  EXPECT_TRUE(root["features"]["standardize"].is_boolean());
  EXPECT_EQ(root["features"]["standardize"], false);
  EXPECT_DOUBLE_EQ(root["split"]["new_fraction"].get<double>(), 0.25);
  EXPECT_EQ(root["task"]["label"]["positive_events"], Json::array({"purchase", "cart"}));
  EXPECT_EQ(root["run"]["dir"], "runs/a=b");
  EXPECT_EQ(root["run"]["device"], "5");
  EXPECT_TRUE(root["run"]["device"].is_string());
  EXPECT_EQ(root["seed"], 7);
}

TEST(ConfigOverride, ReplacesExistingValuesAndKeepsSiblings) {
  Json root = minimal();
  apply_override(root, "data.columns.user=customer");
  apply_override(root, "data.files=[\"x.csv\",\"y.csv\"]");
  EXPECT_EQ(root["data"]["columns"]["user"], "customer");
  EXPECT_EQ(root["data"]["columns"]["item"], "item_id");  // sibling untouched
  EXPECT_EQ(root["data"]["files"], Json::array({"x.csv", "y.csv"}));
  apply_override(root, "data.columns.user=1");
  EXPECT_TRUE(root["data"]["columns"]["user"].is_number_integer());
}

TEST(ConfigOverride, MalformedAssignmentsAreUsageErrors) {
  Json root = minimal();
  for (const char* bad : {"task.support", "=5", "", "task..support=5", ".support=5", "task.=5"}) {
    const std::string m = error_of<UsageError>([&] { apply_override(root, bad); });
    EXPECT_NE(m.find(std::string("'") + bad + "'"), std::string::npos) << m;
  }
  EXPECT_NE(error_of<UsageError>([&] {
              apply_override(root, "task.support");
            }).find("expected KEY.PATH=VALUE"),
            std::string::npos);
  // Descending into a value that is not an object.
  root["task"]["support"] = 5;
  const std::string m = error_of<UsageError>([&] { apply_override(root, "task.support.x=1"); });
  EXPECT_NE(m.find("not an object"), std::string::npos) << m;
}

// A plain-word value is taken as a string; from a shell it need not be UTF-8, which the config
// could not be written with (found by tests/fuzz/fuzz_config.cpp). Refused up front, with the
// bad byte named and the message itself valid UTF-8.
TEST(ConfigOverride, ValuesThatAreNotUtf8AreUsageErrors) {
  Json root = minimal();
  for (const char* bad : {"run.dir=runs/\xff", "run.device=\"cpu\xc3\"", "data.\xe9t\xe9=1"}) {
    const std::string m = error_of<UsageError>([&] { apply_override(root, bad); });
    EXPECT_NE(m.find("is not UTF-8; config values are UTF-8 text"), std::string::npos) << m;
    EXPECT_NO_THROW((void)Json(m).dump()) << "the message is not UTF-8 itself";
  }
  EXPECT_NE(error_of<UsageError>([&] {
              apply_override(root, "run.dir=runs/\xff");
            }).find("'run.dir=runs/\\xFF': byte 0xFF at offset 13"),
            std::string::npos);
  apply_override(root, "run.dir=runs/caf\xc3\xa9");  // valid UTF-8 (é) stays fine
  EXPECT_EQ(root["run"]["dir"], "runs/caf\xc3\xa9");
}

// A fresh directory per test under the system temp folder, removed afterwards.
class ConfigLoad : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_ / "configs"); }

  std::string write(const std::string& name, const std::string& content) {
    const std::string p = temp_.file(name);
    ml::testing::write_file(p, content);
    EXPECT_TRUE(fs::is_regular_file(p)) << p;
    return p;
  }
  std::string in_dir(const std::string& relative) const {
    return (dir_ / relative).lexically_normal().string();
  }

  ml::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

constexpr const char* kConfigWithPaths = R"({
  "data": {"files": ["log.csv", "../shared/part2.csv", "/abs/part3.csv"],
           "columns": {"task": "category", "user": "user_id", "item": "item_id", "timestamp": "ts"},
           "side_tables": [{"files": ["tables/items.csv"], "key": "item_id",
                            "features": {"categorical": ["brand"]}},
                           {"files": "users.csv", "join": "user", "key": "user_id",
                            "features": {"numeric": ["age"]}}]},
  "task": {"support": 4}
})";

TEST_F(ConfigLoad, RelativePathsResolveAgainstConfigFolder) {
  const std::string path = write("configs/run.json", kConfigWithPaths);
  const Config c = load_config(path);
  EXPECT_EQ(c.source_path, path);
  EXPECT_EQ(c.data.files, (std::vector<std::string>{in_dir("configs/log.csv"),
                                                    in_dir("shared/part2.csv"), "/abs/part3.csv"}));
  ASSERT_EQ(c.data.side_tables.size(), 2u);
  EXPECT_EQ(c.data.side_tables[0].files,
            std::vector<std::string>{in_dir("configs/tables/items.csv")});
  EXPECT_EQ(c.data.side_tables[1].files, std::vector<std::string>{in_dir("configs/users.csv")});
  EXPECT_EQ(c.task.support, 4);
}

TEST_F(ConfigLoad, OverridesApplyAfterResolution) {
  const std::string path = write("configs/run.json", kConfigWithPaths);
  const Config c =
      load_config(path, {"task.support=2", "data.files=[\"cli/log.csv\"]", "run.device=cpu"});
  EXPECT_EQ(c.task.support, 2);
  EXPECT_EQ(c.run.device.name(), "cpu");
  // Paths given on the command line are relative to where the user runs the tool: made absolute
  // against it, not against the config's folder.
  EXPECT_EQ(c.data.files, std::vector<std::string>{
                              (fs::current_path() / "cli/log.csv").lexically_normal().string()});
  // The file's side-table paths are still resolved.
  EXPECT_EQ(c.data.side_tables[0].files,
            std::vector<std::string>{in_dir("configs/tables/items.csv")});
}

// The same file, wherever it is, as the filesystem sees it (the temp folder may be reached
// through a link, and the working directory is its real path).
std::string real(const std::string& path) {
  return fs::weakly_canonical(path).string();
}

TEST_F(ConfigLoad, ConfigInCurrentFolderResolvesAgainstIt) {
  // A bare file name has an empty parent: its folder is the working directory.
  write("configs/run.json", kConfigWithPaths);
  Config c;
  {
    ml::testing::WorkingDirectory cwd(dir_ / "configs");
    EXPECT_NO_THROW(c = load_config("run.json"));
  }
  EXPECT_EQ(real(c.data.files[0]), real(in_dir("configs/log.csv")));
  EXPECT_EQ(real(c.data.files[1]), real(in_dir("shared/part2.csv")));
}

// --print-config's promise: the resolved config, saved in another folder and loaded as a config
// from another working directory, is the same config (data paths absolute, run.dir as written).
TEST_F(ConfigLoad, ResolvedConfigReadsBackAsTheSameFromAnotherFolder) {
  write("configs/run.json", kConfigWithPaths);
  fs::create_directories(dir_ / "saved/deeper");
  fs::create_directories(dir_ / "elsewhere");
  Json printed;
  {
    ml::testing::WorkingDirectory cwd(dir_);
    to_json(printed, load_config("configs/run.json", {"data.side_tables[1].files=[\"u.csv\"]"}));
  }
  for (const Json& f : printed["data"]["files"])
    EXPECT_TRUE(fs::path(f.get<std::string>()).is_absolute()) << f;
  EXPECT_EQ(real(printed["data"]["side_tables"][1]["files"][0].get<std::string>()),
            real(in_dir("u.csv")));
  write("saved/deeper/printed.json", printed.dump(2));
  Json again;
  {
    ml::testing::WorkingDirectory cwd(dir_ / "elsewhere");
    to_json(again, load_config("../saved/deeper/printed.json"));
  }
  EXPECT_EQ(again, printed) << Json::diff(printed, again).dump();
}

// Checkpoints and RUN/config.json of earlier versions hold data paths as the user wrote them,
// relative to the working directory of the command that trained: they are read as such.
TEST(ConfigSaved, RelativeDataPathsAreMadeAbsoluteAgainstTheWorkingDirectory) {
  Json j = minimal();
  j["data"]["files"] = {"data/log.csv", "/abs/part.csv"};
  j["data"]["cache"] = "cache-folder";
  const Config c = ml::config::config_from_saved(j);
  EXPECT_EQ(c.data.files[0], (fs::current_path() / "data/log.csv").string());
  EXPECT_EQ(c.data.files[1], "/abs/part.csv");
  EXPECT_EQ(c.data.cache, (fs::current_path() / "cache-folder").string());
  j["data"]["cache"] = "off";  // the words of data.cache are not folders
  EXPECT_EQ(ml::config::config_from_saved(j).data.cache, "off");
}

TEST_F(ConfigLoad, MissingFileNamesPath) {
  const std::string path = in_dir("configs/nope.json");
  const std::string m = error_of([&] { load_config(path); });
  EXPECT_NE(m.find(path), std::string::npos) << m;
}

TEST_F(ConfigLoad, InvalidJsonNamesFileAndLine) {
  const std::string path =
      write("configs/broken.json", "{\n  \"seed\": 1,\n  \"data\": {\n}\n,,\n");
  const std::string m = error_of([&] { load_config(path); });
  EXPECT_EQ(m.rfind(path, 0), 0u) << m;
  EXPECT_NE(m.find("line"), std::string::npos) << m;
  EXPECT_NE(m.find("not valid JSON"), std::string::npos) << m;
}

TEST_F(ConfigLoad, ValidationErrorsArePrefixedWithPath) {
  std::string text = kConfigWithPaths;
  text.replace(text.find("\"support\": 4"), 12, "\"suport\": 4");
  const std::string path = write("configs/typo.json", text);
  const std::string m = error_of([&] { load_config(path); });
  EXPECT_EQ(m.rfind(path + ": task.suport: unknown key", 0), 0u) << m;
  EXPECT_NE(m.find("did you mean 'support'?"), std::string::npos) << m;

  // A bad value that arrives through an override is reported the same way.
  const std::string good = write("configs/good.json", kConfigWithPaths);
  const std::string o = error_of([&] { load_config(good, {"task.query=0"}); });
  EXPECT_EQ(o.rfind(good + ": task.query = 0: must be from 1 to 1000000", 0), 0u) << o;

  // Cross-field checks too.
  const std::string c = error_of([&] { load_config(good, {"task.label.kind=event_binary"}); });
  EXPECT_EQ(c.rfind(good + ": data.columns.event", 0), 0u) << c;
}

TEST_F(ConfigLoad, BadOverrideIsUsageError) {
  const std::string path = write("configs/run.json", kConfigWithPaths);
  EXPECT_THROW(load_config(path, {"task.support"}), UsageError);
}

TEST_F(ConfigLoad, ResolvedConfigReloadsIdentically) {
  // What a run directory stores (to_json of the loaded config) loads back to the same config.
  const std::string path = write("configs/run.json", kConfigWithPaths);
  const Json first = to_json_of(load_config(path));
  const std::string saved = write("resolved.json", first.dump(2));
  EXPECT_EQ(to_json_of(load_config(saved)), first);
}

}  // namespace

namespace {

TEST(ConfigOverride, ListIndicesReachIntoArrays) {
  Json j =
      Json::parse(R"({"data": {"side_tables": [{"files": ["a.csv"]}, {"files": ["b.csv"]}]}})");
  apply_override(j, "data.side_tables[1].files=[\"c.csv\"]");
  EXPECT_EQ(j["data"]["side_tables"][1]["files"], Json::array({"c.csv"}));
  EXPECT_EQ(j["data"]["side_tables"][0]["files"], Json::array({"a.csv"}));
  try {
    apply_override(j, "data.side_tables[2].files=x");
    FAIL() << "an index past the end must be refused";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("has 2 entries"), std::string::npos) << e.what();
  }
  EXPECT_THROW(apply_override(j, "data.side_tables[x].files=y"), UsageError);
  EXPECT_THROW(apply_override(j, "data..files=y"), UsageError);
}

// ---- unknown keys first, numbers that fit, nesting depth (issue 11) --------------------------

TEST(ConfigUnknownKeys, ReportedBeforeWhatTheyLeaveMissing) {
  // Without the typo's key, data.files and data.columns.task are missing too: the typo is the
  // mistake to name.
  const std::string top = parse_error(Json::parse(R"({"dta": {"files": ["log.csv"]}})"));
  EXPECT_EQ(top.rfind("dta: unknown key", 0), 0u) << top;
  EXPECT_NE(top.find("did you mean 'data'?"), std::string::npos) << top;

  Json nested = minimal();
  nested["data"]["colums"] = nested["data"]["columns"];
  nested["data"].erase("columns");
  const std::string m = parse_error(nested);
  EXPECT_EQ(m.rfind("data.colums: unknown key", 0), 0u) << m;

  // In a list section too: the misspelt features are not "a side table needs features".
  Json side = minimal();
  side["data"]["side_tables"] =
      Json::parse(R"([{"files": ["i.csv"], "key": "item_id", "featurs": {"numeric": ["w"]}}])");
  const std::string t = parse_error(side);
  EXPECT_EQ(t.rfind("data.side_tables[0].featurs: unknown key", 0), 0u) << t;
}

TEST(ConfigRanges, IntegersThatDoNotFitAreRefusedNeverWrapped) {
  const Json big = 4294967297ULL;  // 2^32 + 1: wraps to 1 in 32 bits
  for (const auto& [pointer, path] : std::vector<std::pair<std::string, std::string>>{
           {"/model/hidden", "model.hidden"},
           {"/task/query", "task.query"},
           {"/task/support", "task.support"},
           {"/data/columns/user", "data.columns.user"}}) {
    const std::string m = parse_error(with(pointer, big));
    EXPECT_EQ(m.rfind(path + " = 4294967297: expected an integer that fits in 32 bits", 0), 0u)
        << m;
  }
  const std::string list = parse_error(with("/model/hidden", Json::array({64, big})));
  EXPECT_EQ(list.rfind("model.hidden[1] = 4294967297: expected an integer that fits in 32 bits", 0),
            0u)
      << list;
  // A float that is a whole number but fits no integer type is refused, not cast (undefined).
  EXPECT_NE(parse_error(with("/meta/iterations", 1e300)).find("meta.iterations = 1e+300"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/task/query", 2.5)).find("task.query = 2.5: expected an integer"),
            std::string::npos);
  // Wider fields take what fits them, exactly.
  EXPECT_NE(parse_error(with("/features/hash_buckets", big))
                .find("features.hash_buckets = 4294967297: must be from 2 to 16777216"),
            std::string::npos);
  const std::uint64_t max_seed = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(config_from_json(with("/seed", max_seed)).seed, max_seed);
  EXPECT_NE(parse_error(with("/seed", 1.8446744073709552e19)).find("fits in 64 bits"),
            std::string::npos);
  EXPECT_EQ(config_from_json(with("/task/query", 7.0)).task.query, 7);  // 7.0 is the integer 7
}

// Sizes that fit their integer but no machine: 1e18 hash buckets, a layer of a billion units
// and a support set of a billion examples used to end as torch's allocation failure (exit 1,
// a backtrace), and support + query overflowed an int (every task qualified). Each is refused
// with its key and its bound, documented in docs/CONFIG.md.
TEST(ConfigRanges, SizesHaveUpperBounds) {
  struct Case {
    std::string pointer;
    Json value;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"/features/hash_buckets", 1000000000000000000LL,
       "features.hash_buckets = 1000000000000000000: must be from 2 to 16777216"},
      {"/model/hidden", Json::array({1000000000}),
       "model.hidden[0] = 1000000000: must be from 1 to 65536"},
      {"/model/hidden", Json(std::vector<int>(65, 8)), "model.hidden = [8,8,8"},
      {"/model/embedding_dim", 1000000000,
       "model.embedding_dim = 1000000000: must be from 1 to 4096"},
      {"/task/support", 1000000000,
       "task.support = 1000000000: must be from 1 to 1000000 or \"all\""},
      {"/task/query", 2147483647, "task.query = 2147483647: must be from 1 to 1000000"},
      {"/task/label/ways", 1000000000, "task.label.ways = 1000000000: must be from 2 to 1000"},
      {"/features/text_buckets", 1000000000,
       "features.text_buckets = 1000000000: must be from 1 to 65536"},
      {"/meta/meta_batch", 1000000000, "meta.meta_batch = 1000000000: must be from 1 to 10000"},
      {"/meta/inner_steps", 1000000001, "meta.inner_steps = 1000000001: must be from 1 to 1000000"},
      {"/meta/adapt_steps", 1000000001, "meta.adapt_steps = 1000000001: must be from 0 to 1000000"},
      {"/train/validation_episodes", 1000000000,
       "train.validation_episodes = 1000000000: must be from 1 to 10000"},
      {"/run/threads", 100000, "run.threads = 100000: must be from 0 to 1024"},
  };
  for (const Case& c : cases) {
    const std::string m = parse_error(with(c.pointer, c.value));
    EXPECT_NE(m.find(c.expected), std::string::npos) << c.pointer << ": " << m;
  }
  EXPECT_NE(parse_error(with("/model/hidden", Json(std::vector<int>(65, 8))))
                .find("65 layers; at most 64"),
            std::string::npos);
  // The bounds themselves are accepted.
  for (const auto& [pointer, value] : std::vector<std::pair<std::string, Json>>{
           {"/features/hash_buckets", 1 << 24}, {"/task/support", 1000000}, {"/run/threads", 1024}})
    EXPECT_NO_THROW(config_from_json(with(pointer, value))) << pointer;
}

TEST(ConfigRanges, NumbersMustFitAFloat) {
  // The model computes in float: 1e300 used to pass validation and fail inside torch.
  const std::string m = parse_error(with("/meta/inner_lr", 1e300));
  EXPECT_EQ(m.rfind("meta.inner_lr = 1e+300: must fit a 32-bit float", 0), 0u) << m;
  // Too small to be anything but 0 in a float: a positive rate would silently become 0.
  EXPECT_NE(parse_error(with("/meta/outer_lr", 1e-300)).find("meta.outer_lr = 1e-300: must fit"),
            std::string::npos);
  EXPECT_NE(parse_error(with("/task/label/threshold", -1e39)).find("task.label.threshold"),
            std::string::npos);
  EXPECT_EQ(config_from_json(with("/task/label/threshold", -3e38)).task.label.threshold, -3e38);
  EXPECT_EQ(config_from_json(with("/meta/grad_clip", 0.0)).meta.grad_clip, 0.0);
  EXPECT_EQ(config_from_json(with("/meta/inner_lr", 2e-38)).meta.inner_lr, 2e-38);
}

TEST(ConfigOverride, KeysAndValuesTooDeepAreUsageErrors) {
  // Tens of thousands of segments used to build a tree deep enough to crash the reader.
  std::string key = "a";
  for (int i = 0; i < 30000; ++i) key += ".a";
  Json root = minimal();
  const std::string m = error_of<UsageError>([&] { apply_override(root, key + "=1"); });
  EXPECT_NE(m.find("the key has 30001 segments; a config key has at most 100"), std::string::npos)
      << m.substr(0, 300);
  EXPECT_LT(m.size(), 300u);  // one readable line, not the key back
  const std::string deep = std::string(30000, '[') + std::string(30000, ']');
  const std::string v = error_of<UsageError>([&] { apply_override(root, "seed=" + deep); });
  EXPECT_NE(v.find("the value is nested deeper than 100 levels"), std::string::npos)
      << v.substr(0, 300);
  // 100 segments are still a key (here an unknown one, which the reader names).
  std::string hundred = "a";
  for (int i = 1; i < 100; ++i) hundred += ".a";
  EXPECT_NO_THROW(apply_override(root, hundred + "=1"));
  EXPECT_EQ(parse_error(root).rfind("a: unknown key", 0), 0u);
}

TEST_F(ConfigLoad, DeepNestingIsRefusedAtItsPosition) {
  // Level 1 is the top object; the 100th '[' opens level 101, at column 9 + 100.
  const std::string deep = write("configs/deep.json", "{\"seed\": " + std::string(50000, '['));
  const std::string m = error_of([&] { load_config(deep); });
  EXPECT_EQ(m, deep + ": line 1, column 109: nested deeper than 100 levels");
  // 100 levels are read, and the value is then named like any other.
  const std::string ok =
      write("configs/ok.json", "{\"seed\": " + std::string(99, '[') + std::string(99, ']') + "}");
  const std::string n = error_of([&] { load_config(ok); });
  EXPECT_NE(n.find("seed = [[[["), std::string::npos) << n;
  EXPECT_NE(n.find("expected an integer"), std::string::npos) << n;
}

TEST_F(ConfigLoad, FolderAndOverflowingNumberAreNamed) {
  const std::string folder = in_dir("configs");
  const std::string f = error_of([&] { load_config(folder); });
  EXPECT_EQ(f, "'" + folder + "' is a folder; --config takes a JSON config file");
  // nlohmann refuses 1e400 with an exception of another kind than syntax errors.
  const std::string path = write("configs/huge.json", "{\"meta\":\n  {\"inner_lr\": 1e400}}");
  const std::string m = error_of([&] { load_config(path); });
  EXPECT_EQ(m.rfind(path + ": line 2, column ", 0), 0u) << m;
  EXPECT_NE(m.find("number overflow parsing '1e400'"), std::string::npos) << m;
}

}  // namespace

TEST(ConfigValidation, AHeaderlessLogNamesEveryColumnStillGivenByName) {
  // user and item by position, task and timestamp still by name: both named in one message.
  Json j = with("/data/format", {{"header", false}});
  j["data"]["columns"]["user"] = 1;
  j["data"]["columns"]["item"] = 2;
  const std::string m = parse_error(j);
  EXPECT_EQ(m.find("data.format.header = false: columns of a headerless file must be given by "
                   "1-based position, but "),
            0u)
      << m;
  EXPECT_NE(m.find("'ts'"), std::string::npos) << m;
  EXPECT_NE(m.find("'category'"), std::string::npos) << m;
  EXPECT_NE(m.find(" are names"), std::string::npos) << m;
  j["data"]["columns"]["task"] = 3;
  EXPECT_NE(parse_error(j).find("but 'ts' is a name"), std::string::npos) << parse_error(j);
}

// ---- text runs (data.text) ------------------------------------------------------------------

namespace {

Json text_run() {
  return Json::parse(R"({
    "data": {"files": ["intents.csv"], "text": {"column": "text", "class_column": "category"}},
    "task": {"label": {"kind": "multiclass", "ways": 5}, "support": 5, "query": 10},
    "model": {"type": "transformer", "transformer": {"dim": 32, "heads": 4}},
    "split": {"new_classes": ["card_arrival", "lost_or_stolen_card"]}
  })");
}

Json text_with(const std::string& pointer, const Json& value) {
  Json j = text_run();
  j[Json::json_pointer(pointer)] = value;
  return j;
}

}  // namespace

TEST(ConfigTextRun, ReadsTheTextKeysAndNeedsNoTaskColumn) {
  const Config c = config_from_json(text_run());
  EXPECT_TRUE(c.text_run());
  EXPECT_EQ(c.data.text.column, "text");
  EXPECT_EQ(c.data.text.class_column, "category");
  EXPECT_EQ(c.model.type, ml::config::ModelType::kTransformer);
  EXPECT_EQ(c.model.transformer.dim, 32);
  EXPECT_EQ(c.split.new_classes.size(), 2u);
  // The defaults that need the log's columns drop out, as for a log without them.
  EXPECT_TRUE(c.features.aggregates.empty());
  EXPECT_FALSE(config_from_json(minimal()).text_run());
}

TEST(ConfigTextRun, RefusesWhatATextRunCannotUse) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {text_with("/task/label/kind", "implicit"), "task.label.kind = \"implicit\": must be"},
      {text_with("/model/type", "mlp"), "model.type = \"mlp\": must be \"transformer\""},
      {text_with("/data/columns/user", "user_id"), "data.columns.user = 'user_id'"},
      {text_with("/data/format/header", false), "data.format.header = false"},
      {text_with("/task/support", "all"), "task.support = \"all\""},
      {text_with("/split/new_tasks", {"x"}), "split.new_tasks: a text run holds out classes"},
      {text_with("/split/time_cutoff", "2020-01-01"), "split.time_cutoff"},
      {text_with("/task/label/class_column", "category"), "task.label.class_column = 'category'"},
      {text_with("/data/text/path_column", "path"), "data.text.class_column = \"category\": give"},
      {text_with("/data/text/class_column", ""), "a text run needs the class"},
      // The text as its own class would make every distinct text a class of one.
      {text_with("/data/text/class_column", "text"),
       "data.text.class_column = \"text\": is the text column (data.text.column) itself"},
      {text_with("/model/transformer/heads", 5), "model.transformer.dim = 32: must be a multiple"},
      {text_with("/model/transformer/max_len", 0), "model.transformer.max_len = 0"},
      {text_with("/features/tokenizer/vocab_size", 4), "features.tokenizer.vocab_size = 4"},
      {text_with("/model/user_sequence/length", 5),
       "model.user_sequence: is for purchase-log runs"},
      // SentencePiece's trainer refuses a lower coverage with its own internal message.
      {text_with("/features/tokenizer/character_coverage", 0.9),
       "features.tokenizer.character_coverage = 0.9: must be in [0.98, 1]"},
      {text_with("/split/new_classes", {"a", "a"}),
       "split.new_classes[0] = \"a\": is listed twice"},
  };
  for (const auto& [j, expected] : cases) {
    const std::string m = parse_error(j);
    EXPECT_NE(m.find(expected), std::string::npos) << "expected '" << expected << "' in: " << m;
  }
  Json anil = text_with("/meta/inner_layers", {-1});
  EXPECT_NO_THROW(config_from_json(anil));
  anil["meta"]["algorithm"] = "anil";
  EXPECT_NE(parse_error(anil).find("meta.inner_layers: not with meta.algorithm = \"anil\""),
            std::string::npos);
}

TEST(ConfigTextRun, TextKeysOutsideATextRunAreRefused) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {with("/model/type", "transformer"), "model.type = \"transformer\": the transformer reads"},
      {with("/split/new_classes", {"a"}), "split.new_classes: class lists split a text run"},
      {with("/data/text/class_column", "category"),
       "data.text.class_column = \"category\": is set, but data.text.column is not"},
      {with("/meta/inner_layers", {0}), "meta.inner_layers: only for model.type"},
  };
  for (const auto& [j, expected] : cases) {
    const std::string m = parse_error(j);
    EXPECT_NE(m.find(expected), std::string::npos) << "expected '" << expected << "' in: " << m;
  }
  Json no_task = minimal();
  no_task["data"]["columns"].erase("task");
  EXPECT_NE(parse_error(no_task).find("or data.text.column for a text run"), std::string::npos);
}
