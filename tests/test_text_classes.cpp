// Which classes a text run can use and how it adapts to many of them: a data row with a field the
// header lacks is a bad row (as in a purchase log); classes with fewer distinct texts than
// data.text.min_class_groups are left out before the split, and a train split left with fewer
// than task.label.ways classes is one clear error; the settings eval's many-way protocol and
// adapt both choose among (eval/class_adaptation_choice.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "config/config.hpp"
#include "data/text_dataset.hpp"
#include "eval/class_adaptation_choice.hpp"
#include "inspect/text_profile.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/learner_state.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"

namespace {

using ml::config::Json;
using ml::tasks::ClassSplitPart;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ml::Error& e) {
    return e.what();
  }
  return "";
}

TEST(TextDatasetRows, AFieldTheHeaderLacksIsABadRowWithItsFileAndLine) {
  ml::testing::TempDir dir;
  const std::string path = dir.file("texts.csv");
  // Line 3 has an unquoted comma in its text, so its class shifts into a third field; line 4
  // ends in a trailing delimiter (an empty extra field), which is no error.
  ml::testing::write_file(path,
                          "text,category\n"
                          "my card,card\n"
                          "my pin, please,pin\n"
                          "my fee,fee,\n"
                          "short\n");
  ml::data::TextDatasetSpec spec;
  spec.files = {path};
  spec.text_column = "text";
  spec.class_column = "category";
  ml::data::TextLoadReport report;
  const auto data = ml::data::load_text_dataset(spec, report);
  EXPECT_EQ(data.texts, (std::vector<std::string>{"my card", "my fee"}));
  EXPECT_EQ(report.rows_rejected, 2);
  EXPECT_EQ(report.rejected_by_reason.at("wrong field count"), 2);
  ASSERT_EQ(report.bad_rows.size(), 2u);
  EXPECT_EQ(report.bad_rows[0].line, 3u);
  EXPECT_EQ(report.bad_rows[0].reason, "expected 2 fields, found 3");
  EXPECT_EQ(report.bad_rows[1].line, 5u);
  EXPECT_EQ(report.bad_rows[1].reason, "expected 2 fields, found 1");
  spec.bad_rows = ml::config::BadRows::kFail;
  ml::data::TextLoadReport fail_report;
  const std::string m = error_of([&] { ml::data::load_text_dataset(spec, fail_report); });
  EXPECT_NE(m.find(path + ":3: expected 2 fields, found 3"), std::string::npos) << m;
  EXPECT_NE(m.find("data.bad_rows"), std::string::npos) << m;
}

// Classes c0..c{n-1}; class i has groups[i] distinct texts, each written twice (one duplicate
// group of two rows), so rows and distinct texts differ.
ml::config::Config classes_with_groups(const ml::testing::TempDir& dir,
                                       const std::vector<int>& groups) {
  std::string csv = "text,category\n";
  for (std::size_t c = 0; c < groups.size(); ++c)
    for (int g = 0; g < groups[c]; ++g)
      for (int copy = 0; copy < 2; ++copy)
        csv += "class " + std::to_string(c) + " text " + std::to_string(g) + ",c" +
               std::to_string(c) + "\n";
  ml::testing::write_file(dir.file("texts.csv"), csv);
  Json j = Json::parse(R"({
    "data": {"text": {"column": "text", "class_column": "category"}},
    "task": {"label": {"kind": "multiclass", "ways": 2}, "support": 2, "query": 3},
    "model": {"type": "transformer", "transformer": {"max_len": 8}},
    "features": {"tokenizer": {"vocab_size": 40, "hash_buckets": 8}},
    "split": {"new_fraction": 0.25, "validation_fraction": 0.25}
  })");
  j["data"]["files"] = {dir.file("texts.csv")};
  return ml::config::config_from_json(j);
}

std::vector<std::string> names(const ml::data::TextDataset& data,
                               const std::vector<std::int32_t>& ids) {
  std::vector<std::string> out;
  for (std::int32_t c : ids) out.push_back(data.class_names[static_cast<std::size_t>(c)]);
  return out;
}

