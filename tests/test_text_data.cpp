// Text datasets for few-shot classification: category paths, loading with duplicate groups,
// class splits and N-way K-shot / many-way episodes over held-out classes, on hand-made CSVs
// and on the real banking77 and Flipkart files under ../shared/datasets when they are there.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "data/category_path.hpp"
#include "data/text_dataset.hpp"
#include "tasks/class_episode_sampler.hpp"
#include "tasks/class_split.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"

namespace {

using ml::data::CategoryPathSpec;
using ml::data::PathLevelMode;
using ml::data::TextDataset;
using ml::data::TextDatasetSpec;
using ml::data::TextLoadReport;
using ml::tasks::ClassEpisode;
using ml::tasks::ClassEpisodeSampler;
using ml::tasks::ClassEpisodeShape;
using ml::tasks::ClassSplitSpec;
using ml::testing::write_file;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ml::Error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------- category paths

TEST(CategoryPath, PlainAndJsonWrappedCellsGiveTheSameLevels) {
  const auto plain =
      ml::data::parse_category_path("Clothing >> Women's Clothing >> Shorts", " >> ");
  const auto wrapped =
      ml::data::parse_category_path(R"( ["Clothing >> Women's Clothing >> Shorts"] )", " >> ");
  ASSERT_EQ(plain.error, "");
  ASSERT_EQ(wrapped.error, "");
  EXPECT_EQ(plain.levels, (std::vector<std::string>{"Clothing", "Women's Clothing", "Shorts"}));
  EXPECT_EQ(wrapped.levels, plain.levels);
  // Escapes inside the JSON string are decoded; the separator is configurable.
  const auto slash = ml::data::parse_category_path(R"(["Home/Kitchen \"Pro\"/Pans"])", "/");
  ASSERT_EQ(slash.error, "");
  EXPECT_EQ(slash.levels, (std::vector<std::string>{"Home", "Kitchen \"Pro\"", "Pans"}));
}

TEST(CategoryPath, LevelAndPrefixSelectTheClass) {
  const std::vector<std::string> levels = {"A", "B", "C"};
  CategoryPathSpec spec;
  spec.level = 2;
  spec.mode = PathLevelMode::kPrefix;
  EXPECT_EQ(ml::data::path_class(levels, spec), "A >> B");
  spec.mode = PathLevelMode::kLevel;
  EXPECT_EQ(ml::data::path_class(levels, spec), "B");
  spec.level = 3;
  spec.mode = PathLevelMode::kPrefix;
  EXPECT_EQ(ml::data::path_class(levels, spec), "A >> B >> C");
  spec.level = 4;
  EXPECT_EQ(ml::data::path_class(levels, spec), "");
  const std::string reason = ml::data::path_too_short_reason(levels, spec);
  EXPECT_NE(reason.find("3 levels"), std::string::npos) << reason;
  EXPECT_NE(reason.find("prefix up to level 4"), std::string::npos) << reason;
}

TEST(CategoryPath, MalformedWrappersNameTheValueAndWhatWasExpected) {
  const std::map<std::string, std::string> cases = {
      {R"(["A >> B")", "is not valid JSON"},
      {R"([1])", "holds a number"},
      {R"([])", "empty JSON array"},
      {R"(["A >> B", "C"])", "array of 2 elements"},
      {R"([["A"]])", "holds a array"},
      {"A >>  >> C", "empty level 2"},
      {"A >> B >> ", "empty level 3"},
      {"A >> B >>", "empty level 3"},
      {">> A", "empty level 1"},
      {"A >>", "empty level 2"},
      {R"([""])", "empty category path"},
  };
  for (const auto& [cell, expected] : cases) {
    const auto parsed = ml::data::parse_category_path(cell, " >> ");
    EXPECT_TRUE(parsed.levels.empty()) << cell;
    EXPECT_NE(parsed.error.find(expected), std::string::npos) << cell << " -> " << parsed.error;
    if (cell.front() == '[' && cell != R"([""])") {
      EXPECT_NE(parsed.error.find("expected a JSON array holding one path string"),
                std::string::npos)
          << parsed.error;
      EXPECT_NE(parsed.error.find(cell.substr(0, 4)), std::string::npos) << parsed.error;
    }
  }
}

// ---------------------------------------------------------------- loading

TEST(TextDataset, NormalisationCollapsesSpacesAndAsciiCase) {
  EXPECT_EQ(ml::data::normalize_for_duplicates("  Hello \t\r\n World\xC2\xA0!  "), "hello world !");
  EXPECT_EQ(ml::data::normalize_for_duplicates("CAFÉ"), "cafÉ");  // ASCII letters only
  EXPECT_NE(ml::data::normalize_for_duplicates("a b"), ml::data::normalize_for_duplicates("ab"));
}

TEST(TextDataset, CrlfQuotedNewlinesAndDuplicateGroupsOfNormalisedText) {
  ml::testing::TempDir dir;
  const std::string path = dir.file("intents.csv");
  write_file(path,
             "text,category\r\n"
             "\"Where is my card?\r\nIt was sent, I think\",card_arrival\r\n"
             "Hello  World,greeting\r\n"
             "hello world,greeting\r\n"
             "hello world!,greeting\r\n"
             "\"where is my card?\r\nit was sent,   i think\",card_arrival\r\n"
             "top up failed,top_up_failed\r\n");
  TextDatasetSpec spec;
  spec.files = {path};
  spec.text_column = "text";
  spec.class_column = "category";
  TextLoadReport report;
  const TextDataset data = ml::data::load_text_dataset(spec, report);
  ASSERT_EQ(data.size(), 6u);
  EXPECT_EQ(report.rows_read, 6);
  EXPECT_EQ(report.rows_rejected, 0);
  EXPECT_EQ(data.texts[0], "Where is my card?\r\nIt was sent, I think");
  EXPECT_EQ(data.class_names,
            (std::vector<std::string>{"card_arrival", "greeting", "top_up_failed"}));
  EXPECT_EQ(data.label, (std::vector<std::int32_t>{0, 1, 1, 1, 0, 2}));
  EXPECT_EQ(data.group[1], data.group[2]);  // case and spaces
  EXPECT_NE(data.group[2], data.group[3]);  // "!" is text
  EXPECT_EQ(data.group[0], data.group[4]);  // line break inside quotes is whitespace
  EXPECT_EQ(data.groups, 4);
  EXPECT_EQ(data.source[5], path + ":9");  // the quoted line breaks count as lines

  const auto summary = ml::data::summarize(data);
  EXPECT_EQ(summary.rows, 6);
  ASSERT_EQ(summary.classes.size(), 3u);
  EXPECT_EQ(summary.classes[0].name, "greeting");
  EXPECT_EQ(summary.classes[0].rows, 3);
  EXPECT_EQ(summary.classes[0].groups, 2);
  EXPECT_EQ(summary.duplicate_groups, 2);
  EXPECT_EQ(summary.rows_in_duplicates, 2);
  EXPECT_EQ(summary.largest_group, 2);
  EXPECT_EQ(summary.group_sizes.at(1), 2);
  EXPECT_EQ(summary.group_sizes.at(2), 2);
  EXPECT_EQ(summary.groups_spanning_classes, 0);
}

TEST(TextDataset, PathColumnGivesClassesAndShortOrMalformedPathsAreBadRows) {
  ml::testing::TempDir dir;
  const std::string path = dir.file("products.csv");
  write_file(path,
             "id,title,tree\n"
             "1,Cycling Shorts,\"[\"\"Clothing >> Women's Clothing >> Shorts\"\"]\"\n"
             "2,Sofa Bed,\"[\"\"Furniture >> Living Room >> Sofa Beds\"\"]\"\n"
             "3,Just A Title,\"[\"\"Just A Title\"\"]\"\n"
             "4,Broken,\"[\"\"Clothing >> Men\"\n"
             "5,Plain Path,Clothing >> Women's Clothing >> Tops\n");
  TextDatasetSpec spec;
  spec.files = {path};
  spec.text_column = "title";
  spec.path_column = "tree";
  spec.path.level = 2;
  TextLoadReport report;
  const TextDataset data = ml::data::load_text_dataset(spec, report);
  EXPECT_EQ(report.rows_read, 5);
  EXPECT_EQ(report.rows_rejected, 2);
  EXPECT_EQ(report.rejected_by_reason.at("category path too short"), 1);
  EXPECT_EQ(report.rejected_by_reason.at("malformed category path"), 1);
  ASSERT_EQ(report.bad_rows.size(), 2u);
  EXPECT_EQ(report.bad_rows[0].line, 4u);
  EXPECT_NE(report.bad_rows[0].reason.find("column 'tree'"), std::string::npos);
  EXPECT_EQ(report.bad_rows[1].line, 5u);
  EXPECT_NE(report.bad_rows[1].reason.find("not valid JSON"), std::string::npos);
  EXPECT_EQ(data.class_names,
            (std::vector<std::string>{"Clothing >> Women's Clothing", "Furniture >> Living Room"}));
  EXPECT_EQ(data.label, (std::vector<std::int32_t>{0, 1, 0}));

  spec.path.mode = PathLevelMode::kLevel;
  spec.path.level = 3;
  TextLoadReport level_report;
  const TextDataset level3 = ml::data::load_text_dataset(spec, level_report);
  EXPECT_EQ(level3.class_names, (std::vector<std::string>{"Shorts", "Sofa Beds", "Tops"}));

  spec.bad_rows = ml::config::BadRows::kFail;
  spec.path.level = 2;
  TextLoadReport fail_report;
  const std::string message = error_of([&] { ml::data::load_text_dataset(spec, fail_report); });
  EXPECT_NE(message.find(path + ":4: column 'tree'"), std::string::npos) << message;
  EXPECT_NE(message.find("fewer than the 2"), std::string::npos) << message;
  EXPECT_NE(message.find("data.bad_rows = \"fail\""), std::string::npos) << message;
}

TEST(TextDataset, BackslashesAreContentSoJsonEscapesInPathsDecode) {
  // Flipkart's trees escape quotes inside the JSON string (\"); the reader's backslash doubling
  // for ids would break them, so text datasets read backslashes as written.
  ml::testing::TempDir dir;
  const std::string path = dir.file("escaped.csv");
  write_file(path,
             "title,tree\n"
             "\"Diary \"\"TAKING ACTION\"\" \\ B5\","
             "\"[\"\"Stationery >> Diaries >> Diary \\\"\"TAKI...\"\"]\"\n");
  TextDatasetSpec spec;
  spec.files = {path};
  spec.text_column = "title";
  spec.path_column = "tree";
  spec.path.level = 3;
  spec.path.mode = PathLevelMode::kLevel;
  TextLoadReport report;
  const TextDataset data = ml::data::load_text_dataset(spec, report);
  ASSERT_EQ(report.rows_rejected, 0) << report.bad_rows.front().reason;
  EXPECT_EQ(data.texts[0], "Diary \"TAKING ACTION\" \\ B5");
  EXPECT_EQ(data.class_names[0], "Diary \"TAKI...");
}

TEST(TextDataset, GroupingColumnJoinsVariantsAndEmptyKeysFallBackToText) {
  ml::testing::TempDir dir;
  const std::string path = dir.file("variants.csv");
  write_file(path,
             "text,label,title\n"
             "Red shirt size M,shirts,Shirt A\n"
             "Red shirt size L,shirts,Shirt A\n"
             "blue shirt,shirts,\n"
             "Blue  Shirt,shirts,\n"
             "Blue shirt,shirts,Shirt B\n");
  TextDatasetSpec spec;
  spec.files = {path};
  spec.text_column = "text";
  spec.class_column = "label";
  spec.group_column = "title";
  TextLoadReport report;
  const TextDataset data = ml::data::load_text_dataset(spec, report);
  ASSERT_EQ(data.size(), 5u);
  EXPECT_EQ(data.group[0], data.group[1]);
  EXPECT_EQ(data.group[2], data.group[3]);
  EXPECT_NE(data.group[3], data.group[4]);  // a key never joins a text-only group
  EXPECT_EQ(data.groups, 3);
}

TEST(TextDataset, MissingColumnsAndAmbiguousSpecsAreRefused) {
  ml::testing::TempDir dir;
  const std::string path = dir.file("t.csv");
  write_file(path, "text,category\nhello,greeting\n");
  TextDatasetSpec spec;
  spec.files = {path};
  spec.text_column = "txet";
  spec.class_column = "category";
  TextLoadReport report;
  std::string message = error_of([&] { ml::data::load_text_dataset(spec, report); });
  EXPECT_NE(message.find("did you mean 'text'"), std::string::npos) << message;
  EXPECT_NE(message.find("its columns are: text, category"), std::string::npos) << message;
  spec.text_column = "TEXT";  // case and padding are forgiven
  EXPECT_EQ(ml::data::load_text_dataset(spec, report).size(), 1u);
  spec.path_column = "category";
  message = error_of([&] { ml::data::load_text_dataset(spec, report); });
  EXPECT_NE(message.find("not both"), std::string::npos) << message;
}

TEST(TextDataset, EveryRowRejectedIsAnErrorThatNamesTheReasons) {
  ml::testing::TempDir dir;
  const std::string path = dir.file("t.csv");
  write_file(path, "text,category\n,greeting\nhello,\n");
  TextDatasetSpec spec;
  spec.files = {path};
  spec.text_column = "text";
  spec.class_column = "category";
  TextLoadReport report;
  const std::string message = error_of([&] { ml::data::load_text_dataset(spec, report); });
  EXPECT_NE(message.find("empty text: 1"), std::string::npos) << message;
  EXPECT_NE(message.find("empty class: 1"), std::string::npos) << message;
  EXPECT_NE(message.find(path + ":2"), std::string::npos) << message;
}

// ---------------------------------------------------------------- class splits

std::vector<std::string> class_names(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back("class_" + std::to_string(i));
  return names;
}

std::vector<std::string> names_of(const std::vector<std::int32_t>& ids,
                                  const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto id : ids) out.push_back(names[static_cast<std::size_t>(id)]);
  return out;
}

