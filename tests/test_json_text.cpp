// Tests for util/json_text: JSON from users' files parsed with a position for every problem and
// a depth limit instead of a stack overflow.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/json_text.hpp"

namespace {

using ml::parse_json_text;

// "line L, column C" as nlohmann's own parse_error message gives it.
std::string nlohmann_position(const std::string& text) {
  try {
    const auto parsed = nlohmann::json::parse(text);
    ADD_FAILURE() << "parsed: " << parsed.dump();
  } catch (const nlohmann::json::parse_error& e) {
    const std::string what = e.what();
    const auto at = what.find("line ");
    return what.substr(at, what.find(':', at) - at);
  }
  return "";
}

TEST(JsonText, SyntaxErrorsKeepNlohmannsLineAndColumn) {
  for (const std::string text : {"{\"seed\": 1,\n \"data\": {", "{\n  \"a\": 1,\n  \"b\": ]\n}", "",
                                 "[1, 2,,]", "{\"a\": 1} trailing", "{\n\n\n  \"x\": tru }"}) {
    SCOPED_TRACE(text);
    const auto parsed = parse_json_text(text);
    ASSERT_FALSE(parsed.ok());
    EXPECT_FALSE(parsed.too_deep);
    EXPECT_EQ(parsed.where, nlohmann_position(text));
    EXPECT_EQ(parsed.problem.rfind("not valid JSON (", 0), 0u) << parsed.problem;
    EXPECT_EQ(parsed.problem.find("[json.exception"), std::string::npos) << parsed.problem;
    EXPECT_EQ(parsed.error(), parsed.where + ": " + parsed.problem);
  }
}

TEST(JsonText, DepthLimitCountsArraysAndObjectsAndSkipsStrings) {
  const std::string ok = std::string(4, '[') + std::string(4, ']');
  EXPECT_TRUE(parse_json_text(ok, 4).ok());
  EXPECT_EQ(parse_json_text(ok, 4).value, nlohmann::json::parse(ok));
  // Brackets inside strings are no nesting; the third level opens at line 2, column 8.
  const auto deep = parse_json_text("{\"[[[\": \"{{\",\n \"b\": [{\"c\": 1}]}", 2);
  ASSERT_FALSE(deep.ok());
  EXPECT_TRUE(deep.too_deep);
  EXPECT_EQ(deep.error(), "line 2, column 8: nested deeper than 2 levels");
  // Far past the limit it is still an error, not a crash.
  const auto huge = parse_json_text(std::string(200000, '['));
  EXPECT_TRUE(huge.too_deep);
  EXPECT_EQ(huge.where, "line 1, column 101");
}

TEST(JsonText, PositionsCountLinesAndBytes) {
  const std::string text = "ab\ncd\n\nx";
  EXPECT_EQ(ml::text_position(text, 0), "line 1, column 1");
  EXPECT_EQ(ml::text_position(text, 2), "line 1, column 3");  // the newline ends line 1
  EXPECT_EQ(ml::text_position(text, 4), "line 2, column 2");
  EXPECT_EQ(ml::text_position(text, 7), "line 4, column 1");
}

}  // namespace
