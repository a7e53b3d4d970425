// Tests for loading purchase logs: column mapping, bad-row policy and reporting, side-table joins.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/purchase_log.hpp"
#include "util/errors.hpp"

#include "test_support.hpp"

namespace {

using ml::testing::contains;

namespace fs = std::filesystem;
using ml::DataError;
using ml::config::ColumnRef;
using ml::config::Config;
using ml::data::kNoId;
using ml::data::kNoTime;
using ml::data::LoadReport;
using ml::data::PurchaseLog;

constexpr std::int64_t kJuly2017 = 1498867200;  // 2017-07-01T00:00:00Z

ColumnRef named(const std::string& name) {
  ColumnRef r;
  r.name = name;
  return r;
}
ColumnRef at(int position) {
  ColumnRef r;
  r.position = position;
  return r;
}

class PurchaseLogTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& content) {
    const std::string p = temp_.file(name);
    ml::testing::write_file(p, content);
    EXPECT_TRUE(fs::is_regular_file(p)) << p;
    return p;
  }

  // An implicit-label config over `files` with columns by name; no aggregates, so only the
  // columns a test sets are required.
  static Config base(const std::vector<std::string>& files) {
    Config c;
    c.data.files = files;
    c.data.columns.user = named("user_id");
    c.data.columns.item = named("item_id");
    c.data.columns.task = named("category");
    c.features.aggregates = {};
    return c;
  }

  static PurchaseLog load(const Config& c, LoadReport& report) {
    ml::config::validate(c);  // a config built in code must still be a valid one
    return ml::data::load_purchase_log(c, report);
  }

  // The DataError message load() throws ("" and a failure when it throws none).
  static std::string load_error(const Config& c) {
    LoadReport report;
    try {
      load(c, report);
    } catch (const DataError& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected a DataError";
    return "";
  }

  ml::testing::TempDir temp_;
  const fs::path dir_ = temp_.path();
};

using PurchaseLogColumns = PurchaseLogTest;
using PurchaseLogBadRows = PurchaseLogTest;
using PurchaseLogSideTables = PurchaseLogTest;

int32_t id_of(const ml::data::Dictionary& d, const std::string& name) {
  auto id = d.find(name);
  EXPECT_TRUE(id.has_value()) << name;
  return id.value_or(-2);
}

TEST_F(PurchaseLogColumns, ByNameWithEveryRole) {
  const std::string content =
      "user_id,item_id,category,timestamp,price,quantity,event,stars\n"
      "u1,i1,food,2017-07-01,2.50,2,purchase,4\n"
      "u2,i2,toys,1498867200,10,1,view,\n"
      "u1,i2,toys,2017-07-01T12:00:00Z,10,,view,5\n";
  const std::string path = write("log.csv", content);
  Config c = base({path});
  c.data.columns.timestamp = named("timestamp");
  c.data.columns.price = named("price");
  c.data.columns.quantity = named("quantity");
  c.data.columns.event = named("event");
  c.data.columns.rating = named("stars");
  LoadReport report;
  const PurchaseLog log = load(c, report);

  ASSERT_EQ(log.size(), 3u);
  EXPECT_TRUE(log.has_user());
  EXPECT_TRUE(log.has_item());
  EXPECT_TRUE(log.has_timestamp());
  // Ids are dense, in order of first appearance.
  EXPECT_EQ(log.users.size(), 2u);
  EXPECT_EQ(log.users.name(0), "u1");
  EXPECT_EQ(log.user, (std::vector<std::int32_t>{0, 1, 0}));
  EXPECT_EQ(log.item, (std::vector<std::int32_t>{0, 1, 1}));
  EXPECT_EQ(log.tasks.name(log.task[0]), "food");
  EXPECT_EQ(log.task, (std::vector<std::int32_t>{0, 1, 1}));
  EXPECT_EQ(log.events.name(log.event[0]), "purchase");
  EXPECT_EQ(log.event[1], log.event[2]);
  // ISO date, unix seconds and ISO date-time in one column ("auto").
  EXPECT_EQ(log.timestamp,
            (std::vector<std::int64_t>{kJuly2017, kJuly2017, kJuly2017 + 12 * 3600}));
  EXPECT_FLOAT_EQ(log.price[0], 2.5f);
  EXPECT_FLOAT_EQ(log.price[1], 10.0f);
  EXPECT_FLOAT_EQ(log.quantity[0], 2.0f);
  EXPECT_TRUE(std::isnan(log.quantity[2]));  // empty cell: missing, not an error
  EXPECT_FLOAT_EQ(log.rating[0], 4.0f);
  EXPECT_TRUE(std::isnan(log.rating[1]));
  EXPECT_EQ(log.label_class, (std::vector<std::int32_t>{kNoId, kNoId, kNoId}));  // not configured

  EXPECT_EQ(report.files, std::vector<std::string>{path});
  EXPECT_EQ(report.rows_read, 3);
  EXPECT_EQ(report.rows_rejected, 0);
  EXPECT_TRUE(report.bad_rows.empty());
  EXPECT_EQ(report.rows_without_task, 0);
  EXPECT_EQ(report.bytes, static_cast<std::int64_t>(content.size()));
}

TEST_F(PurchaseLogColumns, UnconfiguredRolesAreAbsent) {
  const std::string path = write("log.csv", "category,item_id,event\nfood,i1,view\n");
  Config c = base({path});
  c.data.columns.user = {};
  c.task.label.kind = ml::config::LabelKind::kEventBinary;
  c.data.columns.event = named("event");
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_FALSE(log.has_user());
  EXPECT_FALSE(log.has_timestamp());
  EXPECT_EQ(log.user[0], kNoId);
  EXPECT_EQ(log.timestamp[0], kNoTime);
  EXPECT_TRUE(std::isnan(log.price[0]));
  EXPECT_EQ(log.users.size(), 0u);
}

TEST_F(PurchaseLogColumns, HeaderlessByPosition) {
  const std::string path = write("log.txt",
                                 "food;u1;i1;1498867200\n"
                                 "toys;u2;i1;1498870800\n");
  Config c = base({path});
  c.data.format.header = false;
  c.data.format.delimiter = ml::config::Delimiter::kSemicolon;
  c.data.columns.task = at(1);
  c.data.columns.user = at(2);
  c.data.columns.item = at(3);
  c.data.columns.timestamp = at(4);
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 2u);  // no header: the first line is data
  EXPECT_EQ(report.rows_read, 2);
  EXPECT_EQ(log.tasks.name(log.task[0]), "food");
  EXPECT_EQ(log.users.name(log.user[1]), "u2");
  EXPECT_EQ(log.item, (std::vector<std::int32_t>{0, 0}));
  EXPECT_EQ(log.timestamp[1] - log.timestamp[0], 3600);
}

TEST_F(PurchaseLogColumns, PositionBeyondWidthIsNamed) {
  const std::string path = write("log.txt", "food,u1,i1\n");
  Config c = base({path});
  c.data.format.header = false;
  c.data.columns.task = at(1);
  c.data.columns.user = at(2);
  c.data.columns.item = at(3);
  c.data.columns.price = at(7);
  const std::string m = load_error(c);
  EXPECT_NE(m.find("data.columns.price = 7"), std::string::npos) << m;
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("only 3 columns"), std::string::npos) << m;
}

TEST_F(PurchaseLogColumns, HeaderMatchIgnoresCaseAndPadding) {
  const std::string path = write("log.csv",
                                 "User_ID, ITEM_ID ,Category\n"
                                 "u1,i1,food\n");
  LoadReport report;
  const PurchaseLog log = load(base({path}), report);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log.users.name(log.user[0]), "u1");
  EXPECT_EQ(log.items.name(log.item[0]), "i1");
  EXPECT_EQ(log.tasks.name(log.task[0]), "food");
}

