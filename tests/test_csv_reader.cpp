// Tests for the streaming CSV reader: every RFC 4180 edge case the shop exports produce, the
// delimiter detection rules, malformed-record reporting, and records crossing the internal
// read buffer (the buffer size is private, so the tests use files far larger than it).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "data/csv_reader.hpp"
#include "util/errors.hpp"

#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using ml::data::CsvOptions;
using ml::data::CsvReader;
using ml::data::CsvRecord;

// Matches CsvReader::kBufferSize; only used to place records across buffer boundaries. If the
// reader's buffer changes size the tests still check correctness, just at other offsets.
constexpr std::size_t kReaderBuffer = std::size_t{1} << 20;

// One fresh directory per test, removed afterwards, so parallel ctest runs do not collide.
class CsvReaderTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content) {
    const std::string p = temp_.file(name);
    ml::testing::write_file(p, content);
    EXPECT_TRUE(fs::is_regular_file(p)) << p;
    return p;
  }

  ml::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};
using CsvDetectTest = CsvReaderTest;

using Fields = std::vector<std::string>;

Fields to_strings(const CsvRecord& r) {
  return Fields(r.fields.begin(), r.fields.end());
}

// Everything a test wants to compare about one record, owned.
struct Row {
  Fields fields;
  std::size_t line;
  std::string error;
};

std::vector<Row> read_all(CsvReader& reader) {
  std::vector<Row> rows;
  CsvRecord r;
  while (reader.next(r)) rows.push_back({to_strings(r), r.line, r.error});
  return rows;
}

CsvOptions opts(char delimiter, bool header) {
  CsvOptions o;
  o.delimiter = delimiter;
  o.header = header;
  return o;
}

// --- header handling -------------------------------------------------------------------------

TEST_F(CsvReaderTest, HeaderIsConsumedAndDataStartsAfterIt) {
  const auto path = write("h.csv", "user,item,ts\nu1,i1,10\nu2,i2,20\n");
  CsvReader reader(path, opts(0, true));
  EXPECT_EQ(reader.header(), (Fields{"user", "item", "ts"}));
  EXPECT_EQ(reader.width(), 3u);
  EXPECT_EQ(reader.path(), path);
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"u1", "i1", "10"}));
  EXPECT_EQ(rows[0].line, 2u);
  EXPECT_EQ(rows[1].fields, (Fields{"u2", "i2", "20"}));
  EXPECT_EQ(rows[1].line, 3u);
  EXPECT_TRUE(rows[0].error.empty());
}

TEST_F(CsvReaderTest, HeaderlessReturnsFirstRecordAsData) {
  const auto path = write("nh.csv", "u1,i1\nu2,i2,extra\n");
  CsvReader reader(path, opts(0, false));
  EXPECT_TRUE(reader.header().empty());
  EXPECT_EQ(reader.width(), 2u);  // known before the first next()
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"u1", "i1"}));
  EXPECT_EQ(rows[0].line, 1u);
  // Ragged rows are returned as they are; the caller decides about width mismatches.
  EXPECT_EQ(rows[1].fields, (Fields{"u2", "i2", "extra"}));
  EXPECT_EQ(reader.width(), 2u);
}

TEST_F(CsvReaderTest, HeaderKeepsSurroundingSpaces) {
  const auto path = write("sp.csv", " user , item\n1,2\n");
  CsvReader reader(path, opts(',', true));
  EXPECT_EQ(reader.header(), (Fields{" user ", " item"}));
}

TEST_F(CsvReaderTest, HeaderOnlyFileHasNoRecords) {
  const auto path = write("ho.csv", "a;b;c\n");
  CsvReader reader(path, opts(0, true));
  EXPECT_EQ(reader.delimiter(), ';');
  EXPECT_EQ(reader.header(), (Fields{"a", "b", "c"}));
  EXPECT_EQ(reader.width(), 3u);
  CsvRecord r;
  EXPECT_FALSE(reader.next(r));
  EXPECT_FALSE(reader.next(r));  // stays at end
}

TEST_F(CsvReaderTest, EmptyFile) {
  const auto path = write("empty.csv", "");
  CsvReader reader(path, opts(0, true));
  EXPECT_TRUE(reader.header().empty());
  EXPECT_EQ(reader.width(), 0u);
  EXPECT_EQ(reader.delimiter(), ',');
  CsvRecord r;
  EXPECT_FALSE(reader.next(r));
  EXPECT_EQ(reader.bytes_read(), 0u);
}

TEST_F(CsvReaderTest, FileOfOnlyEmptyLinesHasNoRecords) {
  const auto path = write("blank.csv", "\n\r\n\n");
  CsvReader reader(path, opts(0, false));
  EXPECT_EQ(reader.width(), 0u);
  CsvRecord r;
  EXPECT_FALSE(reader.next(r));
}