TEST(ClassSplit, SeededFractionsGiveRoundedCountsIndependentOfClassOrder) {
  const auto names = class_names(77);
  ClassSplitSpec spec;
  spec.validation_fraction = 0.1;
  spec.new_fraction = 0.25;
  spec.seed = 5;
  const auto split = ml::tasks::split_classes(names, spec);
  EXPECT_EQ(split.new_classes.size(), 19u);  // round(77 * 0.25)
  EXPECT_EQ(split.validation.size(), 8u);    // round(7.7)
  EXPECT_EQ(split.train.size(), 50u);
  std::set<std::int32_t> all;
  for (const auto* list : {&split.train, &split.validation, &split.new_classes})
    all.insert(list->begin(), list->end());
  EXPECT_EQ(all.size(), 77u);

  auto reversed = names;
  std::reverse(reversed.begin(), reversed.end());
  const auto split_reversed = ml::tasks::split_classes(reversed, spec);
  EXPECT_EQ(names_of(split_reversed.new_classes, reversed), names_of(split.new_classes, names));
  EXPECT_EQ(names_of(split_reversed.validation, reversed), names_of(split.validation, names));

  spec.seed = 6;
  EXPECT_NE(names_of(ml::tasks::split_classes(names, spec).new_classes, names),
            names_of(split.new_classes, names));
}

