// Tests for fast ingestion: parsing a log file in parallel parts gives exactly the serial
// result (also when a cut falls inside a quoted field spanning lines, and for bad rows), and
// the parsed-log cache gives back exactly what a parse gives, is rebuilt when a file or the
// config changes or when it is damaged, and never fails a command.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/csv_reader.hpp"
#include "data/log_cache.hpp"
#include "data/purchase_log.hpp"
#include "runtime/device.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"

namespace {

namespace fs = std::filesystem;
using ml::DataError;
using ml::config::ColumnRef;
using ml::config::Config;
using ml::data::CacheOutcome;
using ml::data::CsvOptions;
using ml::data::CsvPart;
using ml::data::CsvReader;
using ml::data::CsvRecord;
using ml::data::Dictionary;
using ml::data::FeatureTable;
using ml::data::LoadReport;
using ml::data::ParseOptions;
using ml::data::PurchaseLog;
using ml::testing::slurp;
using ml::testing::TempDir;
using ml::testing::write_file;

ColumnRef named(const std::string& name) {
  ColumnRef r;
  r.name = name;
  return r;
}

// A messy log: quoted cells with delimiters, doubled quotes and newlines, CRLF, LF and bare CR
// line ends, empty lines, empty task keys, Latin-1 bytes in ids and text, trailing delimiters,
// and bad rows of every kind, in a seeded order.
std::string messy_log(std::size_t rows, unsigned seed, bool long_quotes = false,
                      const char* line_end = nullptr) {
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  std::string s = "user_id,item_id,category,timestamp,price,title,brand\n";
  for (std::size_t i = 0; i < rows; ++i) {
    std::string category = "cat" + std::to_string(pick(40));
    const int kind = pick(100);
    if (kind < 5) category = "\"snacks, sweet\"";
    if (kind >= 5 && kind < 8) category = "";
    std::string title = "plain title " + std::to_string(pick(1000));
    if (kind >= 10 && kind < 20) title = "\"a \"\"quoted\"\" title\nover two lines\"";
    if (long_quotes && kind >= 20 && kind < 23) {
      title = "\"";
      for (int k = 0; k < 300; ++k) title += "line " + std::to_string(k) + ",\n";
      title += "\"";
    }
    std::string price = std::to_string(pick(10000) / 100.0).substr(0, 5);
    if (kind == 30) price = "abc";  // bad number
    std::string time = kind == 31 ? "yesterday" : std::to_string(1500000000 + pick(1000000));
    std::string row = "u" + std::to_string(pick(500)) + ",i" + std::to_string(pick(2000)) + "," +
                      category + "," + time + "," + price + "," + title + ",b" +
                      std::to_string(pick(30));
    if (kind == 32) row += ",extra";  // wrong field count
    if (kind == 33) row[1] = '"';     // a literal quote inside an unquoted cell
    if (kind == 34) row += "\"x\"y";  // a character after a closing quote
    if (kind == 35) row = "u\xE9," + row.substr(row.find(',') + 1) + " caf\xE9";  // Latin-1
    if (kind == 36) row += ",";  // a trailing delimiter the header lacks
    const int end = pick(6);
    s += row + (line_end ? line_end : end == 0 ? "\r\n" : end == 1 ? "\r" : "\n");
    if (pick(50) == 0) s += pick(2) ? "\n" : "\r\n";  // empty line
  }
  return s;
}

Config messy_config(const std::vector<std::string>& files) {
  Config c;
  c.data.files = files;
  c.data.columns.user = named("user_id");
  c.data.columns.item = named("item_id");
  c.data.columns.task = named("category");
  c.data.columns.timestamp = named("timestamp");
  c.data.columns.price = named("price");
  c.data.features.numeric = {named("price")};
  c.data.features.categorical = {named("brand")};
  c.data.features.text = {named("title")};
  c.data.show_bad_rows = 1000;
  c.features.aggregates = {};
  c.task.label.kind =
      ml::config::LabelKind::kRegression;  // row-level features need labels read from rows
  c.task.label.target = ml::config::LabelTarget::kPrice;
  ml::config::validate(c);
  return c;
}

void expect_same_dictionary(const Dictionary& a, const Dictionary& b, const char* what) {
  EXPECT_EQ(a.names(), b.names()) << what;
}

void expect_same_table(const FeatureTable& a, const FeatureTable& b) {
  ASSERT_EQ(a.numeric.size(), b.numeric.size());
  for (std::size_t i = 0; i < a.numeric.size(); ++i) {
    EXPECT_EQ(a.numeric[i].name, b.numeric[i].name);
    const auto& x = a.numeric[i].values;
    const auto& y = b.numeric[i].values;
    ASSERT_EQ(x.size(), y.size());
    for (std::size_t r = 0; r < x.size(); ++r)
      ASSERT_TRUE(x[r] == y[r] || (std::isnan(x[r]) && std::isnan(y[r]))) << "row " << r;
  }
  ASSERT_EQ(a.categorical.size(), b.categorical.size());
  for (std::size_t i = 0; i < a.categorical.size(); ++i) {
    EXPECT_EQ(a.categorical[i].name, b.categorical[i].name);
    expect_same_dictionary(a.categorical[i].dictionary, b.categorical[i].dictionary, "category");
    EXPECT_EQ(a.categorical[i].values, b.categorical[i].values);
  }
  ASSERT_EQ(a.text.size(), b.text.size());
  for (std::size_t i = 0; i < a.text.size(); ++i) {
    EXPECT_EQ(a.text[i].name, b.text[i].name);
    EXPECT_EQ(a.text[i].arena, b.text[i].arena);
    EXPECT_EQ(a.text[i].offsets, b.text[i].offsets);
  }
}

void expect_same_floats(const std::vector<float>& x, const std::vector<float>& y) {
  ASSERT_EQ(x.size(), y.size());
  for (std::size_t r = 0; r < x.size(); ++r)
    ASSERT_TRUE(x[r] == y[r] || (std::isnan(x[r]) && std::isnan(y[r]))) << "row " << r;
}

void expect_same_log(const PurchaseLog& a, const PurchaseLog& b) {
  EXPECT_EQ(a.has_user(), b.has_user());
  EXPECT_EQ(a.has_item(), b.has_item());
  EXPECT_EQ(a.has_timestamp(), b.has_timestamp());
  expect_same_dictionary(a.users, b.users, "users");
  expect_same_dictionary(a.items, b.items, "items");
  expect_same_dictionary(a.tasks, b.tasks, "tasks");
  expect_same_dictionary(a.events, b.events, "events");
  expect_same_dictionary(a.classes, b.classes, "classes");
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.item, b.item);
  EXPECT_EQ(a.task, b.task);
  EXPECT_EQ(a.event, b.event);
  EXPECT_EQ(a.label_class, b.label_class);
  EXPECT_EQ(a.timestamp, b.timestamp);
  expect_same_floats(a.rating, b.rating);
  expect_same_floats(a.price, b.price);
  expect_same_floats(a.quantity, b.quantity);
  expect_same_table(a.features, b.features);
  expect_same_table(a.user_attributes, b.user_attributes);
  expect_same_table(a.item_attributes, b.item_attributes);
}