TEST_F(CsvReaderTest, MalformedHeaderThrowsDataError) {
  const auto path = write("badh.csv", "\"user,item\nu1,i1\n");
  try {
    CsvReader reader(path, opts(',', true));
    FAIL() << "expected DataError";
  } catch (const ml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unclosed quote"), std::string::npos) << e.what();
  }
}

// --- delimiter detection ---------------------------------------------------------------------

TEST_F(CsvDetectTest, Comma) {
  CsvReader reader(write("c.csv", "a,b,c\n1,2,3\n"), opts(0, true));
  EXPECT_EQ(reader.delimiter(), ',');
  EXPECT_EQ(reader.header(), (Fields{"a", "b", "c"}));
}

TEST_F(CsvDetectTest, Tab) {
  CsvReader reader(write("t.tsv", "a\tb,x\tc\n1\t2\t3\n"), opts(0, true));
  EXPECT_EQ(reader.delimiter(), '\t');
  EXPECT_EQ(reader.header(), (Fields{"a", "b,x", "c"}));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"1", "2", "3"}));
}

TEST_F(CsvDetectTest, Semicolon) {
  // European exports: ';' separates, ',' is the decimal mark.
  CsvReader reader(write("s.csv", "price;qty\n1,5;2\n"), opts(0, true));
  EXPECT_EQ(reader.delimiter(), ';');
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"1,5", "2"}));
}

TEST_F(CsvDetectTest, Space) {
  CsvReader reader(write("sp.txt", "u i  t\n1 2  3\n"), opts(0, false));
  EXPECT_EQ(reader.delimiter(), ' ');
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  // A single-character delimiter: runs of spaces are not collapsed.
  EXPECT_EQ(rows[0].fields, (Fields{"u", "i", "", "t"}));
  EXPECT_EQ(rows[1].fields, (Fields{"1", "2", "", "3"}));
}

TEST_F(CsvDetectTest, SpaceLosesToAnyOtherCandidate) {
  // Three spaces against one comma: the comma still wins.
  CsvReader reader(write("x.csv", "first name,last name is here\n"), opts(0, false));
  EXPECT_EQ(reader.delimiter(), ',');
}

TEST_F(CsvDetectTest, HighestCountWins) {
  CsvReader reader(write("x.csv", "a;b;c,d\n"), opts(0, false));
  EXPECT_EQ(reader.delimiter(), ';');
  CsvReader tabs(write("y.csv", "a\tb\tc;d,e\n"), opts(0, false));
  EXPECT_EQ(tabs.delimiter(), '\t');
}

TEST_F(CsvDetectTest, TieBrokenInOrderCommaTabSemicolon) {
  EXPECT_EQ(CsvReader(write("a.csv", "a;b,c\n"), opts(0, false)).delimiter(), ',');
  EXPECT_EQ(CsvReader(write("b.csv", "a;b\tc\n"), opts(0, false)).delimiter(), '\t');
  EXPECT_EQ(CsvReader(write("c.csv", "a\tb,c\n"), opts(0, false)).delimiter(), ',');
}

TEST_F(CsvDetectTest, Pipe) {
  CsvReader reader(write("p.csv", "user|item|title\nu1|i1|salt, sea\n"), opts(0, true));
  EXPECT_EQ(reader.delimiter(), '|');
  EXPECT_TRUE(reader.delimiter_detected());
  EXPECT_EQ(reader.header(), (Fields{"user", "item", "title"}));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"u1", "i1", "salt, sea"}));
  // The most frequent candidate wins, here the comma.
  EXPECT_EQ(CsvReader(write("q.csv", "a|b,c,d\n"), opts(0, false)).delimiter(), ',');
}

TEST_F(CsvDetectTest, DefaultsToCommaForSingleColumn) {
  CsvReader reader(write("one.csv", "user\nu1\n"), opts(0, true));
  EXPECT_EQ(reader.delimiter(), ',');
  EXPECT_EQ(reader.width(), 1u);
}

TEST_F(CsvDetectTest, IgnoresCandidatesInsideQuotes) {
  // Four commas inside quotes, two semicolons outside.
  CsvReader reader(write("q.csv", "\"a,b,c\";\"x,\"\",y\";z\n1;2;3\n"), opts(0, true));
  EXPECT_EQ(reader.delimiter(), ';');
  EXPECT_EQ(reader.header(), (Fields{"a,b,c", "x,\",y", "z"}));
}

TEST_F(CsvDetectTest, LooksOnlyAtFirstNonEmptyRecord) {
  // The empty lines before the header are skipped; later records do not vote.
  CsvReader reader(write("e.csv", "\n\r\na;b\n1,2,3,4\n"), opts(0, true));
  EXPECT_EQ(reader.delimiter(), ';');
  EXPECT_EQ(reader.header(), (Fields{"a", "b"}));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"1,2,3,4"}));
  EXPECT_EQ(rows[0].line, 4u);
}