TEST_F(PurchaseLogColumns, ExactHeaderMatchWinsOverCaseInsensitive) {
  // Two columns differ only in case: the one spelled exactly as configured is used.
  const std::string path = write("log.csv",
                                 "USER_ID,user_id,item_id,category\n"
                                 "wrong,right,i1,food\n");
  LoadReport report;
  const PurchaseLog log = load(base({path}), report);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log.users.name(log.user[0]), "right");
}

TEST_F(PurchaseLogColumns, SeveralFilesShareIds) {
  const std::string a = write("a.csv",
                              "user_id,item_id,category\n"
                              "u1,i1,food\n"
                              "u2,i2,food\n");
  // The second part has its columns in another order: each file is mapped by its own header.
  const std::string b = write("b.csv",
                              "category,user_id,item_id\n"
                              "toys,u2,i1\n"
                              "toys,u3,i3\n");
  LoadReport report;
  const PurchaseLog log = load(base({a, b}), report);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log.users.size(), 3u);
  EXPECT_EQ(log.items.size(), 3u);
  EXPECT_EQ(log.user, (std::vector<std::int32_t>{0, 1, 1, 2}));
  EXPECT_EQ(log.item, (std::vector<std::int32_t>{0, 1, 0, 2}));
  EXPECT_EQ(log.task, (std::vector<std::int32_t>{0, 0, 1, 1}));
  EXPECT_EQ(log.tasks.name(1), "toys");
  EXPECT_EQ(report.rows_read, 4);
  EXPECT_EQ(report.files, (std::vector<std::string>{a, b}));
  EXPECT_EQ(report.bytes, static_cast<std::int64_t>(fs::file_size(a) + fs::file_size(b)));
}

TEST_F(PurchaseLogColumns, EmptyCellsAreMissingNotErrors) {
  const std::string path = write("log.csv",
                                 "user_id,item_id,category,timestamp,price\n"
                                 "u1,i1,,2017-07-01,2.0\n"
                                 ",i2,food,,\n"
                                 "u2,,food,1498867200,  \n"
                                 "u2,i1,  ,1498867200,1\n");
  Config c = base({path});
  c.data.columns.timestamp = named("timestamp");
  c.data.columns.price = named("price");
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 4u);  // rows without a task are kept as history
  EXPECT_EQ(report.rows_rejected, 0);
  EXPECT_EQ(report.rows_without_task, 2);
  EXPECT_EQ(log.task[0], kNoId);
  EXPECT_EQ(log.task[3], kNoId);  // blank after trimming
  EXPECT_EQ(log.tasks.size(), 1u);
  EXPECT_EQ(log.user[1], kNoId);
  EXPECT_EQ(log.timestamp[1], kNoTime);
  EXPECT_TRUE(std::isnan(log.price[1]));
  EXPECT_EQ(log.item[2], kNoId);
  EXPECT_TRUE(std::isnan(log.price[2]));
  EXPECT_FLOAT_EQ(log.price[3], 1.0f);
  EXPECT_EQ(log.users.size(), 2u);  // the empty user is not interned as an id
}

TEST_F(PurchaseLogColumns, ExplicitTimeFormatsAreStrict) {
  const std::string path = write("log.csv",
                                 "user_id,item_id,category,ts\n"
                                 "u1,i1,food,2017-07-01\n"
                                 "u1,i1,food,1498867200\n");
  Config c = base({path});
  c.data.columns.timestamp = named("ts");
  for (const char* format : {"unix", "iso8601"}) {
    c.data.time_format = ml::testing::choice<ml::TimeFormat>(format);
    LoadReport report;
    const PurchaseLog log = load(c, report);
    ASSERT_EQ(log.size(), 1u) << format;
    EXPECT_EQ(log.timestamp[0], kJuly2017) << format;
    EXPECT_EQ(report.rejected_by_reason["unparsable timestamp"], 1) << format;
    ASSERT_EQ(report.bad_rows.size(), 1u);
    EXPECT_EQ(report.bad_rows[0].line, std::string(format) == "unix" ? 2u : 3u) << format;
  }
}

TEST_F(PurchaseLogColumns, EpochUnitsByFormatAndByMagnitude) {
  // One instant (2017-07-01T00:00:30Z) as each exporter writes it.
  const std::string path = write("log.csv",
                                 "user_id,item_id,category,ts\n"
                                 "u1,i1,food,1498867230\n"
                                 "u1,i1,food,1498867230250\n"
                                 "u1,i1,food,1498867230250999\n"
                                 "u1,i1,food,1498867230250999999\n"
                                 "u1,i1,food,2017-07-01T00:00:30.25Z\n");
  Config c = base({path});
  c.data.columns.timestamp = named("ts");
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 5u);
  for (std::size_t r = 0; r < log.size(); ++r) EXPECT_EQ(log.timestamp[r], kJuly2017 + 30) << r;
  EXPECT_EQ(report.timestamps_read_as,
            (std::map<std::string, std::int64_t>{
                {"unix", 1}, {"unix_ms", 1}, {"unix_us", 1}, {"unix_ns", 1}, {"iso8601", 1}}));

  // An explicit unit reads every number in it; the others are out of range there.
  const std::pair<const char*, std::size_t> kept_line[] = {
      {"unix", 2}, {"unix_ms", 3}, {"unix_us", 4}, {"unix_ns", 5}};
  for (const auto& [format, line] : kept_line) {
    c.data.time_format = ml::testing::choice<ml::TimeFormat>(format);
    LoadReport r;
    const PurchaseLog one = load(c, r);
    std::size_t kept = 0;
    for (std::size_t i = 0; i < one.size(); ++i) kept += one.timestamp[i] == kJuly2017 + 30;
    EXPECT_EQ(kept, 1u) << format;
    EXPECT_EQ(r.timestamps_read_as.at(format), static_cast<std::int64_t>(one.size())) << format;
    for (const auto& bad : r.bad_rows) EXPECT_NE(bad.line, line) << format;
  }
}

TEST_F(PurchaseLogBadRows, ImplausibleTimesAreBadRowsNamingTheUnit) {
  // Milliseconds declared as seconds: the year 49467, not a purchase.
  const std::string path = write("log.csv",
                                 "user_id,item_id,category,ts\n"
                                 "u1,i1,food,1498867200\n"
                                 "u1,i2,food,1498867200000\n"
                                 "u1,i3,food,-5\n"
                                 "u1,i4,food,2100-01-01\n"
                                 "u1,i5,food,99999999999999999999\n");
  Config c = base({path});
  c.data.columns.timestamp = named("ts");
  c.data.time_format = ml::TimeFormat::kUnix;
  LoadReport report;
  PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log.timestamp[0], kJuly2017);
  EXPECT_EQ(report.rejected_by_reason["implausible timestamp"], 2);  // lines 3 and 4
  EXPECT_EQ(report.rejected_by_reason["unparsable timestamp"], 2);   // ISO under "unix"; 1e20
  ASSERT_EQ(report.bad_rows.size(), 4u);
  const std::string& ms = report.bad_rows[0].reason;
  EXPECT_EQ(report.bad_rows[0].line, 3u);
  EXPECT_NE(ms.find("'1498867200000' read as unix seconds"), std::string::npos) << ms;
  EXPECT_NE(ms.find("as unix milliseconds it is 2017-07-01T00:00:00"), std::string::npos) << ms;
  EXPECT_NE(ms.find("data.time_format = \"unix_ms\""), std::string::npos) << ms;
  EXPECT_EQ(report.bad_rows[1].line, 4u);
  EXPECT_NE(report.bad_rows[1].reason.find("1969-12-31"), std::string::npos)
      << report.bad_rows[1].reason;

  // auto: a column's magnitudes decide its unit, and what no unit makes plausible is refused.
  c.data.time_format = ml::TimeFormat::kAuto;
  c.data.bad_rows = ml::config::BadRows::kFail;
  const std::string m = load_error(c);
  EXPECT_NE(m.find(path + ":4: timestamp column: '-5' read as unix seconds (by its magnitude)"),
            std::string::npos)
      << m;
  c.data.bad_rows = ml::config::BadRows::kSkip;
  LoadReport automatic;
  log = load(c, automatic);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log.timestamp[1], kJuly2017);  // line 3, read as milliseconds
  EXPECT_EQ(automatic.rejected_by_reason["implausible timestamp"], 3);  // -5, 2100, 1e20 ns
}