TEST(ClassSplit, ExplicitListsNameUnknownAndTwiceListedClasses) {
  const std::vector<std::string> names = {"card_arrival", "top_up_failed", "greeting", "refund"};
  ClassSplitSpec spec;
  spec.new_classes = {"refund"};
  spec.validation = {"greeting"};
  auto split = ml::tasks::split_classes(names, spec);
  EXPECT_EQ(names_of(split.train, names),
            (std::vector<std::string>{"card_arrival", "top_up_failed"}));
  EXPECT_EQ(names_of(split.new_classes, names), (std::vector<std::string>{"refund"}));
  EXPECT_TRUE(split.unassigned.empty());

  spec.train = {"card_arrival"};
  split = ml::tasks::split_classes(names, spec);
  EXPECT_EQ(names_of(split.unassigned, names), (std::vector<std::string>{"top_up_failed"}));

  spec.new_classes = {"refnud"};
  std::string message = error_of([&] { ml::tasks::split_classes(names, spec); });
  EXPECT_NE(message.find("new class list names 'refnud'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'refund'"), std::string::npos) << message;

  spec.new_classes = {"greeting"};
  message = error_of([&] { ml::tasks::split_classes(names, spec); });
  EXPECT_NE(message.find("'greeting' is in both the validation and the new"), std::string::npos)
      << message;
}