TEST_F(CsvReaderTest, ExplicitDelimiterOverridesDetection) {
  // Detection would pick ',' here; the option says ';'.
  CsvReader reader(write("o.csv", "a,b;c,d\n1,2;3,4\n"), opts(';', true));
  EXPECT_EQ(reader.delimiter(), ';');
  EXPECT_EQ(reader.header(), (Fields{"a,b", "c,d"}));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"1,2", "3,4"}));
}

// --- quoting ---------------------------------------------------------------------------------

TEST_F(CsvReaderTest, QuotedDelimiter) {
  CsvReader reader(write("q.csv", "id,name\n1,\"Smith, John\"\n2,\"a,b,c\"\n"), opts(0, true));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"1", "Smith, John"}));
  EXPECT_EQ(rows[1].fields, (Fields{"2", "a,b,c"}));
  EXPECT_TRUE(rows[0].error.empty());
}

TEST_F(CsvReaderTest, DoubledQuotes) {
  CsvReader reader(write("dq.csv", "\"say \"\"hi\"\"\",\"\"\"\",\"\",x\n"), opts(',', false));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"say \"hi\"", "\"", "", "x"}));
  EXPECT_TRUE(rows[0].error.empty());
}

TEST_F(CsvReaderTest, QuotedEmptyFieldAloneIsARecord) {
  CsvReader reader(write("qe.csv", "\"\"\nx\n"), opts(',', false));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{""}));
  EXPECT_EQ(rows[1].fields, (Fields{"x"}));
  EXPECT_EQ(rows[1].line, 2u);
}

TEST_F(CsvReaderTest, NewlineInsideQuotesAdvancesLineCount) {
  const std::string text =
      "id,comment\n"
      "1,\"first line\nsecond line\r\nthird\"\n"
      "2,plain\n";
  CsvReader reader(write("nl.csv", text), opts(0, true));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"1", "first line\nsecond line\r\nthird"}));
  EXPECT_EQ(rows[0].line, 2u);  // where the record starts
  EXPECT_EQ(rows[1].fields, (Fields{"2", "plain"}));
  EXPECT_EQ(rows[1].line, 5u);  // three physical lines later
}

TEST_F(CsvReaderTest, QuoteInsideUnquotedFieldIsLiteral) {
  CsvReader reader(write("lit.csv", "ab\"c,5 \"inch\",x\n"), opts(',', false));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"ab\"c", "5 \"inch\"", "x"}));
  EXPECT_TRUE(rows[0].error.empty());
}

TEST_F(CsvReaderTest, CustomQuoteCharacter) {
  CsvOptions o = opts(',', false);
  o.quote = '\'';
  CsvReader reader(write("sq.csv", "'a,b','it''s',\"x\"\n"), o);
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"a,b", "it's", "\"x\""}));
}

// --- line endings, BOM, empty cells and lines --------------------------------------------------

TEST_F(CsvReaderTest, CrlfLineEndings) {
  CsvReader reader(write("crlf.csv", "a,b\r\n1,\"q\"\r\n3,\r\n\"x\r\ny\",4\r\n"), opts(0, true));
  EXPECT_EQ(reader.header(), (Fields{"a", "b"}));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].fields, (Fields{"1", "q"}));
  EXPECT_EQ(rows[1].fields, (Fields{"3", ""}));
  EXPECT_EQ(rows[2].fields, (Fields{"x\r\ny", "4"}));  // CR inside quotes is data
  EXPECT_EQ(rows[2].line, 4u);
  for (const auto& row : rows) EXPECT_TRUE(row.error.empty()) << row.line;
}

TEST_F(CsvReaderTest, CrInsideQuotesAtFieldEndIsKept) {
  // The CR closing the quoted first field must survive stripping of the line's CRLF.
  CsvReader reader(write("cr.csv", "\"a\r\",\r\n\"b\r\"\r\n"), opts(',', false));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"a\r", ""}));
  EXPECT_EQ(rows[1].fields, (Fields{"b\r"}));
  EXPECT_EQ(rows[1].line, 2u);
}

TEST_F(CsvReaderTest, BareCrOutsideQuotesEndsTheRecord) {
  // A CR outside quotes is a line end also in an LF file (stray classic-Mac lines); inside
  // quotes it is data, and in an LF file it does not count as a line.
  CsvReader reader(write("bcr.csv", "a,b\nc\rd,e\n\"f\"\rg,\"h\r\"\nk,l\n"), opts(',', false));
  EXPECT_FALSE(reader.cr_line_ends());
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[1].fields, (Fields{"c"}));
  EXPECT_EQ(rows[2].fields, (Fields{"d", "e"}));
  EXPECT_EQ(rows[3].fields, (Fields{"f"}));
  EXPECT_EQ(rows[4].fields, (Fields{"g", "h\r"}));
  EXPECT_EQ(rows[5].fields, (Fields{"k", "l"}));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].line, i + 1);
    EXPECT_TRUE(rows[i].error.empty()) << rows[i].line;
  }
}