TEST_F(PurchaseLogColumns, RowLevelFeatures) {
  const std::string path = write("log.csv",
                                 "category,event,discount,channel,query\n"
                                 "food,view,0.5,web,red shoes\n"
                                 "food,purchase,,app,\n"
                                 "food,view,2,,blue\n");
  Config c = base({path});
  c.data.columns.user = {};
  c.data.columns.item = {};
  c.task.label.kind = ml::config::LabelKind::kEventBinary;
  c.data.columns.event = named("event");
  c.data.features.numeric = {named("discount")};
  c.data.features.categorical = {named("channel")};
  c.data.features.text = {named("query")};
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 3u);
  const auto& f = log.features;
  ASSERT_EQ(f.numeric.size(), 1u);
  EXPECT_EQ(f.numeric[0].name, "discount");
  ASSERT_EQ(f.numeric[0].values.size(), 3u);
  EXPECT_FLOAT_EQ(f.numeric[0].values[0], 0.5f);
  EXPECT_TRUE(std::isnan(f.numeric[0].values[1]));
  ASSERT_EQ(f.categorical.size(), 1u);
  EXPECT_EQ(f.categorical[0].dictionary.name(f.categorical[0].values[1]), "app");
  EXPECT_EQ(f.categorical[0].values[2], kNoId);
  ASSERT_EQ(f.text.size(), 1u);
  ASSERT_EQ(f.text[0].size(), 3u);
  EXPECT_EQ(f.text[0].at(0), "red shoes");
  EXPECT_EQ(f.text[0].at(1), "");
  EXPECT_EQ(f.text[0].at(2), "blue");
}