TEST(ClassSplit, FractionsThatLeaveNoTrainingClassAreRefused) {
  ClassSplitSpec spec;
  spec.validation_fraction = 0.5;
  spec.new_fraction = 0.5;
  EXPECT_THROW(ml::tasks::split_classes(class_names(10), spec), ml::ConfigError);
  spec.new_fraction = 1.5;
  EXPECT_THROW(ml::tasks::split_classes(class_names(10), spec), ml::ConfigError);
}

// ---------------------------------------------------------------- episodes

// Class c has 3 + c groups of 1-3 rows each (so class 0 has 3 groups); group ids and rows are
// interleaved across classes so that file order means nothing. With `mixed`, one extra group
// holds rows of classes 4 and 5.
TextDataset grouped_dataset(int n_classes, bool mixed) {
  TextDataset data;
  for (int c = 0; c < n_classes; ++c) data.class_names.push_back("c" + std::to_string(c));
  std::int32_t next_group = 0;
  for (int round = 0; round < 3 + n_classes; ++round)
    for (int c = 0; c < n_classes; ++c) {
      if (round >= 3 + c) continue;
      const std::int32_t g = next_group++;
      for (int copy = 0; copy <= (round + c) % 3; ++copy) {
        data.texts.push_back("c" + std::to_string(c) + " g" + std::to_string(g));
        data.label.push_back(c);
        data.group.push_back(g);
        data.source.push_back("");
      }
    }
  if (mixed) {
    const std::int32_t g = next_group++;
    for (const int c : {4, 5, 4}) {
      data.texts.push_back("same text");
      data.label.push_back(c);
      data.group.push_back(g);
      data.source.push_back("");
    }
  }
  data.groups = next_group;
  return data;
}