TEST_F(CsvReaderTest, ControlBytesOtherThanLineEndsAreCellData) {
  // The field scan finds line ends among all bytes below 0x0E; the others stay in the cell,
  // at any position in the eight-byte steps.
  std::string text = "a,b\n";
  for (std::size_t at = 0; at < 10; ++at) {
    std::string cell(10, 'x');
    cell[at] = static_cast<char>(at % 2 == 0 ? 0x0B : 0x01);
    text += cell + ",\x0C" + "y\n";
  }
  CsvReader reader(write("ctl.csv", text), opts(0, true));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 10u);
  for (std::size_t at = 0; at < rows.size(); ++at) {
    ASSERT_EQ(rows[at].fields.size(), 2u) << at;
    EXPECT_EQ(rows[at].fields[0].size(), 10u) << at;
    EXPECT_EQ(rows[at].fields[0][at], at % 2 == 0 ? '\x0B' : '\x01') << at;
    EXPECT_EQ(rows[at].fields[1], "\x0Cy");
    EXPECT_EQ(rows[at].line, at + 2);
  }
}

TEST_F(CsvReaderTest, ClassicMacFileReadsLineByLine) {
  const auto path = write("mac.csv", "user,item,note\ru1,i1,\"two\rlines\"\r\ru2,i2,x\r");
  CsvReader reader(path, opts(0, true));
  EXPECT_TRUE(reader.cr_line_ends());
  EXPECT_EQ(reader.header(), (Fields{"user", "item", "note"}));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"u1", "i1", "two\rlines"}));
  EXPECT_EQ(rows[0].line, 2u);
  // The CR inside the quotes is a line in this file, and the empty line 4 is skipped.
  EXPECT_EQ(rows[1].fields, (Fields{"u2", "i2", "x"}));
  EXPECT_EQ(rows[1].line, 5u);
  EXPECT_EQ(reader.bytes_read(), fs::file_size(path));
}

TEST_F(CsvReaderTest, BareCrAtEveryBufferBoundary) {
  // A bare CR as the last byte of the buffer may be a CRLF cut in two: the reader must look at
  // the next byte before ending the record, unquoted and quoted alike.
  for (const std::string& record : {std::string("a,b\r"), std::string("\"a\",\"b\"\r")}) {
    for (std::size_t shift = 0; shift < 3; ++shift) {
      SCOPED_TRACE(record + " shifted by " + std::to_string(shift));
      std::string text = "k,v\n";
      const std::size_t pad = kReaderBuffer - text.size() - record.size() - 3 + shift;
      text += "p," + std::string(pad, 'z') + "\n" + record + "\nq,1\r";
      CsvReader reader(write("crb.csv", text), opts(0, true));
      const auto rows = read_all(reader);
      ASSERT_EQ(rows.size(), 3u);
      EXPECT_EQ(rows[1].fields, (Fields{"a", "b"}));
      EXPECT_EQ(rows[1].line, 3u);
      EXPECT_EQ(rows[2].fields, (Fields{"q", "1"}));
      // The CR then LF after "b" is one CRLF line end, not a bare CR and an empty line.
      EXPECT_EQ(rows[2].line, 4u);
    }
  }
}

TEST_F(CsvReaderTest, Utf8BomIsStripped) {
  const auto path = write("bom.csv", "\xEF\xBB\xBFuser,item\nu1,i1\n");
  CsvReader reader(path, opts(0, true));
  ASSERT_EQ(reader.header().size(), 2u);
  EXPECT_EQ(reader.header()[0], "user");
  EXPECT_EQ(reader.header()[1], "item");
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].line, 2u);
  EXPECT_EQ(reader.bytes_read(), fs::file_size(path));  // the BOM counts as read
}

TEST_F(CsvReaderTest, Utf8BomBeforeQuotedHeaderAndHeaderless) {
  CsvReader reader(write("bomq.csv", "\xEF\xBB\xBF\"user\";x\n"), opts(0, false));
  EXPECT_EQ(reader.delimiter(), ';');
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"user", "x"}));
  EXPECT_TRUE(rows[0].error.empty());
}

TEST_F(CsvReaderTest, EmptyCellsAndTrailingDelimiter) {
  CsvReader reader(write("ec.csv", "a,,b\n,,\nx,\n,y\n"), opts(',', false));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].fields, (Fields{"a", "", "b"}));
  EXPECT_EQ(rows[1].fields, (Fields{"", "", ""}));
  EXPECT_EQ(rows[2].fields, (Fields{"x", ""}));
  EXPECT_EQ(rows[3].fields, (Fields{"", "y"}));
}

TEST_F(CsvReaderTest, TrailingDelimiterAtEndOfFile) {
  CsvReader reader(write("td.csv", "a,b,"), opts(',', false));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"a", "b", ""}));
}