TEST_F(PurchaseLogColumns, MissingColumnNamesKeyFileAndSuggestion) {
  const std::string path = write("log.csv", "user_id,item_id,category,price\nu1,i1,food,1\n");
  Config c = base({path});
  c.data.columns.price = named("prices");
  std::string m = load_error(c);
  EXPECT_NE(m.find("data.columns.price"), std::string::npos) << m;
  EXPECT_NE(m.find("'prices'"), std::string::npos) << m;
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'price'?"), std::string::npos) << m;
  EXPECT_NE(m.find("user_id, item_id, category, price"), std::string::npos) << m;

  c = base({path});
  c.data.columns.task = named("categry");
  m = load_error(c);
  EXPECT_NE(m.find("data.columns.task"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'category'?"), std::string::npos) << m;
}

TEST_F(PurchaseLogColumns, ColumnMissingInSecondFileNamesThatFile) {
  const std::string a = write("a.csv", "user_id,item_id,category\nu1,i1,food\n");
  const std::string b = write("b.csv", "user_id,item,category\nu1,i1,food\n");
  const std::string m = load_error(base({a, b}));
  EXPECT_NE(m.find("data.columns.item"), std::string::npos) << m;
  EXPECT_NE(m.find(b), std::string::npos) << m;
}

TEST_F(PurchaseLogColumns, MissingFileNamesPath) {
  const std::string a = write("a.csv", "user_id,item_id,category\nu1,i1,food\n");
  const std::string missing = (dir_ / "no_such_part.csv").string();
  const std::string m = load_error(base({a, missing}));
  EXPECT_NE(m.find(missing), std::string::npos) << m;
}

// Physical lines: 1 header, 2 good, 3-4 one quoted record spanning two lines, 5 blank,
// 6 too few fields, 7 bad price, 8 impossible date, 9 good.
constexpr const char* kWithBadRows =
    "user_id,item_id,category,timestamp,price,note\n"
    "u1,i1,food,2017-07-01,1.0,ok\n"
    "u1,i2,food,2017-07-01,1.5,\"two\n"
    "lines\"\n"
    "\n"
    "u2,i1,food,2017-07-01\n"
    "u2,i2,food,2017-07-01,abc,x\n"
    "u3,i1,food,2017-02-30,1.0,x\n"
    "u3,i2,food,1498867200,2.0,x\n";

Config with_price_and_time(Config c) {
  c.data.columns.timestamp = named("timestamp");
  c.data.columns.price = named("price");
  return c;
}

TEST_F(PurchaseLogBadRows, SkipCountsAndListsThemWithFileAndLine) {
  const std::string path = write("log.csv", kWithBadRows);
  Config c = with_price_and_time(base({path}));
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 3u);
  EXPECT_FLOAT_EQ(log.price[1], 1.5f);  // the record across two lines is kept
  EXPECT_FLOAT_EQ(log.price[2], 2.0f);
  EXPECT_EQ(report.rows_read, 6);
  EXPECT_EQ(report.rows_rejected, 3);
  EXPECT_EQ(report.rejected_by_reason,
            (std::map<std::string, std::int64_t>{
                {"wrong field count", 1}, {"unparsable number", 1}, {"unparsable timestamp", 1}}));
  ASSERT_EQ(report.bad_rows.size(), 3u);
  EXPECT_EQ(report.bad_rows[0].file, path);
  EXPECT_EQ(report.bad_rows[0].line, 6u);
  EXPECT_NE(report.bad_rows[0].reason.find("expected 6 fields, found 4"), std::string::npos)
      << report.bad_rows[0].reason;
  EXPECT_EQ(report.bad_rows[1].line, 7u);
  EXPECT_NE(report.bad_rows[1].reason.find("price"), std::string::npos);
  EXPECT_NE(report.bad_rows[1].reason.find("'abc'"), std::string::npos);
  EXPECT_EQ(report.bad_rows[2].line, 8u);
  EXPECT_NE(report.bad_rows[2].reason.find("'2017-02-30'"), std::string::npos);
  // Rejected rows leave nothing behind: u2 and u3 appear only through kept rows.
  EXPECT_EQ(log.users.size(), 2u);
  EXPECT_EQ(log.users.name(1), "u3");
}

TEST_F(PurchaseLogBadRows, ListIsCappedByShowBadRowsButCountIsNot) {
  const std::string path = write("log.csv", kWithBadRows);
  Config c = with_price_and_time(base({path}));
  c.data.show_bad_rows = 2;
  LoadReport report;
  load(c, report);
  EXPECT_EQ(report.rows_rejected, 3);
  ASSERT_EQ(report.bad_rows.size(), 2u);
  EXPECT_EQ(report.bad_rows[0].line, 6u);
  EXPECT_EQ(report.bad_rows[1].line, 7u);

  c.data.show_bad_rows = 0;
  LoadReport quiet;
  load(c, quiet);
  EXPECT_EQ(quiet.rows_rejected, 3);
  EXPECT_TRUE(quiet.bad_rows.empty());
}

TEST_F(PurchaseLogBadRows, LinesAreCountedPerFile) {
  const std::string a = write("a.csv", "user_id,item_id,category,price\nu1,i1,food,1\n");
  const std::string b = write("b.csv", "user_id,item_id,category,price\nu1,i1,food,x\n");
  Config c = base({a, b});
  c.data.columns.price = named("price");
  LoadReport report;
  load(c, report);
  ASSERT_EQ(report.bad_rows.size(), 1u);
  EXPECT_EQ(report.bad_rows[0].file, b);
  EXPECT_EQ(report.bad_rows[0].line, 2u);
}

TEST_F(PurchaseLogBadRows, FailStopsAtFirstWithFileLineAndReason) {
  const std::string path = write("log.csv", kWithBadRows);
  Config c = with_price_and_time(base({path}));
  c.data.bad_rows = ml::config::BadRows::kFail;
  std::string m = load_error(c);
  EXPECT_NE(m.find(path + ":6:"), std::string::npos) << m;
  EXPECT_NE(m.find("expected 6 fields, found 4"), std::string::npos) << m;
  EXPECT_NE(m.find("data.bad_rows"), std::string::npos) << m;

  const std::string price = write("price.csv",
                                  "user_id,item_id,category,price\n"
                                  "u1,i1,food,1\n"
                                  "u1,i1,food,12,5\n");
  Config p = base({price});
  p.data.columns.price = named("price");
  p.data.bad_rows = ml::config::BadRows::kFail;
  // "12,5" is a decimal comma here: an extra field, reported as such on line 3.
  m = load_error(p);
  EXPECT_NE(m.find(price + ":3:"), std::string::npos) << m;

  const std::string word = write("word.csv", "user_id,item_id,category,price\nu1,i1,food,one\n");
  p.data.files = {word};
  m = load_error(p);
  EXPECT_NE(m.find(word + ":2: price column: 'one' is not a number"), std::string::npos) << m;
}

TEST_F(PurchaseLogBadRows, NonFiniteAndOutOfRangeNumbersAreBadRows) {
  using namespace std::string_literals;
  const std::string path = write("log.csv",
                                 "user_id,item_id,category,price,discount\n"
                                 "u1,i1,food,1.5,0.5\n"
                                 "u1,i1,food,inf,0.5\n"
                                 "u1,i1,food,-Infinity,0.5\n"
                                 "u1,i1,food,NaN,0.5\n"
                                 "u1,i1,food,1e39,0.5\n"
                                 "u1,i1,food,3e38,-1e39\n"
                                 "u1,i1,food,2,nan\n"
                                 "u1,i1,food,4\0,0.5\n"s);
  Config c = base({path});
  c.data.columns.price = named("price");
  c.task.label.kind = ml::config::LabelKind::kEventBinary;
  c.data.columns.event = named("category");  // any column: event_binary admits row features
  c.data.features.numeric = {named("discount")};
  c.data.show_bad_rows = 10;
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_FLOAT_EQ(log.price[0], 1.5f);
  EXPECT_EQ(report.rejected_by_reason,
            (std::map<std::string, std::int64_t>{
                {"non-finite number", 4}, {"number out of range", 2}, {"unparsable number", 1}}));
  ASSERT_EQ(report.bad_rows.size(), 7u);
  const std::pair<std::size_t, std::string> expected[] = {
      {3, "price column: 'inf' is not a finite number"},
      {4, "price column: '-Infinity' is not a finite number"},
      {5, "price column: 'NaN' is not a finite number"},
      {6, "price column: '1e39' is out of range"},
      {7, "column 'discount': '-1e39' is out of range"},
      {8, "column 'discount': 'nan' is not a finite number"},
      // The NUL byte is shown, not written: the line stays whole.
      {9, "price column: '4\\x00' is not a number"}};
  for (std::size_t i = 0; i < report.bad_rows.size(); ++i) {
    EXPECT_EQ(report.bad_rows[i].line, expected[i].first) << i;
    EXPECT_NE(report.bad_rows[i].reason.find(expected[i].second), std::string::npos)
        << report.bad_rows[i].reason;
    EXPECT_EQ(report.bad_rows[i].reason.find('\0'), std::string::npos) << i;
  }

  // The same in a side table's numeric column, and under "fail" with file, line and column.
  const std::string items = write("items.csv", "item_id,weight\ni1,2\ni2,-inf\n");
  ml::config::SideTable t;
  t.files = {items};
  t.key = named("item_id");
  t.features.numeric = {named("weight")};
  c.data.side_tables = {t};
  c.data.bad_rows = ml::config::BadRows::kFail;
  c.data.files = {write("good.csv", "user_id,item_id,category,price,discount\nu1,i1,food,1,0\n")};
  const std::string m = load_error(c);
  EXPECT_NE(m.find(items + ":3: column 'weight': '-inf' is not a finite number"), std::string::npos)
      << m;
}

TEST_F(PurchaseLogBadRows, ACommandsOwnFileIsReadWithItsOptionsAndItsAdviceNamesThem) {
  // The run's log: seconds, comma-separated, bad rows stop the load.
  Config run = base({write("log.csv", "user_id,item_id,category,ts\nu1,i1,food,1498867200\n")});
  run.data.columns.timestamp = named("ts");
  run.data.time_format = ml::TimeFormat::kUnix;
  run.data.bad_rows = ml::config::BadRows::kFail;
  run.data.format.delimiter = ml::config::Delimiter::kComma;
  // A command's file from another export: semicolons, milliseconds, another user column.
  const std::string rows = write("rows.csv",
                                 "customer;item_id;category;ts\n"
                                 "u1;i1;food;1498867200000\n"
                                 "u2;i2;food;1498867260000\n");
  ml::config::InputFile input{rows, "--input", {}};
  LoadReport report;
  auto error_of = [&] {
    try {
      ml::data::load_input_file(run, input, report);
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string m = error_of();
  EXPECT_EQ(
      m.find("data.columns.user = 'user_id' (the run's config): no such column in '" + rows + "'"),
      0u)
      << m;
  EXPECT_TRUE(contains(m, ": set --delimiter to the one it uses")) << m;
  EXPECT_TRUE(contains(m, "; give --column user=COLUMN for this file")) << m;
  EXPECT_FALSE(contains(m, "data.format")) << m;

  input.format.delimiter = ";";
  input.format.columns = {"user=customer"};
  m = error_of();
  EXPECT_EQ(m.find(rows + ":2: timestamp column: '1498867200000' read as unix seconds"), 0u) << m;
  EXPECT_TRUE(contains(m, "give --time-format \"unix_ms\" if that is the column's unit")) << m;
  EXPECT_TRUE(contains(m,
                       "(data.bad_rows = \"fail\" (the run's config); give --bad-rows skip to "
                       "skip such rows)"))
      << m;

  input.format.bad_rows = "skip";
  input.format.time_format = "unix_ms";
  Config read_with;
  const PurchaseLog log = ml::data::load_input_file(run, input, report, {}, &read_with);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log.timestamp[0], kJuly2017);
  EXPECT_EQ(log.users.name(log.user[1]), "u2");
  EXPECT_EQ(read_with.data.files, std::vector<std::string>{rows});
  EXPECT_EQ(read_with.data.time_format, ml::TimeFormat::kUnixMs);
  EXPECT_EQ(run.data.time_format, ml::TimeFormat::kUnix);  // the run's config is unchanged

  // A value the config's key refuses is the option's usage error.
  input.format.bad_rows = "ignore";
  try {
    ml::data::load_input_file(run, input, report);
    ADD_FAILURE() << "--bad-rows ignore was accepted";
  } catch (const ml::UsageError& e) {
    EXPECT_EQ(std::string(e.what()).find("--input '" + rows + "': --bad-rows 'ignore': "), 0u)
        << e.what();
  }
}

TEST_F(PurchaseLogBadRows, ANumberWhoseSquareAFloatCannotHoldIsOutOfRange) {
  // 3e38 fits a float, but the squared loss of a regression target (and the variance behind
  // standardisation) squares it: refused at the row, naming file, line, column and value.
  const std::string path = write("big.csv",
                                 "user_id,item_id,category,rating,weight\n"
                                 "u1,i1,food,1.8e19,-1.8e19\n"
                                 "u1,i2,food,3e38,1\n"
                                 "u1,i3,food,1,-2e19\n");
  Config c = base({path});
  c.task.label.kind = ml::config::LabelKind::kRegression;
  c.data.columns.rating = named("rating");
  c.data.features.numeric = {named("weight")};
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 1u);  // the bound itself is kept
  EXPECT_FLOAT_EQ(log.rating[0], 1.8e19f);
  EXPECT_EQ(report.rejected_by_reason,
            (std::map<std::string, std::int64_t>{{"number out of range", 2}}));
  ASSERT_EQ(report.bad_rows.size(), 2u);
  EXPECT_EQ(report.bad_rows[0].line, 3u);
  EXPECT_EQ(report.bad_rows[0].reason,
            "rating column: '3e38' is out of range (beyond +-1.8e19: the loss and the feature "
            "statistics square it, and a float holds at most 3.4e38)");
  EXPECT_EQ(report.bad_rows[1].line, 4u);
  EXPECT_EQ(report.bad_rows[1].reason.find("column 'weight': '-2e19' is out of range"), 0u)
      << report.bad_rows[1].reason;
  c.data.bad_rows = ml::config::BadRows::kFail;
  const std::string m = load_error(c);
  EXPECT_EQ(m.find(path + ":3: rating column: '3e38' is out of range"), 0u) << m;
}

TEST_F(PurchaseLogBadRows, ALogWithoutRowsNamesWhy) {
  const std::string empty = write("empty.csv", "");
  const std::string header = write("header.csv", "user_id,item_id,category,price\n");
  const std::string bad = write("bad.csv", "user_id,item_id,category,price\nu1,i1,food,x\n");
  Config c = base({empty});
  c.data.columns.price = named("price");
  std::string m = load_error(c);
  EXPECT_NE(m.find("the log has no rows: '" + empty + "' is empty"), std::string::npos) << m;
  c.data.files = {header};
  m = load_error(c);
  EXPECT_NE(m.find("'" + header + "' has only its header line"), std::string::npos) << m;
  c.data.files = {empty, header};
  m = load_error(c);
  EXPECT_NE(m.find("'" + empty + "' is empty, '" + header + "' has only its header line"),
            std::string::npos)
      << m;
  // Files with nothing to read were said to have "only a header line" they do not have.
  const std::string blank = write("blank.csv", "\n\r\n\n");
  const std::string bom = write("bom.csv", "\xEF\xBB\xBF");
  c.data.files = {blank, bom};
  m = load_error(c);
  EXPECT_NE(
      m.find("'" + blank + "' holds only blank lines, '" + bom + "' holds only a byte-order mark"),
      std::string::npos)
      << m;
  c.data.files = {bad};
  m = load_error(c);
  EXPECT_NE(m.find("every one of the 1 rows of the purchase log was rejected"), std::string::npos)
      << m;
  EXPECT_NE(m.find("the first: " + bad + ":2: price column: 'x'"), std::string::npos) << m;
  // An empty part of a log split in parts is no problem.
  c.data.files = {empty, write("rows.csv", "user_id,item_id,category,price\nu1,i1,food,2\n")};
  LoadReport report;
  EXPECT_EQ(load(c, report).size(), 1u);
  // A side table without rows joins nothing: a mistake, named.
  ml::config::SideTable t;
  t.files = {write("items.csv", "item_id,weight\n")};
  t.key = named("item_id");
  t.features.numeric = {named("weight")};
  c.data.side_tables = {t};
  m = load_error(c);
  EXPECT_NE(m.find("data.side_tables[0]: '" + t.files[0] + "' has only its header line"),
            std::string::npos)
      << m;
}

TEST_F(PurchaseLogBadRows, UnclosedQuoteIsReported) {
  const std::string path = write("log.csv",
                                 "user_id,item_id,category\n"
                                 "u1,i1,food\n"
                                 "u2,i2,\"toys\n");
  LoadReport report;
  const PurchaseLog log = load(base({path}), report);
  EXPECT_EQ(log.size(), 1u);
  EXPECT_EQ(report.rows_rejected, 1);
  ASSERT_EQ(report.bad_rows.size(), 1u);
  EXPECT_EQ(report.bad_rows[0].line, 3u);
}

TEST_F(PurchaseLogSideTables, JoinOnItemAndUser) {
  const std::string log_path = write("log.csv",
                                     "user_id,item_id,category\n"
                                     "u1,i1,food\n"
                                     "u2,i2,food\n"
                                     "u1,i3,toys\n"
                                     "u3,i1,toys\n");
  // Rows in another order than the log's ids, a duplicate key, and an item the log lacks.
  const std::string items = write("items.csv",
                                  "item_id,brand,weight,title\n"
                                  "i3,acme,3.5,\"Red, big\"\n"
                                  "i1,zeta,1.25,small thing\n"
                                  "i1,dup,9,duplicate\n"
                                  "i9,acme,7,unknown item\n");
  const std::string users = write("users.csv",
                                  "uid;age;segment\n"
                                  "u2;31;gold\n"
                                  "u1;;silver\n"
                                  "u8;abc;gold\n"
                                  "u7;50;bronze\n");
  Config c = base({log_path});
  ml::config::SideTable item_table;
  item_table.files = {items};
  item_table.join = ml::config::JoinKey::kItem;
  item_table.key = named("item_id");
  item_table.features.categorical = {named("brand")};
  item_table.features.numeric = {named("weight")};
  item_table.features.text = {named("title")};
  item_table.duplicates = ml::config::DuplicateKeys::kFirst;
  ml::config::SideTable user_table;
  user_table.files = {users};
  user_table.format.delimiter = ml::config::Delimiter::kSemicolon;
  user_table.join = ml::config::JoinKey::kUser;
  user_table.key = named("uid");
  user_table.features.numeric = {named("age")};
  user_table.features.categorical = {named("segment")};
  c.data.side_tables = {item_table, user_table};
  LoadReport report;
  const PurchaseLog log = load(c, report);

  ASSERT_EQ(log.size(), 4u);
  const std::int32_t i1 = id_of(log.items, "i1"), i2 = id_of(log.items, "i2"),
                     i3 = id_of(log.items, "i3"), i9 = id_of(log.items, "i9");
  EXPECT_EQ(i9, 3);  // interned after the log's own items
  ASSERT_EQ(log.items.size(), 4u);

  const auto& ia = log.item_attributes;
  ASSERT_EQ(ia.numeric.size(), 1u);
  ASSERT_EQ(ia.categorical.size(), 1u);
  ASSERT_EQ(ia.text.size(), 1u);
  EXPECT_EQ(ia.numeric[0].name, "weight");
  ASSERT_EQ(ia.numeric[0].values.size(), log.items.size());
  EXPECT_FLOAT_EQ(ia.numeric[0].values[i1], 1.25f);  // the first row of i1 wins
  EXPECT_TRUE(std::isnan(ia.numeric[0].values[i2]));
  EXPECT_FLOAT_EQ(ia.numeric[0].values[i3], 3.5f);
  EXPECT_FLOAT_EQ(ia.numeric[0].values[i9], 7.0f);
  const auto& brand = ia.categorical[0];
  ASSERT_EQ(brand.values.size(), log.items.size());
  EXPECT_EQ(brand.dictionary.name(brand.values[i1]), "zeta");
  EXPECT_EQ(brand.values[i2], kNoId);
  EXPECT_EQ(brand.dictionary.name(brand.values[i3]), "acme");
  EXPECT_EQ(brand.values[i9], brand.values[i3]);
  EXPECT_FALSE(brand.dictionary.find("dup").has_value());  // the duplicate row is not read
  const auto& title = ia.text[0];
  ASSERT_EQ(title.size(), log.items.size());
  EXPECT_EQ(title.at(i1), "small thing");
  EXPECT_EQ(title.at(i2), "");
  EXPECT_EQ(title.at(i3), "Red, big");
  EXPECT_EQ(title.at(i9), "unknown item");

  const std::int32_t u1 = id_of(log.users, "u1"), u2 = id_of(log.users, "u2"),
                     u3 = id_of(log.users, "u3"), u7 = id_of(log.users, "u7");
  EXPECT_FALSE(log.users.find("u8").has_value());  // its row was rejected before interning
  ASSERT_EQ(log.users.size(), 4u);
  const auto& ua = log.user_attributes;
  ASSERT_EQ(ua.numeric.size(), 1u);
  ASSERT_EQ(ua.numeric[0].values.size(), log.users.size());
  EXPECT_TRUE(std::isnan(ua.numeric[0].values[u1]));  // empty cell
  EXPECT_FLOAT_EQ(ua.numeric[0].values[u2], 31.0f);
  EXPECT_TRUE(std::isnan(ua.numeric[0].values[u3]));  // no row for u3
  EXPECT_FLOAT_EQ(ua.numeric[0].values[u7], 50.0f);
  const auto& segment = ua.categorical[0];
  ASSERT_EQ(segment.values.size(), log.users.size());
  EXPECT_EQ(segment.dictionary.name(segment.values[u1]), "silver");
  EXPECT_EQ(segment.values[u3], kNoId);
  EXPECT_TRUE(ia.text.size() == 1 && ua.text.empty());

  ASSERT_EQ(report.side_tables.size(), 2u);
  const auto& ri = report.side_tables[0];
  EXPECT_EQ(ri.join, "item");
  EXPECT_EQ(ri.files, std::vector<std::string>{items});
  EXPECT_EQ(ri.rows, 4);
  EXPECT_EQ(ri.rejected, 0);
  EXPECT_EQ(ri.duplicates, "first");
  EXPECT_EQ(ri.duplicate_keys, 1);
  EXPECT_EQ(ri.log_ids_matched, 2);  // i1, i3 of the log's i1, i2, i3
  EXPECT_EQ(ri.log_ids_total, 3);
  const auto& ru = report.side_tables[1];
  EXPECT_EQ(ru.join, "user");
  EXPECT_EQ(ru.rows, 4);
  EXPECT_EQ(ru.rejected, 1);
  EXPECT_EQ(ru.duplicate_keys, 0);
  EXPECT_EQ(ru.log_ids_matched, 2);  // u1, u2 of u1, u2, u3
  EXPECT_EQ(ru.log_ids_total, 3);
  // The side table's bad row is reported with its own file and line; the log had none.
  EXPECT_EQ(report.rows_rejected, 0);
  ASSERT_EQ(report.bad_rows.size(), 1u);
  EXPECT_EQ(report.bad_rows[0].file, users);
  EXPECT_EQ(report.bad_rows[0].line, 4u);
  EXPECT_EQ(report.rejected_by_reason["unparsable number"], 1);
}

TEST_F(PurchaseLogSideTables, TwoTablesOnItemsArePaddedToAllIds) {
  const std::string log_path = write("log.csv", "user_id,item_id,category\nu1,i1,food\n");
  const std::string first = write("first.csv", "item_id,weight\ni1,2\n");
  // The second table adds an item the first never saw: the first's column must still cover it.
  const std::string second = write("second.csv", "item_id,colour\ni2,red\ni1,blue\n");
  Config c = base({log_path});
  ml::config::SideTable a;
  a.files = {first};
  a.key = named("item_id");
  a.features.numeric = {named("weight")};
  ml::config::SideTable b;
  b.files = {second};
  b.key = named("item_id");
  b.features.text = {named("colour")};
  c.data.side_tables = {a, b};
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.items.size(), 2u);
  const auto& ia = log.item_attributes;
  ASSERT_EQ(ia.numeric.size(), 1u);
  ASSERT_EQ(ia.numeric[0].values.size(), 2u);
  EXPECT_FLOAT_EQ(ia.numeric[0].values[0], 2.0f);
  EXPECT_TRUE(std::isnan(ia.numeric[0].values[1]));
  ASSERT_EQ(ia.text.size(), 1u);
  ASSERT_EQ(ia.text[0].size(), 2u);
  EXPECT_EQ(ia.text[0].at(0), "blue");
  EXPECT_EQ(ia.text[0].at(1), "red");
  EXPECT_EQ(report.side_tables[1].log_ids_matched, 1);
  EXPECT_EQ(report.side_tables[1].log_ids_total, 1);
}