void expect_same_report(const LoadReport& a, const LoadReport& b) {
  EXPECT_EQ(a.files, b.files);
  EXPECT_EQ(a.bytes, b.bytes);
  EXPECT_EQ(a.rows_read, b.rows_read);
  EXPECT_EQ(a.rows_rejected, b.rows_rejected);
  EXPECT_EQ(a.rejected_by_reason, b.rejected_by_reason);
  EXPECT_EQ(a.rows_without_task, b.rows_without_task);
  EXPECT_EQ(a.timestamps_read_as, b.timestamps_read_as);
  ASSERT_EQ(a.bad_rows.size(), b.bad_rows.size());
  for (std::size_t i = 0; i < a.bad_rows.size(); ++i) {
    EXPECT_EQ(a.bad_rows[i].file, b.bad_rows[i].file) << i;
    EXPECT_EQ(a.bad_rows[i].line, b.bad_rows[i].line) << i;
    EXPECT_EQ(a.bad_rows[i].reason, b.bad_rows[i].reason) << i;
  }
  EXPECT_EQ(a.non_utf8_cells, b.non_utf8_cells);
  EXPECT_EQ(a.first_non_utf8.file, b.first_non_utf8.file);
  EXPECT_EQ(a.first_non_utf8.line, b.first_non_utf8.line);
  EXPECT_EQ(a.first_non_utf8.reason, b.first_non_utf8.reason);
  ASSERT_EQ(a.side_tables.size(), b.side_tables.size());
  for (std::size_t i = 0; i < a.side_tables.size(); ++i) {
    EXPECT_EQ(a.side_tables[i].rows, b.side_tables[i].rows);
    EXPECT_EQ(a.side_tables[i].rejected, b.side_tables[i].rejected);
    EXPECT_EQ(a.side_tables[i].duplicates, b.side_tables[i].duplicates);
    EXPECT_EQ(a.side_tables[i].duplicate_keys, b.side_tables[i].duplicate_keys);
    EXPECT_EQ(a.side_tables[i].log_ids_matched, b.side_tables[i].log_ids_matched);
  }
}