std::vector<std::int32_t> all_classes(const TextDataset& data) {
  std::vector<std::int32_t> ids(data.class_names.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(i);
  return ids;
}

void expect_no_group_spans(const TextDataset& data, const ClassEpisode& e) {
  std::set<std::int32_t> support_groups;
  for (const auto row : e.support) support_groups.insert(data.group[row]);
  for (const auto row : e.query)
    EXPECT_EQ(support_groups.count(data.group[row]), 0u) << "row " << row;
}

TEST(ClassEpisodeSampler, EpisodesAreNWayKShotWithLabelsRemapped) {
  const TextDataset data = grouped_dataset(8, false);
  ClassEpisodeSampler sampler(data, all_classes(data), "train", {3, 2, 3}, 11);
  // Class c has 3 + c groups; K + Q = 5 leaves out classes 0 and 1, reported with counts.
  ASSERT_EQ(sampler.short_classes().size(), 2u);
  EXPECT_EQ(sampler.short_classes()[0].name, "c0");
  EXPECT_EQ(sampler.short_classes()[0].groups, 3);
  EXPECT_EQ(sampler.short_classes()[1].groups, 4);
  EXPECT_EQ(sampler.eligible().size(), 6u);
  for (std::uint64_t index = 0; index < 50; ++index) {
    const ClassEpisode e = sampler.sample(index);
    ASSERT_EQ(e.classes.size(), 3u);
    EXPECT_EQ(std::set<std::int32_t>(e.classes.begin(), e.classes.end()).size(), 3u);
    ASSERT_EQ(e.support.size(), 6u);
    ASSERT_EQ(e.query.size(), 9u);
    std::map<std::int32_t, int> support_count, query_count;
    for (std::size_t i = 0; i < e.support.size(); ++i) {
      ++support_count[e.support_labels[i]];
      EXPECT_EQ(data.label[e.support[i]], e.classes[e.support_labels[i]]);
    }
    for (std::size_t i = 0; i < e.query.size(); ++i) {
      ++query_count[e.query_labels[i]];
      EXPECT_EQ(data.label[e.query[i]], e.classes[e.query_labels[i]]);
    }
    for (std::int32_t label = 0; label < 3; ++label) {
      EXPECT_EQ(support_count[label], 2);
      EXPECT_EQ(query_count[label], 3);
    }
    for (const auto c : e.classes) EXPECT_GE(c, 2);  // never a short class
    // K-shot is K distinct groups.
    std::set<std::int32_t> groups;
    for (const auto row : e.support) groups.insert(data.group[row]);
    EXPECT_EQ(groups.size(), 6u);
    expect_no_group_spans(data, e);
  }
}

TEST(ClassEpisodeSampler, EpisodeIsAPureFunctionOfSeedSplitAndIndex) {
  const TextDataset data = grouped_dataset(8, false);
  const ClassEpisodeShape shape{3, 2, 2};
  ClassEpisodeSampler a(data, all_classes(data), "train", shape, 3);
  ClassEpisodeSampler b(data, all_classes(data), "train", shape, 3);
  const ClassEpisode first = a.sample(7);
  for (std::uint64_t i = 0; i < 5; ++i) b.sample(i);
  const ClassEpisode again = b.sample(7);
  EXPECT_EQ(first.classes, again.classes);
  EXPECT_EQ(first.support, again.support);
  EXPECT_EQ(first.query, again.query);
  EXPECT_EQ(first.query_labels, again.query_labels);

  int differ_index = 0, differ_split = 0, differ_seed = 0;
  ClassEpisodeSampler other_split(data, all_classes(data), "validation", shape, 3);
  ClassEpisodeSampler other_seed(data, all_classes(data), "train", shape, 4);
  for (std::uint64_t i = 0; i < 10; ++i) {
    differ_index += a.sample(i).support != a.sample(i + 1).support;
    differ_split += a.sample(i).support != other_split.sample(i).support;
    differ_seed += a.sample(i).support != other_seed.sample(i).support;
  }
  EXPECT_GE(differ_index, 8);
  EXPECT_GE(differ_split, 8);
  EXPECT_GE(differ_seed, 8);
}

TEST(ClassEpisodeSampler, AGroupWithTwoClassesNeverCountsAndNeverSpansSupportAndQuery) {
  const TextDataset data = grouped_dataset(6, true);
  // Classes 4 and 5 share the "same text" group: it gives them no usable group, so with
  // K + Q = 8, class 5 (8 pure groups) is eligible and class 4 (7) is short.
  ClassEpisodeSampler sampler(data, all_classes(data), "train", {2, 3, 5}, 1);
  ASSERT_EQ(sampler.eligible(), (std::vector<std::int32_t>{5}));
  EXPECT_EQ(sampler.short_classes().back().name, "c4");
  EXPECT_EQ(sampler.short_classes().back().groups, 7);
  const std::string why = sampler.check();
  EXPECT_NE(why.find("give 1 with at least 8 distinct texts"), std::string::npos) << why;
  EXPECT_NE(why.find("'c0' (3)"), std::string::npos) << why;
  EXPECT_THROW(sampler.sample(0), ml::DataError);

  ClassEpisodeSampler loose(data, all_classes(data), "train", {2, 2, 1}, 1);
  const std::int32_t shared = data.group.back();
  int shared_in_support = 0;
  for (std::uint64_t index = 0; index < 300; ++index) {
    const ClassEpisode e = loose.sample(index);
    expect_no_group_spans(data, e);
    for (const auto row : e.support) shared_in_support += data.group[row] == shared;
  }
  EXPECT_GT(shared_in_support, 0);  // the shared group is drawn, just never on both sides
}

TEST(ClassEpisodeSampler, ManyWayTaskHoldsEveryClassWithTheRestAsQuery) {
  const TextDataset data = grouped_dataset(6, false);
  ClassEpisodeSampler sampler(data, all_classes(data), "new", {5, 2, ml::tasks::kQueryRest}, 9);
  ASSERT_EQ(sampler.eligible().size(), 6u);  // 3 groups each at least: K + 1
  const ClassEpisode e = sampler.many_way();
  EXPECT_EQ(e.classes, sampler.eligible());
  EXPECT_EQ(e.support.size(), 12u);
  // Every group outside the support gives one query row: 3 + 4 + ... + 8 groups in all.
  EXPECT_EQ(e.query.size(), static_cast<std::size_t>(33 - 12));
  std::set<std::int32_t> seen;
  for (const auto row : e.support) seen.insert(data.group[row]);
  for (const auto row : e.query) seen.insert(data.group[row]);
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(data.groups));
  expect_no_group_spans(data, e);

  ClassEpisodeSampler fixed(data, all_classes(data), "new", {5, 1, 2}, 9);
  const ClassEpisode f = fixed.many_way(3);
  EXPECT_EQ(f.support.size(), 6u);
  EXPECT_EQ(f.query.size(), 12u);
  EXPECT_THROW(sampler.sample(0), ml::DataError);  // N-way needs a query size
}