TEST_F(PurchaseLogSideTables, SeveralFilesAndErrors) {
  const std::string log_path =
      write("log.csv", "user_id,item_id,category\nu1,i1,food\nu1,i2,food\n");
  const std::string p1 = write("p1.csv", "item_id,weight\ni2,2\n");
  const std::string p2 = write("p2.csv", "weight,item_id\n3,i1\n4,i2\n");
  Config c = base({log_path});
  ml::config::SideTable t;
  t.files = {p1, p2};
  t.key = named("item_id");
  t.features.numeric = {named("weight")};
  t.duplicates = ml::config::DuplicateKeys::kFirst;
  c.data.side_tables = {t};
  LoadReport report;
  const PurchaseLog log = load(c, report);
  EXPECT_FLOAT_EQ(log.item_attributes.numeric[0].values[0], 3.0f);
  EXPECT_FLOAT_EQ(log.item_attributes.numeric[0].values[1], 2.0f);  // first file's row wins
  EXPECT_EQ(report.side_tables[0].duplicate_keys, 1);
  EXPECT_EQ(report.side_tables[0].log_ids_matched, 2);

  c.data.side_tables[0].key = named("item");
  std::string m = load_error(c);
  EXPECT_NE(m.find("data.side_tables[0].key"), std::string::npos) << m;
  EXPECT_NE(m.find(p1), std::string::npos) << m;

  c.data.side_tables[0].key = named("item_id");
  c.data.side_tables[0].features.numeric = {named("wieght")};
  m = load_error(c);
  EXPECT_NE(m.find("data.side_tables[0].features.numeric[0]"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'weight'?"), std::string::npos) << m;

  c.data.side_tables[0].features.numeric = {named("weight")};
  c.data.side_tables[0].files = {(dir_ / "gone.csv").string()};
  m = load_error(c);
  EXPECT_NE(m.find((dir_ / "gone.csv").string()), std::string::npos) << m;
}

TEST_F(PurchaseLogSideTables, DuplicateKeysAreAnErrorUnlessThePolicySaysFirst) {
  const std::string log_path = write("log.csv", "user_id,item_id,category\nu1,i1,food\n");
  // A multi-valued attribute: i1 has two genres.
  const std::string p1 = write("p1.csv", "item_id,genre\ni1,drama\ni2,comedy\n");
  const std::string p2 = write("p2.csv", "item_id,genre\ni3,horror\ni1,comedy\n");
  Config c = base({log_path});
  ml::config::SideTable t;
  t.files = {p1, p2};
  t.key = named("item_id");
  t.features.categorical = {named("genre")};
  c.data.side_tables = {t};
  const std::string m = load_error(c);
  EXPECT_NE(m.find(p2 + ":3: item id 'i1' again (first at " + p1 + ":2)"), std::string::npos) << m;
  EXPECT_NE(m.find("data.side_tables[0].duplicates = \"first\""), std::string::npos) << m;

  c.data.side_tables[0].duplicates = ml::config::DuplicateKeys::kFirst;
  LoadReport report;
  const PurchaseLog log = load(c, report);
  const auto& genre = log.item_attributes.categorical[0];
  EXPECT_EQ(genre.dictionary.name(genre.values[0]), "drama");
  EXPECT_EQ(report.side_tables[0].duplicates, "first");
  EXPECT_EQ(report.side_tables[0].duplicate_keys, 1);
}

TEST_F(PurchaseLogSideTables, TaskAndClassColumnsFromSideTables) {
  // The log names only items; brand and type are item attributes, in the second item table.
  const std::string log_path = write("log.csv",
                                     "user_id,item_id\n"
                                     "u1,i1\n"
                                     "u1,i2\n"
                                     "u2,i3\n"
                                     "u2,i9\n"  // no row in the item table
                                     "u3,i4\n"  // a row, but no brand
                                     "u3,i1\n");
  const std::string weights = write("weights.csv", "item_id,weight\ni1,1\ni2,2\n");
  const std::string items = write("items.csv",
                                  "item_id,type,brand\n"
                                  "i5,soap,unused\n"  // a brand no log row has
                                  "i3,shoe,zeta\n"
                                  "i1,shoe,acme\n"
                                  "i2,soap,acme\n"
                                  "i4,soap,\n");
  Config c = base({log_path});
  c.data.columns.task = named("brand");
  c.data.columns.task_from = ml::config::ColumnSource::kItem;
  c.task.label.class_column = named("type");
  c.task.label.class_from = ml::config::ColumnSource::kItem;
  ml::config::SideTable w;
  w.files = {weights};
  w.key = named("item_id");
  w.features.numeric = {named("weight")};
  ml::config::SideTable t;
  t.files = {items};
  t.key = named("item_id");
  t.features.categorical = {named("type")};
  c.data.side_tables = {w, t};
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 6u);
  auto task_of = [&](std::size_t r) {
    return log.task[r] == kNoId ? std::string("-") : log.tasks.name(log.task[r]);
  };
  auto class_of = [&](std::size_t r) {
    return log.label_class[r] == kNoId ? std::string("-") : log.classes.name(log.label_class[r]);
  };
  const std::vector<std::string> tasks = {"acme", "acme", "zeta", "-", "-", "acme"};
  const std::vector<std::string> classes = {"shoe", "soap", "shoe", "-", "soap", "shoe"};
  for (std::size_t r = 0; r < log.size(); ++r) {
    EXPECT_EQ(task_of(r), tasks[r]) << r;
    EXPECT_EQ(class_of(r), classes[r]) << r;
  }
  // Ids in order of first appearance in the log, as a log column's would be; no unused brand.
  EXPECT_EQ(log.tasks.names(), (std::vector<std::string>{"acme", "zeta"}));
  EXPECT_EQ(report.rows_without_task, 2);

  c.data.columns.task = named("maker");
  const std::string m = load_error(c);
  EXPECT_NE(m.find("data.columns.task = 'maker' (from the item table): no side table with "
                   "join = \"item\" has that column"),
            std::string::npos)
      << m;
}

// --- repeated names, delimiters, line ends and encodings as exports write them -----------------

using PurchaseLogExports = PurchaseLogTest;

TEST_F(PurchaseLogExports, RepeatedHeaderNameIsRefusedNamingEveryPosition) {
  // Net and gross price under one name: reading the first silently would be a coin toss.
  const std::string path = write("log.csv",
                                 "user_id,item_id,category,price,price\n"
                                 "u1,i1,food,10,12\n");
  Config c = base({path});
  c.data.columns.price = named("price");
  const std::string m = load_error(c);
  EXPECT_TRUE(contains(m, "data.columns.price = 'price'")) << m;
  EXPECT_TRUE(contains(m, path)) << m;
  EXPECT_TRUE(contains(m, "2 columns named 'price' (#4, #5)")) << m;
  EXPECT_TRUE(contains(m, "pick one by its 1-based position, e.g. data.columns.price = 5")) << m;

  // Picking by position reads that very column; the other roles still go by name.
  c.data.columns.price = at(5);
  LoadReport report;
  const PurchaseLog log = load(c, report);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_FLOAT_EQ(log.price[0], 12.0f);
  EXPECT_EQ(log.tasks.name(log.task[0]), "food");

  // A repeated name that no key asks for is no one's problem.
  c.data.columns.price = ColumnRef();
  EXPECT_EQ(load(c, report).size(), 1u);
}

TEST_F(PurchaseLogExports, RepeatedNameUpToCaseIsRefusedToo) {
  const std::string path = write("log.csv", "user_id,item_id,Category,CATEGORY \nu1,i1,a,b\n");
  const std::string m = load_error(base({path}));
  EXPECT_TRUE(contains(m, "data.columns.task = 'category'")) << m;
  EXPECT_TRUE(contains(m, "2 columns that match 'category' (#3 'Category', #4 'CATEGORY ')")) << m;
}

TEST_F(PurchaseLogExports, RepeatedNameInASideTableNamesItsKey) {
  const std::string log_path = write("log.csv", "user_id,item_id,category\nu1,i1,food\n");
  const std::string items = write("items.csv", "item_id,brand,item_id\ni1,acme,i1\n");
  Config c = base({log_path});
  ml::config::SideTable t;
  t.files = {items};
  t.key = named("item_id");
  t.features.categorical = {named("brand")};
  c.data.side_tables = {t};
  const std::string m = load_error(c);
  EXPECT_TRUE(contains(m, "data.side_tables[0].key = 'item_id'")) << m;
  EXPECT_TRUE(contains(m, "(#1, #3)")) << m;
}

TEST_F(PurchaseLogExports, PipeSeparatedFileIsDetected) {
  const std::string path = write("log.psv", "user_id|item_id|category\nu1|i1|salt, sea\n");
  LoadReport report;
  const PurchaseLog log = load(base({path}), report);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log.tasks.name(log.task[0]), "salt, sea");
}