PurchaseLog parse(const Config& c, LoadReport& report, int threads, std::uint64_t part_bytes) {
  ParseOptions options;
  options.threads = threads;
  options.min_part_bytes = part_bytes;
  return ml::data::load_purchase_log(c, report, options);
}

std::vector<std::vector<std::string>> read_records(CsvReader& reader,
                                                   std::vector<std::size_t>* lines = nullptr) {
  std::vector<std::vector<std::string>> out;
  CsvRecord r;
  while (reader.next(r)) {
    out.emplace_back(r.fields.begin(), r.fields.end());
    if (lines) lines->push_back(r.line);
  }
  return out;
}

TEST(ParseThreads, FollowTheRunThreadSettingUnlessGivenExplicitly) {
  // One setting (run.threads / --threads) bounds parsing as well as torch and the BLAS; it is
  // read from the config passed, not from any process-wide state.
  ml::config::Config config;
  config.run.threads = 1;
  EXPECT_EQ(ml::data::parse_threads(config, {}), 1);
  config.run.threads = 3;
  EXPECT_EQ(ml::data::parse_threads(config, {}), 3);
  ParseOptions explicit_threads;
  explicit_threads.threads = 2;
  EXPECT_EQ(ml::data::parse_threads(config, explicit_threads), 2);
  config.run.threads = 0;  // the environment, else the usable cores
  EXPECT_EQ(ml::data::parse_threads(config, {}), ml::runtime::resolve_threads(0));
}

// --- reading a file in parts -----------------------------------------------------------------

TEST(CsvParts, PartsCutAtLineStartsReadTheSameRecordsAsOneReader) {
  TempDir dir;
  const std::string path = dir.file("p.csv");
  write_file(path, "a,b\n1,2\r\n\n3,\"x,y\"\n4,5\n6,7");
  CsvReader whole(path, {0, true, '"'});
  std::vector<std::size_t> lines;
  const auto expected = read_records(whole, &lines);
  ASSERT_EQ(expected.size(), 4u);

  // Cut just after "1,2\r\n" (offset 9) and after the empty line (offset 10).
  for (const std::uint64_t cut : {9u, 10u}) {
    CsvReader first(path, {0, true, '"'});
    first.set_end(cut);
    auto records = read_records(first);
    EXPECT_EQ(first.offset(), cut);  // it stopped exactly where the next part starts
    CsvReader second(path, {0, false, '"'}, CsvPart{cut, 1000, ',', 2});
    std::vector<std::size_t> second_lines;
    auto rest = read_records(second, &second_lines);
    records.insert(records.end(), rest.begin(), rest.end());
    EXPECT_EQ(records, expected) << cut;
    // Lines count from the part's start; the first reader says where that is.
    ASSERT_FALSE(second_lines.empty());
    EXPECT_EQ(second_lines.back() + first.line() - 1, lines.back()) << cut;
  }
}