TEST(ClassEpisodeSampler, SplitSummaryCountsEachPartAndNamesShortClasses) {
  const TextDataset data = grouped_dataset(6, false);
  ml::tasks::ClassSplit split;
  split.train = {2, 3, 4, 5};
  split.validation = {0, 1};
  const auto summaries = ml::tasks::summarize_split(data, split, {2, 2, 3});
  ASSERT_EQ(summaries.size(), 3u);
  const auto& train = summaries[0];
  EXPECT_EQ(train.classes, 4);
  EXPECT_EQ(train.groups, 5 + 6 + 7 + 8);
  EXPECT_EQ(train.eligible, 4);
  EXPECT_EQ(train.problem, "");
  std::int64_t rows = 0;
  for (const auto label : data.label) rows += label >= 2;
  EXPECT_EQ(train.rows, rows);
  const auto& validation = summaries[1];
  EXPECT_EQ(validation.eligible, 0);
  ASSERT_EQ(validation.short_classes.size(), 2u);
  EXPECT_NE(validation.problem.find("the validation classes give 0"), std::string::npos)
      << validation.problem;
  EXPECT_EQ(summaries[2].classes, 0);
  EXPECT_NE(summaries[2].problem, "");
}

// ---------------------------------------------------------------- the real datasets

std::string shared_dataset(const std::string& relative) {
  return std::string(ML_SHARED_DIR) + "/datasets/" + relative;
}