TEST(TextClassFilter, ClassesBelowMinClassGroupsAreLeftOutBeforeTheSplit) {
  ml::testing::TempDir dir;
  // 8 classes of 5 distinct texts (= support 2 + query 3, the default threshold), 3 of 4.
  auto config = classes_with_groups(dir, {5, 4, 5, 5, 4, 5, 5, 5, 5, 4, 5});
  EXPECT_EQ(ml::pipeline::min_class_groups(config), 5);
  const auto data = ml::pipeline::prepare_text_run_data(config);
  const auto& split = data->split;
  EXPECT_EQ(names(data->dataset, split.dropped), (std::vector<std::string>{"c1", "c4", "c9"}));
  // The 8 kept classes are split: round(8 * 0.25) = 2 new, 2 validation, 4 train.
  EXPECT_EQ(split.new_classes.size(), 2u);
  EXPECT_EQ(split.validation.size(), 2u);
  EXPECT_EQ(split.train.size(), 4u);
  for (auto part : {ClassSplitPart::kTrain, ClassSplitPart::kValidation, ClassSplitPart::kNew}) {
    EXPECT_TRUE(data->sampler(part).short_classes().empty()) << ml::tasks::split_part_name(part);
    for (std::int32_t c : split.classes(part))
      EXPECT_EQ(std::count(split.dropped.begin(), split.dropped.end(), c), 0);
  }
  // Rows count twice (each text is written twice): the threshold is on distinct texts.
  config.data.text.min_class_groups = 4;
  EXPECT_TRUE(ml::pipeline::prepare_text_run_data(config)->split.dropped.empty());

  // inspect shows what was left out, and the same split.
  config.data.text.min_class_groups = 0;
  const auto profile = ml::inspect::profile_text(config);
  EXPECT_EQ(profile.min_class_groups, 5);
  ASSERT_EQ(profile.dropped.size(), 3u);
  EXPECT_EQ(profile.dropped[0], (std::pair<std::string, std::int64_t>{"c1", 4}));
  EXPECT_EQ(profile.dropped_rows, 24);
  EXPECT_TRUE(profile.split_problems.empty());
  EXPECT_EQ(profile.splits[0].summary.classes, 4);
  std::ostringstream text;
  ml::inspect::print_text_profile(profile, text, false);
  EXPECT_NE(text.str().find("3 of 11 (24 texts) with fewer than 5 distinct texts"),
            std::string::npos)
      << text.str();
}