TEST(CsvParts, ACutAfterABareCrStartsARecord) {
  TempDir dir;
  const std::string path = dir.file("mac.csv");
  write_file(path, "a,b\r1,2\r\"x\ry\",3\r4,5\r");
  CsvReader whole(path, {0, true, '"'});
  std::vector<std::size_t> lines;
  const auto expected = read_records(whole, &lines);
  ASSERT_EQ(expected.size(), 3u);
  EXPECT_EQ(lines, (std::vector<std::size_t>{2, 3, 5}));  // the quoted CR counts as a line
  const std::uint64_t cut = 8;                            // just after "1,2\r"
  CsvReader first(path, {0, true, '"'});
  first.set_end(cut);
  auto records = read_records(first);
  EXPECT_EQ(first.offset(), cut);
  CsvReader second(path, {0, false, '"'}, CsvPart{cut, 1000, ',', 2, first.cr_line_ends()});
  std::vector<std::size_t> second_lines;
  auto rest = read_records(second, &second_lines);
  records.insert(records.end(), rest.begin(), rest.end());
  EXPECT_EQ(records, expected);
  ASSERT_EQ(second_lines.size(), 2u);
  EXPECT_EQ(second_lines.back() + first.line() - 1, lines.back());
}

TEST(CsvParts, AReaderStopsPastACutInsideAQuotedField) {
  TempDir dir;
  const std::string path = dir.file("q.csv");
  const std::string text = "a,b\n1,\"two\nlines\"\n3,4\n";
  write_file(path, text);
  const std::uint64_t cut = text.find("lines");  // just after the '\n' inside the quotes
  CsvReader first(path, {0, true, '"'});
  first.set_end(cut);
  const auto records = read_records(first);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0][1], "two\nlines");
  EXPECT_GT(first.offset(), cut);  // so a part starting at the cut is not a record start
  first.set_end(text.size());      // and this reader can take its bytes over
  EXPECT_EQ(read_records(first).size(), 1u);
}

// --- parallel parsing of the log -------------------------------------------------------------

TEST(ParallelParse, EveryPartitionGivesTheSerialLogAndReport) {
  TempDir dir;
  const std::string a = dir.file("a.csv"), b = dir.file("b.csv");
  write_file(a, messy_log(3000, 1));
  write_file(b, messy_log(1000, 2) + "u1,\"unclosed,\nto the end\n");
  const Config c = messy_config({a, b});
  LoadReport serial_report;
  const PurchaseLog serial = parse(c, serial_report, 1, 1 << 30);
  ASSERT_GT(serial.size(), 2500u);
  ASSERT_GT(serial_report.rows_rejected, 10);  // the bad rows are there to be compared
  ASSERT_GT(serial_report.rows_without_task, 10);
  ASSERT_GT(serial_report.non_utf8_cells, 10);

  for (const int threads : {2, 3, 8}) {
    for (const std::uint64_t part_bytes :
         {std::uint64_t{1}, std::uint64_t{4096}, std::uint64_t{60000}}) {
      SCOPED_TRACE("threads " + std::to_string(threads) + ", part bytes " +
                   std::to_string(part_bytes));
      LoadReport report;
      const PurchaseLog log = parse(c, report, threads, part_bytes);
      expect_same_log(log, serial);
      expect_same_report(report, serial_report);
    }
  }
}

TEST(ParallelParse, ClassicMacFilesAreCutAtTheirCrLineEnds) {
  TempDir dir;
  const std::string path = dir.file("mac.csv");
  std::string text = messy_log(3000, 5, false, "\r");
  text[text.find('\n')] = '\r';  // the header's line end too: no line ends in '\n' but quoted ones
  write_file(path, text);
  const Config c = messy_config({path});
  LoadReport serial_report;
  const PurchaseLog serial = parse(c, serial_report, 1, 1 << 30);
  ASSERT_GT(serial.size(), 2500u);
  for (const int threads : {2, 5}) {
    SCOPED_TRACE(threads);
    LoadReport report;
    const PurchaseLog log = parse(c, report, threads, 4096);
    expect_same_log(log, serial);
    expect_same_report(report, serial_report);
  }
  // Read as a CR file: a line break inside quotes counts as a line, in every part alike.
  EXPECT_TRUE(CsvReader(path, CsvOptions{0, true, '"'}).cr_line_ends());
}