TEST_F(PurchaseLogExports, SingleColumnHeaderNamesTheDelimiterAndItsKey) {
  const std::string colon = write("log.csv", "user_id:item_id:category\nu1:i1:food\n");
  std::string m = load_error(base({colon}));
  EXPECT_TRUE(contains(m, "no such column")) << m;
  EXPECT_TRUE(contains(m, "it reads as a single column with the detected delimiter ','")) << m;
  EXPECT_TRUE(contains(m, "set data.format.delimiter to the one it uses")) << m;

  // A delimiter given in the config is named as given, not as detected.
  const std::string comma = write("comma.csv", "user_id,item_id,category\nu1,i1,food\n");
  Config c = base({comma});
  c.data.format.delimiter = ml::config::Delimiter::kSemicolon;
  m = load_error(c);
  EXPECT_TRUE(contains(m, "single column with the delimiter ';'")) << m;

  // Headerless, by position: the same hint after "has only 1 columns".
  c.data.format = {};
  c.data.format.header = false;
  c.data.files = {write("bare.csv", "u1:i1:food\n")};
  c.data.columns.user = at(1);
  c.data.columns.item = at(2);
  c.data.columns.task = at(3);
  m = load_error(c);
  EXPECT_TRUE(contains(m, "has only 1 columns; it reads as a single column")) << m;

  // A file of one column on purpose says nothing about delimiters when a column is missing
  // from a wider file.
  const std::string wide = write("wide.csv", "user_id,item_id,cat\nu1,i1,food\n");
  m = load_error(base({wide}));
  EXPECT_FALSE(contains(m, "single column")) << m;
}

