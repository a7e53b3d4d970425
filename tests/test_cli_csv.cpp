// End-to-end tests of how the binary meets CSV files as shops export them: the line a user
// sees for a file that is not text, a repeated column name, a delimiter it cannot see, a log
// whose every row is rejected; the warnings train gives for rejected rows and cells that are
// not UTF-8; and that such cells reach the checkpoint, which used to fail at its first save.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "util/errors.hpp"
#include "util/utf8.hpp"

#ifndef ML_BINARY_PATH
#error "ML_BINARY_PATH must be defined by tests/CMakeLists.txt"
#endif

namespace {

namespace fs = std::filesystem;
using ml::testing::CliResult;
using ml::testing::contains;
using ml::testing::run_cli_many;
using ml::testing::shell_quote;
using ml::testing::TempDir;
using ml::testing::write_file;
using nlohmann::json;

// A user mistake: one valid-UTF-8 line on stderr and the documented exit code.
void expect_one_line_error(const CliResult& r, ml::ExitCode code, const std::string& what) {
  EXPECT_EQ(r.code, static_cast<int>(code)) << what << "\nstderr: " << r.err;
  EXPECT_EQ(r.err_lines(), 1) << what << "\nstderr: " << r.err;
  EXPECT_TRUE(contains(r.err, ": error: ")) << what << "\nstderr: " << r.err;
  EXPECT_TRUE(ml::is_valid_utf8(r.err)) << what << "\nstderr: " << ml::printable(r.err);
}

// Four categories of a small shop, `rows_per_category` rows each, as CSV lines without a
// line end: user, item, category, event, brand. Every third row is a purchase, so that each
// category has both labels.
std::vector<std::string> shop_rows(const std::vector<std::string>& categories,
                                   int rows_per_category) {
  std::vector<std::string> rows;
  for (int i = 0; i < rows_per_category; ++i)
    for (std::size_t c = 0; c < categories.size(); ++c) {
      const int n = i * static_cast<int>(categories.size()) + static_cast<int>(c);
      rows.push_back("u" + std::to_string(n % 23) + ",i" + std::to_string(c) + "_" +
                     std::to_string(i % 9) + "," + categories[c] + "," +
                     (n % 3 == 0 ? "purchase" : "view") + "," + categories[c] + " brand");
    }
  return rows;
}

// A config for `file` (columns as shop_rows writes them) that trains for two iterations and
// saves a checkpoint after each.
std::string write_config(const TempDir& dir, const std::string& name, const std::string& file) {
  json c = {
      {"seed", 3},
      {"data",
       {{"files", {file}},
        {"columns",
         {{"user", "user_id"}, {"item", "item_id"}, {"task", "category"}, {"event", "event"}}},
        {"features", {{"categorical", {"brand"}}}}}},
      {"features", {{"aggregates", json::array()}}},
      {"task",
       {{"label",
         {{"kind", "event_binary"},
          {"positive_events", {"purchase"}},
          {"negative_events", {"view"}}}},
        {"support", 4},
        {"query", 6}}},
      {"split", {{"new_fraction", 0.25}, {"validation_fraction", 0.25}}},
      {"model", {{"hidden", {8}}}},
      {"meta", {{"iterations", 2}, {"meta_batch", 2}, {"inner_steps", 1}}},
      {"train", {{"validate_every", 0}, {"checkpoint_every", 1}}},
      {"run", {{"dir", dir.file("run_" + name)}, {"device", "cpu"}, {"threads", 1}}}};
  const std::string path = dir.file(name + ".json");
  write_file(path, c.dump(2));
  return path;
}

std::string lines(const std::string& header, const std::vector<std::string>& rows,
                  const std::string& end = "\n") {
  std::string text = header + end;
  for (const auto& row : rows) text += row + end;
  return text;
}

TEST(CliCsv, EveryKindOfUnusableFileGetsOneLineNamingIt) {
  TempDir dir;
  const std::string header = "user_id,item_id,category,event,brand";
  const auto rows = shop_rows({"food", "toys", "tools", "books"}, 20);
  // Every row ends in a non-empty field the header lacks: nothing of it can be read.
  std::vector<std::string> extra = rows;
  for (auto& row : extra) row += ",1";
  write_file(dir.file("extra.csv"), lines(header, extra));
  // The shop log gzip-compressed (the header of a gzip stream: magic, method, flags, mtime).
  write_file(dir.file("log.csv.gz"), std::string("\x1F\x8B\x08\x00\x00\x00\x00\x00\x00\x03", 10) +
                                         "\x9D\xFF\xE9 compressed bytes");
  std::vector<std::string> twice = rows;
  for (auto& row : twice) row += ",other brand";
  write_file(dir.file("twice.csv"), lines(header + ",brand", twice));
  std::string colon_header = header;
  for (char& ch : colon_header)
    if (ch == ',') ch = ':';
  write_file(dir.file("colon.csv"), colon_header + "\nu1:i1:food:view:acme\n");

  auto inspect = [&](const std::string& name, const std::string& file) {
    return "inspect --config " + shell_quote(write_config(dir, name, dir.file(file)));
  };
  const auto r =
      run_cli_many({"--log-level warn train --config " +
                        shell_quote(write_config(dir, "extra", dir.file("extra.csv"))),
                    inspect("gz", "log.csv.gz"), inspect("twice", "twice.csv"),
                    inspect("twice", "twice.csv") + " --set data.features.categorical=5",
                    inspect("colon", "colon.csv"),
                    // A path that is not UTF-8 either: the message escapes it like any other bytes.
                    "predict --checkpoint " + shell_quote(dir.file("gone\xE9.mlckpt")) +
                        " --input " + shell_quote(dir.file("twice.csv"))});

  expect_one_line_error(r[0], ml::ExitCode::kData, "every row rejected");
  EXPECT_TRUE(contains(r[0].err, "every one of the 80 rows of the purchase log was rejected"))
      << r[0].err;
  EXPECT_TRUE(contains(r[0].err, "wrong field count 80")) << r[0].err;
  EXPECT_TRUE(contains(r[0].err, dir.file("extra.csv") + ":2: expected 5 fields, found 6"))
      << r[0].err;
  EXPECT_FALSE(contains(r[0].err, "no training task qualifies")) << r[0].err;

  expect_one_line_error(r[1], ml::ExitCode::kData, "gzip file");
  EXPECT_TRUE(contains(r[1].err, "'" + dir.file("log.csv.gz") + "' is not a text CSV file"))
      << r[1].err;
  EXPECT_TRUE(contains(r[1].err, "gzip-compressed")) << r[1].err;

  expect_one_line_error(r[2], ml::ExitCode::kData, "repeated column name");
  EXPECT_TRUE(contains(r[2].err, "data.features.categorical[0] = 'brand'")) << r[2].err;
  EXPECT_TRUE(contains(r[2].err, "2 columns named 'brand' (#5, #6)")) << r[2].err;
  // ... and the position it suggests is one that --set takes.
  EXPECT_EQ(r[3].code, 0) << r[3].err;
  EXPECT_TRUE(contains(r[3].out, "rows read               80")) << r[3].out;

  expect_one_line_error(r[4], ml::ExitCode::kData, "one-column header");
  EXPECT_TRUE(contains(r[4].err, "single column with the detected delimiter ','")) << r[4].err;
  EXPECT_TRUE(contains(r[4].err, "set data.format.delimiter")) << r[4].err;

  expect_one_line_error(r[5], ml::ExitCode::kCheckpoint, "checkpoint path that is not UTF-8");
  EXPECT_TRUE(contains(r[5].err, "gone\\xE9.mlckpt")) << r[5].err;
}

TEST(CliCsv, TrainReportsRejectedRowsAndSavesCellsThatAreNotUtf8) {
  TempDir dir;
  // A Latin-1 export (categories and brands with accents, so the brand vocabulary that the
  // checkpoint stores holds them), with classic-Mac line ends, a trailing delimiter on every
  // row and two malformed rows.
  auto rows = shop_rows({"Caf\xE9", "Cr\xE8me", "P\xE2tes", "Th\xE9"}, 20);
  for (auto& row : rows) row += ",";
  rows.insert(rows.begin() + 5, "u1,i1");
  rows.insert(rows.begin() + 9, "u1,i1,Caf\xE9,view,acme,extra");
  const std::string log = dir.file("latin1.csv");
  write_file(log, lines("user_id,item_id,category,event,brand", rows, "\r"));
  const auto r = run_cli_many({"train --config " + shell_quote(write_config(dir, "t", log))});

  ASSERT_EQ(r[0].code, 0) << r[0].err;
  EXPECT_TRUE(ml::is_valid_utf8(r[0].err)) << ml::printable(r[0].err);
  EXPECT_TRUE(ml::is_valid_utf8(r[0].out)) << ml::printable(r[0].out);
  EXPECT_TRUE(contains(r[0].err, "rejected 2 of 82 log rows")) << r[0].err;
  EXPECT_TRUE(contains(r[0].err, log + ":7: expected 5 fields, found 2")) << r[0].err;
  EXPECT_TRUE(contains(r[0].err, log + ":11: expected 5 fields, found 6")) << r[0].err;
  EXPECT_TRUE(contains(r[0].err, " cell(s) are not UTF-8")) << r[0].err;
  EXPECT_TRUE(contains(r[0].err, log + ":2: column 3 ('category'): byte 0xE9")) << r[0].err;
  EXPECT_TRUE(fs::exists(dir.file("run_t/checkpoints/latest.mlckpt"))) << r[0].err;
}

TEST(CliCsv, AnEscapedByteAndItsTypedSpellingStayTwoTasksInTheOutput) {
  TempDir dir;
  // "Caf" + the Latin-1 byte 0xE9, and the UTF-8 text `Caf\xE9` typed out: two categories.
  const auto rows = shop_rows({"Caf\xE9", "Caf\\xE9", "food", "toys"}, 20);
  const std::string log = dir.file("mixed.csv");
  write_file(log, lines("user_id,item_id,category,event,brand", rows));
  const auto r =
      run_cli_many({"inspect --json --tasks --config " + shell_quote(write_config(dir, "m", log))});
  ASSERT_EQ(r[0].code, 0) << r[0].err;
  const json j = json::parse(r[0].out);
  std::set<std::string> names;
  for (const auto& t : j["tasks"]) names.insert(t["name"].get<std::string>());
  // The byte as `\xE9`, the typed text with its backslash doubled: as they decode, two names.
  EXPECT_EQ(names, (std::set<std::string>{"Caf\\xE9", "Caf\\\\xE9", "food", "toys"})) << r[0].out;

  // Names given back: the raw byte on the command line finds the task its byte came from, as
  // its escaped spelling does; the typed text finds the other.
  const std::string run = dir.file("run_m");
  const auto trained = run_cli_many({"train --config " + shell_quote(dir.file("m.json"))});
  ASSERT_EQ(trained[0].code, 0) << trained[0].err;
  const std::string recommend = "--log-level warn predict --checkpoint " + shell_quote(run) +
                                " --recommend --user u1 --top-k 3 --task ";
  const auto p =
      run_cli_many({recommend + shell_quote("Caf\xE9"), recommend + shell_quote("Caf\\xE9"),
                    recommend + shell_quote("Caf\\\\xE9")});
  for (const auto& one : p) ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(p[0].out, p[1].out);
  EXPECT_NE(p[0].out, p[2].out);
}

// --- a command's own CSV: its format options and the advice that names them ------------------

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> fields(const std::string& row) {
  std::vector<std::string> out(1);
  for (char c : row) {
    if (c == ',')
      out.emplace_back();
    else
      out.back() += c;
  }
  return out;
}

TEST(CliCsv, ACommandsOwnCsvHasFormatOptionsAndItsErrorsNameThem) {
  TempDir dir;
  const std::string header = "user_id,item_id,category,event,brand";
  const auto rows = shop_rows({"food", "toys", "tools", "books"}, 20);
  const std::string log = dir.file("log.csv");
  write_file(log, lines(header, rows));
  // The run's log is comma-separated, and its config says so.
  const std::string config = write_config(dir, "f", log);
  json c = json::parse(read_text(config));
  c["data"]["format"] = {{"delimiter", ","}};
  write_file(config, c.dump(2));
  const std::string run = dir.file("run_f");

  // Rows of one category as the run's log writes them, and as another system exports them:
  // semicolons, other names for the user and brand columns, the columns in another order.
  std::vector<std::string> food(rows.begin(), rows.begin() + 12);
  const std::string same = dir.file("same.csv");
  write_file(same, lines(header, food));
  std::vector<std::string> other_rows;
  for (const auto& row : food) {
    const auto f = fields(row);
    other_rows.push_back(f[1] + ";" + f[0] + ";" + f[2] + ";" + f[3] + ";" + f[4]);
  }
  const std::string other = dir.file("other.csv");
  write_file(other, lines("sku;customer;category;event;marke", other_rows));

  const std::string predict =
      "--log-level warn predict --checkpoint " + shell_quote(run) + " --input ";
  const std::string adapt = "--log-level warn adapt --checkpoint " + shell_quote(run) +
                            " --task food --out " + shell_quote(dir.file("a"));
  const auto trained = run_cli_many({"train --config " + shell_quote(config)});
  ASSERT_EQ(trained[0].code, 0) << trained[0].err;
  // Side by side once the run is there; r[0] is the log's own columns, scored.
  const auto r = run_cli_many({
      predict + shell_quote(same),
      // As the run's config reads it: one column. The advice names the options.
      predict + shell_quote(other),
      // The delimiter given: now the user column is missing, by the run's name.
      predict + shell_quote(other) + " --delimiter ';'",
      predict + shell_quote(other) +
          " --delimiter ';' --column user=customer --column item=sku "
          "--column features.categorical[0]=marke",
      // A name the option gives that the file does not have is the option's.
      predict + shell_quote(other) + " --delimiter ';' --column user=client",
      adapt + " --support-csv " + shell_quote(other) + " --delimiter ';'",
      adapt + " --support-csv " + shell_quote(other) +
          " --delimiter ';' --column user=customer --column item=1 "
          "--column features.categorical[0]=marke",
      // Usage mistakes: exit code 2 before any work.
      predict + shell_quote(other) + " --column usr=customer",
      predict + shell_quote(other) + " --column price=3",
      predict + shell_quote(other) + " --delimiter ':'",
      "--log-level warn predict --checkpoint " + shell_quote(run) +
          " --recommend --user u1 --delimiter ';'",
      // A flag given a value, an empty value, a position that is not one, the input as output.
      predict + shell_quote(same) + " --header=false",
      predict + shell_quote(same) + " --delimiter ''",
      predict + shell_quote(same) + " --column user=0",
      predict + shell_quote(same) + " --column user=99999999999999999999",
      predict + shell_quote(same) + " --output " + shell_quote(same),
  });
  ASSERT_EQ(r[0].code, 0) << r[0].err;

  expect_one_line_error(r[1], ml::ExitCode::kData, "the run's delimiter");
  EXPECT_TRUE(contains(r[1].err,
                       "data.columns.user = 'user_id' (the run's config): no such "
                       "column in '" +
                           other + "'"))
      << r[1].err;
  EXPECT_TRUE(contains(r[1].err, "delimiter ',': set --delimiter to the one it uses")) << r[1].err;
  EXPECT_TRUE(contains(r[1].err, "; give --column user=COLUMN for this file")) << r[1].err;
  EXPECT_FALSE(contains(r[1].err, "data.format.delimiter")) << r[1].err;

  expect_one_line_error(r[2], ml::ExitCode::kData, "a user column of another name");
  EXPECT_TRUE(contains(r[2].err,
                       "its columns are: sku, customer, category, event, marke; give "
                       "--column user=COLUMN for this file"))
      << r[2].err;

  // With the options, the other export scores exactly as the log's own columns do: the feature
  // column read from 'marke' is the run's 'brand'.
  ASSERT_EQ(r[3].code, 0) << r[3].err;
  EXPECT_EQ(r[3].out, r[0].out);

  expect_one_line_error(r[4], ml::ExitCode::kData, "a column the option names");
  EXPECT_TRUE(contains(r[4].err, "--column user='client': no such column in '" + other + "'"))
      << r[4].err;
  EXPECT_FALSE(contains(r[4].err, "give --column user=COLUMN")) << r[4].err;

  expect_one_line_error(r[5], ml::ExitCode::kData, "adapt's support CSV");
  EXPECT_TRUE(contains(r[5].err, "give --column user=COLUMN for this file")) << r[5].err;
  ASSERT_EQ(r[6].code, 0) << r[6].err;
  EXPECT_TRUE(fs::exists(dir.file("a/food.mlckpt"))) << r[6].err;

  expect_one_line_error(r[7], ml::ExitCode::kUsage, "an unknown role");
  EXPECT_TRUE(contains(r[7].err, "--column 'usr=customer': no role 'usr' (did you mean 'user'?)"))
      << r[7].err;
  expect_one_line_error(r[8], ml::ExitCode::kUsage, "a role the run does not read");
  EXPECT_TRUE(contains(r[8].err, "--column 'price=3': the run reads no such column")) << r[8].err;
  expect_one_line_error(r[9], ml::ExitCode::kUsage, "a delimiter the config does not know");
  EXPECT_TRUE(contains(r[9].err, "--delimiter ':': must be")) << r[9].err;
  expect_one_line_error(r[10], ml::ExitCode::kUsage, "a format option without --input");
  EXPECT_TRUE(contains(r[10].err, "--delimiter describes the --input file")) << r[10].err;
  // CLI11 would read "--header=false" as --header.
  expect_one_line_error(r[11], ml::ExitCode::kUsage, "a value given to a flag");
  expect_one_line_error(r[12], ml::ExitCode::kUsage, "an empty delimiter");
  EXPECT_TRUE(contains(r[12].err, "--delimiter: must not be empty")) << r[12].err;
  expect_one_line_error(r[13], ml::ExitCode::kUsage, "position 0");
  EXPECT_TRUE(contains(r[13].err, "--column 'user=0'")) << r[13].err;
  EXPECT_TRUE(contains(r[13].err, "1-based")) << r[13].err;
  expect_one_line_error(r[14], ml::ExitCode::kUsage, "a position beyond any integer");
  EXPECT_TRUE(contains(r[14].err, "is not a column position")) << r[14].err;
  expect_one_line_error(r[15], ml::ExitCode::kUsage, "--output naming the --input file");
  EXPECT_EQ(read_text(same), lines(header, food)) << "the input file was overwritten";
}

// A run trained on a headerless log reads its feature columns by position; a file with a header
// given with --header must feed the same columns to the same features, not drop them because the
// header names them otherwise.
TEST(CliCsv, AHeaderlessRunScoresAFileWithAHeaderByTheRunsPositions) {
  TempDir dir;
  const auto rows = shop_rows({"food", "toys", "tools", "books"}, 20);
  const std::string log = dir.file("log.csv");
  std::string text;
  for (const auto& row : rows) text += row + "\n";
  write_file(log, text);
  const std::string config = write_config(dir, "h", log);
  json c = json::parse(read_text(config));
  c["data"]["format"] = {{"header", false}, {"delimiter", ","}};
  c["data"]["columns"] = {{"user", 1}, {"item", 2}, {"task", 3}, {"event", 4}};
  c["data"]["features"] = {{"categorical", {5}}};
  write_file(config, c.dump(2));
  const std::string run = dir.file("run_h");
  std::vector<std::string> food(rows.begin(), rows.begin() + 12);
  const std::string bare = dir.file("bare.csv"), named = dir.file("named.csv");
  std::string bare_text;
  for (const auto& row : food) bare_text += row + "\n";
  write_file(bare, bare_text);
  write_file(named, lines("user_id,item_id,category,event,brand", food));
  const std::string predict =
      "--log-level warn predict --checkpoint " + shell_quote(run) + " --input ";
  const auto trained = run_cli_many({"train --config " + shell_quote(config)});
  ASSERT_EQ(trained[0].code, 0) << trained[0].err;
  const auto r =
      run_cli_many({predict + shell_quote(bare), predict + shell_quote(named) + " --header"});
  ASSERT_EQ(r[0].code, 0) << r[0].err;
  ASSERT_EQ(r[1].code, 0) << r[1].err;
  EXPECT_EQ(r[1].out, r[0].out);
}

}  // namespace