TEST(ParallelParse, CutsInsideLongQuotedFieldsAreCaughtAndReadSerially) {
  TempDir dir;
  const std::string path = dir.file("long.csv");
  // Quoted titles of ~3 KB spanning 300 lines each: many cuts land inside them.
  write_file(path, messy_log(2000, 3, /*long_quotes=*/true));
  const Config c = messy_config({path});
  LoadReport serial_report;
  const PurchaseLog serial = parse(c, serial_report, 1, 1 << 30);
  for (const int threads : {2, 16}) {
    SCOPED_TRACE(threads);
    LoadReport report;
    const PurchaseLog log = parse(c, report, threads, 1);
    expect_same_log(log, serial);
    expect_same_report(report, serial_report);
  }
}

TEST(ParallelParse, FailPolicyReportsTheFirstBadRowWithItsFileLine) {
  TempDir dir;
  const std::string path = dir.file("f.csv");
  std::string text = "user_id,item_id,category\n";
  for (int i = 0; i < 5000; ++i) {
    text += "u" + std::to_string(i) + ",i1,c1\n";
    if (i == 1000) text += "u,\"two\nlines\",c1\n";  // a quoted newline before the bad rows
  }
  text += "u1,i1\n";  // line 5004: the first bad row, in the last part
  for (int i = 0; i < 100; ++i) text += "u1,i1,c1,extra\n";
  write_file(path, text);
  Config c;
  c.data.files = {path};
  c.data.columns.user = named("user_id");
  c.data.columns.item = named("item_id");
  c.data.columns.task = named("category");
  c.data.bad_rows = ml::config::BadRows::kFail;
  for (const int threads : {1, 2, 4}) {
    LoadReport report;
    try {
      parse(c, report, threads, 1);
      ADD_FAILURE() << "expected a DataError";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(path + ":5004: expected 3 fields, found 2"),
                std::string::npos)
          << threads << ": " << e.what();
    }
  }
}

// --- the parsed-log cache --------------------------------------------------------------------

class LogCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log_path_ = dir_.file("data/events.csv");
    fs::create_directories(dir_.path() / "data");
    write_file(log_path_, messy_log(800, 4));
    items_path_ = dir_.file("data/items.csv");
    write_file(items_path_, "item_id,weight,colour\ni1,2.5,red\ni2,,blue\ni9999,1,green\n");
    config_ = messy_config({log_path_});
    ml::config::SideTable items;
    items.files = {items_path_};
    items.key = named("item_id");
    items.features.numeric = {named("weight")};
    items.features.categorical = {named("colour")};
    config_.data.side_tables = {items};
    config_.run.dir = dir_.file("run");
  }

  PurchaseLog load(LoadReport& report, CacheOutcome& outcome) {
    return ml::data::load_purchase_log_cached(config_, report, &outcome);
  }

  // Loads through the cache, checks it against a fresh parse, and returns whether it hit.
  bool load_and_compare() {
    LoadReport report, fresh_report;
    CacheOutcome outcome;
    const PurchaseLog log = load(report, outcome);
    const PurchaseLog fresh = ml::data::load_purchase_log(config_, fresh_report);
    expect_same_log(log, fresh);
    expect_same_report(report, fresh_report);
    return outcome.hit;
  }

  std::string cache_file() const { return ml::data::log_cache_paths(config_).front(); }

  TempDir dir_;
  std::string log_path_, items_path_;
  Config config_;
};

TEST_F(LogCacheTest, SecondLoadComesFromTheCacheAndEqualsAParse) {
  LoadReport report;
  CacheOutcome outcome;
  load(report, outcome);
  EXPECT_FALSE(outcome.hit);
  // "auto": beside the first data file.
  EXPECT_EQ(fs::path(outcome.path).parent_path(), dir_.path() / "data" / ".metalearn-cache");
  EXPECT_TRUE(fs::exists(outcome.path));
  EXPECT_GT(report.non_utf8_cells, 0);  // so that the cache must carry them
  EXPECT_TRUE(load_and_compare());
  EXPECT_TRUE(load_and_compare());
}