TEST_F(PurchaseLogExports, TrailingDelimiterOnEveryRowIsAccepted) {
  const std::string path = write("log.csv",
                                 "user_id,item_id,category\n"
                                 "u1,i1,food,\n"
                                 "u2,i2,toys,\n"
                                 "u3,i3,toys,extra\n");
  LoadReport report;
  const PurchaseLog log = load(base({path}), report);
  EXPECT_EQ(log.size(), 2u);
  EXPECT_EQ(report.rows_rejected, 1);  // only the row whose extra field holds something
  ASSERT_EQ(report.bad_rows.size(), 1u);
  EXPECT_EQ(report.bad_rows[0].line, 4u);
}

TEST_F(PurchaseLogExports, ClassicMacLineEndsGiveRowsAndLines) {
  const std::string path = write(
      "mac.csv", "user_id,item_id,category,price\ru1,i1,food,1\ru2,i2,food,x\ru3,i3,toys,2\r");
  Config c = base({path});
  c.data.columns.price = named("price");
  LoadReport report;
  const PurchaseLog log = load(c, report);
  EXPECT_EQ(log.size(), 2u);
  EXPECT_EQ(report.rows_read, 3);
  ASSERT_EQ(report.bad_rows.size(), 1u);
  EXPECT_EQ(report.bad_rows[0].line, 3u);
  EXPECT_EQ(log.tasks.name(log.task[1]), "toys");
}