TEST_F(CsvReaderTest, TrailingDelimiterTheHeaderLacksIsDropped) {
  // Exports that end every row with a delimiter: the empty extra field goes, as pandas and
  // DuckDB read it; an extra field with content stays, for the caller to reject.
  CsvReader reader(write("trail.csv", "a,b,c\n1,2,3,\n4,5,6\n7,8,9,\"\"\n1,2,3,x\n1,2,,\n"),
                   opts(0, true));
  EXPECT_EQ(reader.width(), 3u);
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].fields, (Fields{"1", "2", "3"}));
  EXPECT_EQ(rows[1].fields, (Fields{"4", "5", "6"}));
  EXPECT_EQ(rows[2].fields, (Fields{"7", "8", "9"}));
  EXPECT_EQ(rows[3].fields, (Fields{"1", "2", "3", "x"}));
  EXPECT_EQ(rows[4].fields, (Fields{"1", "2", ""}));  // only the one past the width goes
}

TEST_F(CsvReaderTest, EmptyLinesSkippedButCounted) {
  const std::string text = "h1,h2\n\n1,2\n\r\n\n3,4\n\n";
  CsvReader reader(write("el.csv", text), opts(0, true));
  EXPECT_EQ(reader.header(), (Fields{"h1", "h2"}));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"1", "2"}));
  EXPECT_EQ(rows[0].line, 3u);
  EXPECT_EQ(rows[1].fields, (Fields{"3", "4"}));
  EXPECT_EQ(rows[1].line, 6u);
}

TEST_F(CsvReaderTest, NoTrailingNewline) {
  CsvReader reader(write("nt.csv", "a,b\n1,2\n3,\"4\""), opts(0, true));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].fields, (Fields{"3", "4"}));
  EXPECT_EQ(rows[1].line, 3u);
  EXPECT_TRUE(rows[1].error.empty());

  CsvReader cr(write("ntcr.csv", "1,2\r"), opts(0, false));
  const auto cr_rows = read_all(cr);
  ASSERT_EQ(cr_rows.size(), 1u);
  EXPECT_EQ(cr_rows[0].fields, (Fields{"1", "2"}));
}

// --- malformed records -----------------------------------------------------------------------

TEST_F(CsvReaderTest, UnclosedQuoteReportsStartLineAndSwallowsToEof) {
  const std::string text = "a,b\n1,2\n3,\"never closed\n4,5\n6,7\n";
  CsvReader reader(write("uq.csv", text), opts(0, true));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[0].error.empty());
  EXPECT_EQ(rows[1].error, "unclosed quote");
  EXPECT_EQ(rows[1].line, 3u);
  ASSERT_EQ(rows[1].fields.size(), 2u);
  EXPECT_EQ(rows[1].fields[0], "3");
  EXPECT_EQ(rows[1].fields[1], "never closed\n4,5\n6,7\n");
}

TEST_F(CsvReaderTest, CharAfterClosingQuoteIsErrorAndNextRecordRecovers) {
  const std::string text = "a,b,c\n\"ab\"c,x,y\n1,2,3\n\"q\"\t,z\n4,5,6\n";
  CsvReader reader(write("cq.csv", text), opts(0, true));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].error, "unexpected character after closing quote");
  EXPECT_EQ(rows[0].line, 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"abc", "x", "y"}));  // the rest of the record still splits
  EXPECT_TRUE(rows[1].error.empty());
  EXPECT_EQ(rows[1].fields, (Fields{"1", "2", "3"}));
  EXPECT_EQ(rows[1].line, 3u);
  // Whitespace after the closing quote is a stray byte too (a bare CR there ends the line:
  // see BareCrOutsideQuotesEndsTheRecord).
  EXPECT_EQ(rows[2].error, "unexpected character after closing quote");
  EXPECT_EQ(rows[2].fields, (Fields{"q\t", "z"}));
  EXPECT_TRUE(rows[3].error.empty());
  EXPECT_EQ(rows[3].fields, (Fields{"4", "5", "6"}));
  EXPECT_EQ(rows[3].line, 5u);
}

TEST_F(CsvReaderTest, ErrorIsClearedForTheNextRecord) {
  CsvReader reader(write("clr.csv", "\"a\"b\nc\n"), opts(',', false));
  CsvRecord r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_FALSE(r.error.empty());
  ASSERT_TRUE(reader.next(r));  // same record object reused
  EXPECT_TRUE(r.error.empty());
  EXPECT_EQ(to_strings(r), (Fields{"c"}));
  EXPECT_FALSE(reader.next(r));
}

// --- open and read failures --------------------------------------------------------------------

TEST_F(CsvReaderTest, MissingFileThrowsDataErrorNamingPath) {
  const std::string path = (dir_ / "does_not_exist.csv").string();
  try {
    CsvReader reader(path, CsvOptions{});
    FAIL() << "expected DataError";
  } catch (const ml::DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'" + path + "'"), std::string::npos) << what;
    EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_EQ(e.code(), ml::ExitCode::kData);
  }
}

