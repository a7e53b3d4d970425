// Tests of display-width alignment: UTF-8 names in any script line up in the CLI's tables.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "inference/adaptation.hpp"
#include "util/text_table.hpp"

namespace {

using ml::Align;
using ml::display_width;

TEST(DisplayWidth, CountsTerminalColumnsNotBytes) {
  EXPECT_EQ(display_width(""), 0u);
  EXPECT_EQ(display_width("Frozen Pizza"), 12u);
  EXPECT_EQ(display_width("±"), 1u);           // two bytes, one column
  EXPECT_EQ(display_width("Cafe\u0301"), 4u);  // a combining accent takes no column
  EXPECT_EQ(display_width("冷凍ピザ"), 8u);    // East Asian wide: two columns each
  EXPECT_EQ(display_width("\xff"
                          "a"),
            2u);  // an invalid byte counts one
}

TEST(AlignColumns, AlignsUtf8NamesByDisplayWidth) {
  const std::vector<std::vector<std::string>> rows = {
      {"task", "n"}, {"Café", "5"}, {"冷凍ピザ", "10"}, {"Cafe\u0301s", "7"}};
  const auto lines = ml::align_columns(rows, {Align::kLeft, Align::kRight});
  ASSERT_EQ(lines.size(), 4u);
  // Every line is as wide as the widest: "冷凍ピザ" (8 columns) + gap (2) + "10" (2).
  for (const auto& line : lines) EXPECT_EQ(display_width(line), 12u) << line;
  EXPECT_EQ(lines[1], "Café       5");
  EXPECT_EQ(ml::pad_to_width("冷凍", 6), "冷凍  ");
  EXPECT_EQ(ml::pad_to_width("7", 3, Align::kRight), "  7");
  EXPECT_EQ(ml::pad_to_width("longer", 3), "longer");
}

TEST(AlignColumns, AdaptTableLinesUpAUtf8TaskName) {
  ml::inference::AdaptSummary s;
  s.source_checkpoint = "runs/x/checkpoints/best.mlckpt";
  s.algorithm = ml::config::Algorithm::kMaml;
  s.label_kind = ml::tasks::LabelKind::kBinary;
  s.out_dir = "runs/x/adapted";
  for (const std::string name : {"冷凍ピザ", "Pizza"}) {
    ml::inference::TaskAdaptation t;
    t.task = name;
    t.role = "new";
    t.support_size = 10;
    t.query_size = 20;
    t.before.auc = 0.5;
    t.after.auc = 0.75;
    t.adapt_ms = 1.5;
    s.tasks.push_back(t);
  }
  const std::string table = ml::inference::format_table(s);
  // The role column starts at the same display column on the header and on both task rows.
  std::vector<std::size_t> role_columns;
  std::size_t start = 0;
  for (std::size_t end; (end = table.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = table.substr(start, end - start);
    for (const char* role : {"role", "new"})
      if (const auto at = line.find(std::string("  ") + role); at != std::string::npos) {
        role_columns.push_back(display_width(line.substr(0, at)));
        break;
      }
  }
  ASSERT_EQ(role_columns.size(), 3u) << table;
  EXPECT_EQ(role_columns[0], role_columns[1]) << table;
  EXPECT_EQ(role_columns[0], role_columns[2]) << table;
}

}  // namespace