TEST(TextDatasetReal, Banking77HasSeventySevenIntentsAndEpisodesNeverLeakText) {
  const std::string path = shared_dataset("banking77/train.csv");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not there";
  TextDatasetSpec spec;
  spec.files = {path};
  spec.text_column = "text";
  spec.class_column = "category";
  TextLoadReport report;
  const TextDataset data = ml::data::load_text_dataset(spec, report);
  EXPECT_EQ(report.rows_read, 10003);
  EXPECT_EQ(report.rows_rejected, 0);
  EXPECT_EQ(data.class_names.size(), 77u);
  EXPECT_GE(data.class_id("card_arrival"), 0);
  // Some utterances hold line breaks inside quotes: the reader keeps them in the text.
  EXPECT_TRUE(std::any_of(data.texts.begin(), data.texts.end(),
                          [](const std::string& t) { return t.find('\n') != t.npos; }));

  ClassSplitSpec split_spec;
  split_spec.seed = 1;
  split_spec.validation_fraction = 0.2;
  split_spec.new_fraction = 0.2;
  const auto split = ml::tasks::split_classes(data.class_names, split_spec);
  EXPECT_EQ(split.new_classes.size(), 15u);
  EXPECT_EQ(split.validation.size(), 15u);
  EXPECT_EQ(split.train.size(), 47u);
  ClassEpisodeSampler sampler(data, split.train, "train", {5, 5, 10}, 1);
  EXPECT_TRUE(sampler.short_classes().empty());
  for (std::uint64_t index = 0; index < 300; ++index) {
    const ClassEpisode e = sampler.sample(index);
    ASSERT_EQ(e.query.size(), 50u);
    std::set<std::string> support_texts;
    for (const auto row : e.support) {
      support_texts.insert(ml::data::normalize_for_duplicates(data.texts[row]));
      EXPECT_TRUE(std::binary_search(split.train.begin(), split.train.end(), data.label[row],
                                     [&](std::int32_t a, std::int32_t b) {
                                       return data.class_names[a] < data.class_names[b];
                                     }));
    }
    for (const auto row : e.query)
      ASSERT_EQ(support_texts.count(ml::data::normalize_for_duplicates(data.texts[row])), 0u);
  }
  ClassEpisodeSampler held_out(data, split.new_classes, "new", {5, 5, ml::tasks::kQueryRest}, 1);
  const ClassEpisode all = held_out.many_way();
  EXPECT_EQ(all.classes.size(), 15u);
  std::int64_t rows_of_new = 0;
  for (const auto c : split.new_classes)
    rows_of_new += std::count(data.label.begin(), data.label.end(), c);
  // One row per group: the query falls short of the rows only by the duplicates.
  EXPECT_LE(static_cast<std::int64_t>(all.support.size() + all.query.size()), rows_of_new);
  EXPECT_GT(static_cast<double>(all.support.size() + all.query.size()), 0.95 * rows_of_new);
}