TEST_F(CsvReaderTest, DirectoryThrowsDataError) {
  const std::string path = dir_.string();
  try {
    CsvReader reader(path, CsvOptions{});
    FAIL() << "expected DataError";
  } catch (const ml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// --- views and progress ------------------------------------------------------------------------

TEST_F(CsvReaderTest, BytesReadTracksConsumedRecords) {
  const std::string text = "a,b\n1,2\n33,44\n";
  const auto path = write("br.csv", text);
  CsvReader reader(path, opts(0, true));
  EXPECT_EQ(reader.bytes_read(), 4u);  // the header line
  CsvRecord r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(reader.bytes_read(), 8u);
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(reader.bytes_read(), text.size());
  EXPECT_FALSE(reader.next(r));
  EXPECT_EQ(reader.bytes_read(), text.size());
}

TEST_F(CsvReaderTest, FieldsAreViewsThatStayValidUntilNext) {
  CsvReader reader(write("v.csv", "x,y\nlong-ish value one,\"two\"\n"), opts(0, true));
  CsvRecord r;
  ASSERT_TRUE(reader.next(r));
  ASSERT_EQ(r.fields.size(), 2u);
  // Both views point into the reader's one buffer, in order, with the delimiter and the
  // quote between them: cells are not copied out.
  EXPECT_LT(r.fields[0].data() + r.fields[0].size(), r.fields[1].data());
  EXPECT_LE(r.fields[1].data() - r.fields[0].data(), 24);
  EXPECT_EQ(r.fields[0], "long-ish value one");
  EXPECT_EQ(r.fields[1], "two");
}

// --- records crossing the buffer -------------------------------------------------------------

TEST_F(CsvReaderTest, RecordLongerThanBuffer) {
  // Unquoted and quoted fields several times the buffer size, with delimiters and newlines
  // inside the quoted one, and the delimiter detected from a first record longer than the buffer.
  std::string big_quoted;
  for (std::size_t i = 0; big_quoted.size() < 3 * kReaderBuffer; ++i) {
    big_quoted += "word" + std::to_string(i) + (i % 1000 == 999 ? "\n" : ",");
  }
  const std::string big_plain(2 * kReaderBuffer + 17, 'p');
  const auto newlines =
      static_cast<std::size_t>(std::count(big_quoted.begin(), big_quoted.end(), '\n'));
  const std::string text = "\"" + big_quoted + "\";b;c\n" + big_plain + ";x;\n" + "1;2;3\n";
  CsvReader reader(write("long.csv", text), opts(0, false));
  EXPECT_EQ(reader.delimiter(), ';');  // the many commas are all inside quotes
  EXPECT_EQ(reader.width(), 3u);
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 3u);
  ASSERT_EQ(rows[0].fields.size(), 3u);
  EXPECT_TRUE(rows[0].fields[0] == big_quoted);
  EXPECT_EQ(rows[0].fields[1], "b");
  ASSERT_EQ(rows[1].fields.size(), 3u);
  EXPECT_EQ(rows[1].fields[0].size(), big_plain.size());
  EXPECT_TRUE(rows[1].fields[0] == big_plain);
  EXPECT_EQ(rows[1].fields[2], "");
  EXPECT_EQ(rows[1].line, 2 + newlines);
  EXPECT_EQ(rows[2].fields, (Fields{"1", "2", "3"}));
  EXPECT_EQ(rows[2].line, 3 + newlines);
  EXPECT_EQ(reader.bytes_read(), text.size());
}

TEST_F(CsvReaderTest, BufferBoundaryAtEveryOffsetOfATrickyRecord) {
  // The tricky record exercises every parser state; the k-th copy is placed so that the k-th
  // buffer boundary falls k bytes into it, so each state is interrupted by a refill once.
  const std::string tricky = "\"a\"\"b\",\"x\r\ny\",,plain\"q,\"\"\r\n";
  const Fields tricky_fields = {"a\"b", "x\r\ny", "", "plain\"q", ""};
  std::string text = "k,v\n";
  std::vector<std::size_t> tricky_lines;
  std::size_t line = 2;
  for (std::size_t k = 0; k <= tricky.size(); ++k) {
    const std::size_t target = (k + 1) * kReaderBuffer - k;
    const std::size_t pad = target - text.size() - 3;  // "p," + pad + "\n"
    text += "p," + std::string(pad, 'z') + "\n";
    ++line;
    tricky_lines.push_back(line);
    text += tricky;
    line += 2;
  }
  CsvReader reader(write("boundary.csv", text), opts(0, true));
  CsvRecord r;
  std::size_t tricky_seen = 0;
  std::size_t pads = 0;
  while (reader.next(r)) {
    ASSERT_TRUE(r.error.empty()) << r.line << ": " << r.error;
    if (r.fields.size() == 2) {
      ASSERT_EQ(r.fields[0], "p");
      ++pads;
      continue;
    }
    ASSERT_LT(tricky_seen, tricky_lines.size());
    EXPECT_EQ(to_strings(r), tricky_fields) << "copy " << tricky_seen;
    EXPECT_EQ(r.line, tricky_lines[tricky_seen]) << "copy " << tricky_seen;
    ++tricky_seen;
  }
  EXPECT_EQ(tricky_seen, tricky.size() + 1);
  EXPECT_EQ(pads, tricky.size() + 1);
  EXPECT_EQ(reader.bytes_read(), text.size());
}

TEST_F(CsvReaderTest, LargeFileRoundTrip) {
  constexpr std::size_t kRows = 200000;
  auto expected_row = [](std::size_t i) {
    Fields f = {"user" + std::to_string(i), "item" + std::to_string(i * 7919 % 100003),
                std::to_string(1600000000 + i)};
    // Every so often a field that needs quoting, including a newline every 1000th row.
    if (i % 13 == 0) {
      f.push_back("note, \"" + std::to_string(i) + "\"");
    } else if (i % 1000 == 1) {
      f.push_back("multi\nline");
    } else {
      f.push_back(i % 2 == 0 ? "" : "x");
    }
    return f;
  };
  std::string text = "user,item,ts,note\r\n";
  std::vector<std::size_t> lines(kRows);
  std::size_t line = 2;
  for (std::size_t i = 0; i < kRows; ++i) {
    const Fields f = expected_row(i);
    lines[i] = line;
    for (std::size_t c = 0; c < f.size(); ++c) {
      if (c > 0) text += ',';
      if (f[c].find_first_of(",\"\n") != std::string::npos) {
        text += '"';
        for (char ch : f[c]) {
          if (ch == '"') text += '"';
          text += ch;
          if (ch == '\n') ++line;
        }
        text += '"';
      } else {
        text += f[c];
      }
    }
    text += (i % 3 == 0) ? "\r\n" : "\n";
    ++line;
  }
  ASSERT_GT(text.size(), 5 * kReaderBuffer);

  CsvReader reader(write("large.csv", text), opts(0, true));
  EXPECT_EQ(reader.header(), (Fields{"user", "item", "ts", "note"}));
  CsvRecord r;
  std::size_t n = 0;
  while (reader.next(r)) {
    ASSERT_LT(n, kRows);
    ASSERT_TRUE(r.error.empty()) << r.line;
    ASSERT_EQ(r.fields.size(), 4u) << r.line;
    const Fields want = expected_row(n);
    for (std::size_t c = 0; c < want.size(); ++c) {
      ASSERT_EQ(r.fields[c], want[c]) << "row " << n << " field " << c;
    }
    ASSERT_EQ(r.line, lines[n]) << "row " << n;
    ++n;
  }
  EXPECT_EQ(n, kRows);
  EXPECT_TRUE(r.fields.empty());  // the final, false next() leaves no stale views
  EXPECT_EQ(reader.bytes_read(), text.size());
}

// --- encodings and files that are not text ------------------------------------------------------

TEST_F(CsvReaderTest, CellsThatAreNotUtf8AreEscapedAndCounted) {
  // A Latin-1 export: header and cells. Valid UTF-8 is left as it is.
  const auto path =
      write("latin1.csv", "user,cat\xE9gorie\nu1,Caf\xC3\xA9\n\"u\xE9\",Cr\xE8me \xE0\n");
  CsvReader reader(path, opts(0, true));
  EXPECT_EQ(reader.header(), (Fields{"user", "cat\\xE9gorie"}));
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"u1", "Caf\xC3\xA9"}));
  EXPECT_EQ(rows[1].fields, (Fields{"u\\xE9", "Cr\\xE8me \\xE0"}));
  const auto& bad = reader.non_utf8();
  EXPECT_EQ(bad.cells, 3u);  // the header's cell, then two on line 3
  EXPECT_EQ(bad.line, 1u);
  EXPECT_EQ(bad.column, 2u);
  EXPECT_EQ(bad.byte, 0xE9);
}