TEST_F(PurchaseLogExports, AnEscapedByteAndItsSpellingAreTwoIds) {
  // "Caf" + byte 0xE9 (Latin-1) and the UTF-8 text `Caf\xE9` typed out: the escape doubles the
  // latter's backslash, so they stay two tasks (and two users). A header name with a backslash
  // is matched as written.
  const std::string path = write("collide.csv",
                                 "user_id,item_id,cat\\egory\n"
                                 "u1,i1,Caf\xE9\n"
                                 "u1,i2,Caf\\xE9\n"
                                 "u\xE9,i3,Caf\\xE9\n"
                                 "u\\xE9,i3,Caf\xE9\n");
  auto config = base({path});
  config.data.columns.task = named("cat\\egory");
  LoadReport report;
  const PurchaseLog log = load(config, report);
  ASSERT_EQ(log.size(), 4u);
  ASSERT_EQ(log.tasks.size(), 2u);
  EXPECT_EQ(log.tasks.name(log.task[0]), "Caf\\xE9");
  EXPECT_EQ(log.tasks.name(log.task[1]), "Caf\\\\xE9");
  EXPECT_EQ(log.task[2], log.task[1]);
  EXPECT_EQ(log.task[3], log.task[0]);
  ASSERT_EQ(log.users.size(), 3u);
  EXPECT_EQ(log.users.name(log.user[2]), "u\\xE9");
  EXPECT_EQ(log.users.name(log.user[3]), "u\\\\xE9");
  EXPECT_EQ(report.non_utf8_cells, 3);  // only the real bytes count as not UTF-8
}

TEST_F(PurchaseLogExports, NonUtf8CellsAreKeptEscapedAndReportedWithFileAndLine) {
  // A Latin-1 export: two categories that differ only in their accented letter stay apart.
  const std::string path = write("latin1.csv",
                                 "user_id,item_id,category\n"
                                 "u1,i1,food\n"
                                 "u1,i2,Cr\xE8me\n"
                                 "u2,i3,Cr\xE9me\n"
                                 "u\xE9,i3,food\n");
  LoadReport report;
  const PurchaseLog log = load(base({path}), report);
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log.tasks.name(log.task[1]), "Cr\\xE8me");
  EXPECT_EQ(log.tasks.name(log.task[2]), "Cr\\xE9me");
  EXPECT_EQ(log.users.name(log.user[3]), "u\\xE9");
  EXPECT_EQ(report.non_utf8_cells, 3);
  EXPECT_EQ(report.first_non_utf8.file, path);
  EXPECT_EQ(report.first_non_utf8.line, 3u);
  EXPECT_EQ(report.first_non_utf8.reason, "column 3 ('category'): byte 0xE8 is not UTF-8");
  const auto warnings = ml::data::load_warnings(report);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "3 cell(s) are not UTF-8")) << warnings[0];
  EXPECT_TRUE(contains(warnings[0], path + ":3: column 3")) << warnings[0];
  EXPECT_TRUE(contains(warnings[0], "iconv -f latin1 -t utf-8")) << warnings[0];
}

TEST_F(PurchaseLogBadRows, WarningsSayHowManyWhyAndListTheFirst) {
  const std::string path = write("log.csv", kWithBadRows);
  Config c = with_price_and_time(base({path}));
  c.data.show_bad_rows = 2;
  LoadReport report;
  load(c, report);
  const auto lines = ml::data::load_warnings(report);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(contains(lines[0], "rejected 3 of 6 log rows (data.bad_rows = \"skip\")"))
      << lines[0];
  EXPECT_TRUE(contains(lines[0], "unparsable number 1")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "unparsable timestamp 1")) << lines[0];
  EXPECT_TRUE(contains(lines[0], "wrong field count 1")) << lines[0];
  EXPECT_TRUE(contains(lines[1], path + ":6: expected 6 fields, found 4")) << lines[1];
  EXPECT_TRUE(contains(lines[2], path + ":7: price column")) << lines[2];

  // A clean load warns about nothing.
  LoadReport clean;
  load(base({write("ok.csv", "user_id,item_id,category\nu1,i1,food\n")}), clean);
  EXPECT_TRUE(ml::data::load_warnings(clean).empty());
}

TEST_F(PurchaseLogBadRows, SideTableRejectionsAreInTheWarnings) {
  const std::string log_path = write("log.csv", "user_id,item_id,category\nu1,i1,food\n");
  const std::string items = write("items.csv", "item_id,weight\ni1,2\ni2,heavy\n");
  Config c = base({log_path});
  ml::config::SideTable t;
  t.files = {items};
  t.key = named("item_id");
  t.features.numeric = {named("weight")};
  c.data.side_tables = {t};
  LoadReport report;
  load(c, report);
  const auto lines = ml::data::load_warnings(report);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(contains(lines[0], "rejected 1 of 2 rows of the item table " + items)) << lines[0];
  EXPECT_TRUE(contains(lines[1], items + ":3:")) << lines[1];
}

TEST_F(PurchaseLogBadRows, EveryRowRejectedIsAnErrorSayingWhy) {
  // Left to the next step, an empty log reads as "no training task qualifies".
  const std::string path = write("log.csv",
                                 "user_id,item_id,category\n"
                                 "u1,i1,food,x\n"
                                 "u2,i2,food,y\n");
  const std::string m = load_error(base({path}));
  EXPECT_TRUE(contains(m, "every one of the 2 rows of the purchase log was rejected")) << m;
  EXPECT_TRUE(contains(m, "wrong field count 2")) << m;
  EXPECT_TRUE(contains(m, "the first: " + path + ":2: expected 3 fields, found 4")) << m;
}

}  // namespace
