// Tests of the number and count wording shared by logs and tables: learning rates in their
// short form, plurals, and progress lines with whole counts.
#include <gtest/gtest.h>

#include <string>

#include "util/progress.hpp"
#include "util/strings.hpp"

namespace {

TEST(ShortNumber, WritesSettingsAsPeopleWouldTypeThem) {
  EXPECT_EQ(ml::short_number(0.3 / 3), "0.1");  // 0.09999999999999999 in binary
  EXPECT_EQ(ml::short_number(0.3 * 3), "0.9");  // 0.8999999999999999
  EXPECT_EQ(ml::short_number(0.001), "0.001");
  EXPECT_EQ(ml::short_number(1e-5), "1e-05");
  EXPECT_EQ(ml::short_number(300), "300");
  EXPECT_EQ(ml::short_number(0.25), "0.25");
}

TEST(CountOf, IsSingularOnlyForOne) {
  EXPECT_EQ(ml::count_of(1, "step"), "1 step");
  EXPECT_EQ(ml::count_of(0, "step"), "0 steps");
  EXPECT_EQ(ml::count_of(20, "step"), "20 steps");
  EXPECT_EQ(ml::count_of(6, "validation task"), "6 validation tasks");
}

TEST(ProgressText, CountsWholeThingsWithoutDecimals) {
  EXPECT_EQ(ml::progress_text("meta-training maml", "iterations", 3, 300, 1.5),
            "meta-training maml: 3 / 300 iterations (1%), 2.0 iterations/s, ETA 2m29s");
  // Megabytes are not whole: one decimal, as before.
  EXPECT_EQ(ml::progress_text("reading purchase log", "MB", 12.5, 80.0, 2.5),
            "reading purchase log: 12.5 / 80.0 MB (16%), 5.0 MB/s, ETA 0m14s");
  EXPECT_EQ(ml::progress_text("episodes", "episodes", 40, 0, 4),
            "episodes: 40 episodes, 10.0 episodes/s");
}

}  // namespace