TEST_F(CsvReaderTest, ABackslashInADataCellIsDoubledNotInTheHeader) {
  // A data cell's backslash is doubled so that the text `\xE9` cannot read as the byte 0xE9
  // (util/utf8.hpp, cell_escaped); a header's names stay as written, to match the config's.
  CsvReader with_header(write("b.csv", "us\\er,cat\nu\\1,\"a\\xE9\"\nu2,b\xE9\n"), opts(',', true));
  EXPECT_EQ(with_header.header(), (Fields{"us\\er", "cat"}));
  const auto rows = read_all(with_header);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"u\\\\1", "a\\\\xE9"}));
  EXPECT_EQ(rows[1].fields, (Fields{"u2", "b\\xE9"}));
  EXPECT_EQ(with_header.non_utf8().cells, 1u);  // a backslash is no encoding problem
  // Headerless: the first record, read ahead in the constructor, is data.
  CsvReader headerless(write("h.csv", "x\\y,1\n"), opts(',', false));
  CsvRecord r;
  ASSERT_TRUE(headerless.next(r));
  EXPECT_EQ(to_strings(r), (Fields{"x\\\\y", "1"}));
  EXPECT_EQ(headerless.non_utf8().cells, 0u);
}

TEST_F(CsvReaderTest, FreeTextKeepsItsBackslashesAndStillEscapesBytes) {
  // double_backslashes = false (text datasets): a backslash is content, a byte that is not
  // UTF-8 is still written \xHH.
  CsvOptions options = opts(',', true);
  options.double_backslashes = false;
  CsvReader reader(write("t.csv", "text,cat\n\"say \\hi\",a\\b\nb\xE9,c\n"), options);
  const auto rows = read_all(reader);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields, (Fields{"say \\hi", "a\\b"}));
  EXPECT_EQ(rows[1].fields, (Fields{"b\\xE9", "c"}));
  EXPECT_EQ(reader.non_utf8().cells, 1u);
  options.header = false;
  CsvReader headerless(write("h.csv", "x\\y,1\n"), options);
  CsvRecord r;
  ASSERT_TRUE(headerless.next(r));
  EXPECT_EQ(to_strings(r), (Fields{"x\\y", "1"}));
}