TEST_F(LogCacheTest, ChangedOrTouchedFilesInvalidateIt) {
  EXPECT_FALSE(load_and_compare());
  EXPECT_TRUE(load_and_compare());
  // Same size, new content: the mtime and ctime change.
  std::string text = slurp(log_path_);
  text[text.find("\nu") + 1] = 'v';
  write_file(log_path_, text);
  EXPECT_FALSE(load_and_compare());
  EXPECT_TRUE(load_and_compare());
  // Only touched.
  fs::last_write_time(log_path_, fs::last_write_time(log_path_) + std::chrono::seconds(5));
  EXPECT_FALSE(load_and_compare());
  EXPECT_TRUE(load_and_compare());
  // A side table changed.
  write_file(items_path_, "item_id,weight,colour\ni1,3,red\n");
  EXPECT_FALSE(load_and_compare());
  EXPECT_TRUE(load_and_compare());
}

TEST_F(LogCacheTest, AConfigThatParsesDifferentlyDoesNotUseIt) {
  EXPECT_FALSE(load_and_compare());
  config_.data.columns.task = named("brand");
  EXPECT_FALSE(load_and_compare());
  config_.data.bad_rows = ml::config::BadRows::kSkip;
  config_.data.show_bad_rows = 2;
  EXPECT_FALSE(load_and_compare());
  EXPECT_TRUE(load_and_compare());
  // Where the cache lives is not part of what it holds.
  config_.data.cache = dir_.file("elsewhere");
  EXPECT_FALSE(load_and_compare());
  EXPECT_TRUE(fs::exists(cache_file()));
  EXPECT_TRUE(load_and_compare());
}

TEST_F(LogCacheTest, DamagedCachesAreRebuilt) {
  EXPECT_FALSE(load_and_compare());
  const std::string path = cache_file();
  const std::string good = slurp(path);
  ASSERT_GT(good.size(), 1000u);
  auto damaged = [&](std::string bytes) {
    write_file(path, bytes);
    const bool hit = load_and_compare();
    // Rebuilt: the next load hits again with a cache as good as the first.
    EXPECT_EQ(slurp(path), good);
    return hit;
  };
  EXPECT_FALSE(damaged(good.substr(0, good.size() / 2))) << "truncated";
  EXPECT_FALSE(damaged(good.substr(0, 5))) << "truncated in the magic";
  EXPECT_FALSE(damaged("")) << "empty";
  std::string flipped = good;
  flipped[flipped.size() * 2 / 3] ^= 0x40;
  EXPECT_FALSE(damaged(flipped)) << "one byte changed";
  std::string version = good;
  version[8] = 99;  // the format version follows the 8-byte magic
  EXPECT_FALSE(damaged(version)) << "another format version";
  std::string huge = good;
  for (int i = 0; i < 8; ++i) huge[good.size() - 200 + static_cast<std::size_t>(i)] = '\xff';
  EXPECT_FALSE(damaged(huge)) << "a size beyond the file";
  EXPECT_FALSE(damaged("not a cache at all, but long enough to have a header......")) << "junk";
  EXPECT_TRUE(load_and_compare());
}

TEST_F(LogCacheTest, AnUnwritableLocationDoesNotFailTheLoad) {
  // A regular file where the cache folder would be: nothing can be created under it (this
  // holds for root too, unlike permissions).
  write_file(dir_.file("blocked"), "a file, not a folder");
  config_.data.cache = dir_.file("blocked");
  LoadReport report;
  CacheOutcome outcome;
  const PurchaseLog log = load(report, outcome);
  EXPECT_FALSE(outcome.hit);
  EXPECT_EQ(outcome.path, "");
  EXPECT_GT(log.size(), 500u);
  EXPECT_FALSE(load_and_compare());  // still parsed each time, never failing
}

TEST_F(LogCacheTest, AutoFallsBackToTheRunDirectory) {
  write_file(dir_.file("data/.metalearn-cache"), "a file where the folder would go");
  LoadReport report;
  CacheOutcome outcome;
  load(report, outcome);
  EXPECT_EQ(fs::path(outcome.path).parent_path(), dir_.path() / "run" / ".metalearn-cache");
  EXPECT_TRUE(load_and_compare());
}

TEST_F(LogCacheTest, OffWritesNothing) {
  config_.data.cache = "off";
  EXPECT_FALSE(load_and_compare());
  EXPECT_FALSE(load_and_compare());
  EXPECT_FALSE(fs::exists(dir_.path() / "data" / ".metalearn-cache"));
  EXPECT_FALSE(fs::exists(dir_.path() / "run"));
}

}  // namespace