TEST(TextDatasetReal, FlipkartLevelTwoPrefixesFromJsonWrappedTrees) {
  const std::string path = shared_dataset("flipkart-products/flipkart_products.csv");
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not there";
  TextDatasetSpec spec;
  spec.files = {path};
  spec.text_column = "product_name";
  spec.path_column = "product_category_tree";
  spec.path.level = 2;
  TextLoadReport report;
  const TextDataset data = ml::data::load_text_dataset(spec, report);
  EXPECT_EQ(report.rows_read, 20000);
  // The README: 328 rows have a one-level tree (just the title), which has no level 2.
  EXPECT_EQ(report.rejected_by_reason.at("category path too short"), 328);
  EXPECT_EQ(report.rows_rejected, 328);  // the 15 trees with JSON escapes (\") parse
  EXPECT_EQ(data.size(), 20000u - 328u);
  EXPECT_EQ(data.class_names.size(), 221u);  // the README's level-2 count
  EXPECT_GE(data.class_id("Clothing >> Women's Clothing"), 0);
  for (const auto& name : data.class_names) {
    EXPECT_EQ(name.find('['), std::string::npos) << name;
    EXPECT_NE(name.find(" >> "), std::string::npos) << name;
  }
  const auto summary = ml::data::summarize(data);
  EXPECT_GT(summary.duplicate_groups, 1000);  // size and colour variants repeat a title
  EXPECT_GT(summary.largest_group, 50);

  ClassSplitSpec split_spec;
  split_spec.seed = 3;
  const auto split = ml::tasks::split_classes(data.class_names, split_spec);
  ClassEpisodeSampler sampler(data, split.train, "train", {5, 5, 5}, 3);
  // Many level-2 categories are tiny: they are reported, not dropped silently.
  EXPECT_FALSE(sampler.short_classes().empty());
  EXPECT_GE(sampler.eligible().size(), 5u);
  for (std::uint64_t index = 0; index < 200; ++index)
    expect_no_group_spans(data, sampler.sample(index));
}

}  // namespace