TEST(TextClassFilter, ASplitShortOfWaysClassesIsOneClearError) {
  ml::testing::TempDir dir;
  // 8 classes, 5 of them with too few distinct texts for 5-shot episodes with 3 queries.
  auto config = classes_with_groups(dir, {9, 9, 9, 4, 4, 4, 4, 4});
  config.task.support = 5;
  std::string m = error_of([&] { ml::pipeline::prepare_text_run_data(config); });
  // 3 kept: round(0.75) = 1 new, 1 validation, 1 train.
  EXPECT_NE(m.find("the train split has 1 of the 3 classes (5 more were left out with fewer "
                   "than 8 distinct texts: data.text.min_class_groups)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("task.label.ways = 2"), std::string::npos) << m;
  EXPECT_NE(m.find("split.new_fraction / split.validation_fraction"), std::string::npos) << m;
  // inspect does not refuse: it names the same problem, and the validation and new splits'.
  const auto profile = ml::inspect::profile_text(config);
  ASSERT_EQ(profile.split_problems.size(), 3u);
  EXPECT_EQ(profile.split_problems[0], m);
  EXPECT_NE(profile.split_problems[1].find("the validation split has 1 of the 3 classes"),
            std::string::npos);
  EXPECT_NE(profile.split_problems[2].find("change split.new_fraction"), std::string::npos);

  // A list naming a class that was left out says so, instead of "no such class".
  config.split.new_fraction = 0;
  config.split.validation_fraction = 0;
  config.split.new_classes = {"c3"};
  m = error_of([&] { ml::pipeline::prepare_text_run_data(config); });
  EXPECT_NE(m.find("split.new_classes names 'c3', which has 4 distinct texts, fewer than "
                   "data.text.min_class_groups = 8, task.support + task.query"),
            std::string::npos)
      << m;
}

TEST(TextClassFilter, RunsSavedBeforeTheKeyKeepEveryClassWhenReadBack) {
  ml::testing::TempDir dir;
  const auto config = classes_with_groups(dir, {5, 4, 5, 5, 5});
  Json saved;
  to_json(saved, config);
  EXPECT_EQ(ml::config::config_from_saved(saved).data.text.min_class_groups, 0);
  // A checkpoint's config from before the key: its classes were split without the filter.
  saved["data"]["text"].erase("min_class_groups");
  const auto old = ml::config::config_from_saved(saved);
  EXPECT_EQ(old.data.text.min_class_groups, 1);
  EXPECT_TRUE(ml::pipeline::prepare_text_run_data(old)->split.dropped.empty());
}

TEST(ClassAdaptChoice, SettingsAreZeroStepsOnceThenEachCountAtTheRunsRateAndATenth) {
  using ml::eval::ClassAdaptSetting;
  const auto maml =
      ml::eval::class_adapt_settings({10, 0, 3, 3}, 0.5, ml::config::Algorithm::kMaml);
  const std::vector<ClassAdaptSetting> expected{
      {0, 0.5}, {3, 0.5}, {10, 0.5}, {3, 0.05}, {10, 0.05}};
  EXPECT_EQ(maml, expected);
  EXPECT_EQ(ml::eval::setting_name(maml[0]), "0 steps");
  EXPECT_EQ(ml::eval::setting_name(maml[4]), "10 steps, lr 0.05");
  // Meta-SGD's rates are learned: the run's rate once.
  EXPECT_EQ(ml::eval::class_adapt_settings({0, 3}, 0.5, ml::config::Algorithm::kMetaSgd),
            (std::vector<ClassAdaptSetting>{{0, 0.5}, {3, 0.5}}));
  // No 0 in the grid: every setting adapts.
  EXPECT_EQ(ml::eval::class_adapt_settings({1}, 0.5, ml::config::Algorithm::kFomaml).size(), 2u);
  EXPECT_EQ(ml::eval::best_setting({NAN, 0.4, 0.7, 0.7}), 2);
  EXPECT_EQ(ml::eval::best_setting({NAN, NAN}), -1);
}

TEST(ClassAdaptChoice, ADivergingSettingScoresNaNAndIsNeverChosen) {
  ml::testing::TempDir dir;
  auto config = classes_with_groups(dir, {6, 6, 6, 6, 6, 6, 6, 6});
  config.model.transformer = {8, 2, 1, 12, 8, ml::config::Activation::kGelu};
  const auto data = ml::pipeline::prepare_text_run_data(config);
  const auto learner = ml::run::build_text_learner(config, *data, torch::kCPU);
  const ml::tasks::ClassEpisodeSampler sampler(data->dataset, data->split.train, "train",
                                               {2, 2, ml::tasks::kQueryRest}, 1);
  const auto episode = sampler.many_way(0);
  const auto task = ml::pipeline::make_text_task_batch(*data, episode, torch::kCPU);
  const auto classes = static_cast<std::int64_t>(episode.classes.size());
  ASSERT_EQ(classes, 4);
  const std::vector<ml::eval::ClassAdaptSetting> settings{{0, 0.1}, {1, 0.1}, {5, 1e30}};
  const auto scores = ml::eval::class_adapt_accuracies(*learner, task, classes, settings);
  ASSERT_EQ(scores.size(), 3u);
  const auto queries = static_cast<double>(task.query.size());
  ASSERT_GE(queries, 16);  // 4 classes x the 4 groups their supports left
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_GE(scores[i], 0.0);
    EXPECT_LE(scores[i], 1.0);
    // A share of the query texts.
    EXPECT_NEAR(scores[i] * queries, std::round(scores[i] * queries), 1e-9);
  }
  EXPECT_TRUE(std::isnan(scores[2]));
  EXPECT_LT(ml::eval::best_setting(scores), 2);
}

}  // namespace