TEST_F(CsvReaderTest, EscapedCellsStayValidUntilNext) {
  // Escaped cells live in the reader, not in the buffer: each record's must survive as long
  // as the record, also for the headerless first record read ahead in the constructor.
  CsvReader reader(write("h.csv",
                         "\xE9"
                         "1,a\xFF\n2,\xFE"
                         "b\n"),
                   opts(',', false));
  CsvRecord r;
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(to_strings(r), (Fields{"\\xE91", "a\\xFF"}));
  ASSERT_TRUE(reader.next(r));
  EXPECT_EQ(to_strings(r), (Fields{"2", "\\xFEb"}));
  EXPECT_EQ(reader.non_utf8().cells, 3u);
  EXPECT_EQ(reader.non_utf8().line, 1u);
  EXPECT_EQ(reader.non_utf8().column, 1u);
}

TEST_F(CsvReaderTest, FilesThatAreNotTextAreRefusedNamingWhatTheyAre) {
  struct Case {
    std::string name, bytes, says;
  };
  const std::vector<Case> cases = {
      {"log.csv.gz", std::string("\x1F\x8B\x08\x00\x00\x00\x00\x00", 8) + "abc", "gzip"},
      {"book.xlsx", std::string("PK\x03\x04\x14\x00\x06\x00", 8), "ZIP"},
      {"utf16.csv", std::string("\xFF\xFEu\x00s\x00", 6), "UTF-16"},
      {"utf16be.csv", std::string("\xFE\xFF\x00u", 4), "UTF-16"},
      {"blob.csv", std::string("user,item\nu1,\x00\x01\x02", 15), "NUL byte at offset 13"},
      // Formats an export is mistaken for, which used to come out as a one-column header
      // ("its columns are: %PDF-1.5") or as a bare NUL offset.
      {"report.pdf", "%PDF-1.5\n%\xE2\xE3\xCF\xD3\n1 0 obj\n", "a PDF document"},
      {"book.xls", std::string("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00", 10),
       "Excel 97-2003 workbook (.xls)"},
      {"log.parquet", std::string("PAR1\x15\x04\x15\x00", 8), "Parquet"},
      {"log.csv.bz2", std::string("BZh91AY&SY\x00\x01", 12), "bzip2"},
      {"log.csv.xz",
       std::string("\xFD"
                   "7zXZ\x00\x00",
                   8),
       "xz"},
      {"log.csv.zst", std::string("\x28\xB5\x2F\xFD\x00", 5), "zstd"},
      {"shop.db", std::string("SQLite format 3\0\x10\x00", 18), "SQLite"},
  };
  for (const Case& c : cases) {
    const auto path = write(c.name, c.bytes);
    try {
      CsvReader reader(path, opts(0, true));
      ADD_FAILURE() << c.name << ": expected a DataError";
    } catch (const ml::DataError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("'" + path + "' is not a text CSV file"), std::string::npos) << what;
      EXPECT_NE(what.find(c.says), std::string::npos) << what;
    }
  }
  // A stray NUL in a cell of a text export is the cell's problem (a bad row), not a binary file.
  std::string text = "user,item\n";
  for (int i = 0; i < 20; ++i) text += "u" + std::to_string(i) + ",i" + std::to_string(i) + "\n";
  text += std::string("u20,i\0\n", 7);
  CsvReader reader(write("padded.csv", text), opts(0, true));
  CsvRecord r;
  int records = 0;
  while (reader.next(r)) ++records;
  EXPECT_EQ(records, 21);
  // A text file whose header spells a magic in letters is still text (no NUL anywhere).
  CsvReader letters(write("letters.csv", "PAR1,BZh\n1,2\n"), opts(0, true));
  ASSERT_TRUE(letters.next(r));
  EXPECT_EQ(to_strings(r), (Fields{"1", "2"}));
}

}  // namespace
