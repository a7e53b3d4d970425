// End-to-end tests of the metalearn binary: output, exit codes and figures checked independently.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/csv_reader.hpp"
#include "inference/adaptation.hpp"
#include "runtime/device.hpp"
#include "test_support.hpp"
#include "util/errors.hpp"
#include "util/strings.hpp"

#ifndef ML_BINARY_PATH
#error "ML_BINARY_PATH must be defined by tests/CMakeLists.txt"
#endif

namespace {

using ml::testing::contains;
using ml::testing::slurp;
using ml::testing::TempDir;
using ml::testing::write_file;
using Result = ml::testing::CliResult;
std::string q(const std::string& s) {
  return ml::testing::shell_quote(s);
}
Result run(const std::string& args) {
  return ml::testing::run_cli(args);
}
std::vector<Result> run_many(const std::vector<std::string>& args) {
  return ml::testing::run_cli_many(args);
}

namespace fs = std::filesystem;
using nlohmann::json;

// A user mistake: exactly one line on stderr, the documented code, no abort.
void expect_one_line_error(const Result& r, ml::ExitCode code, const std::string& what) {
  EXPECT_EQ(r.code, static_cast<int>(code)) << what << "\nstderr: " << r.err;
  EXPECT_EQ(r.err_lines(), 1) << what << "\nstderr: " << r.err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("Aborted"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error"), std::string::npos) << r.err;
}

int count_of(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// ---- basics --------------------------------------------------------------------------------

TEST(CliBasics, VersionHelpAndUsageErrors) {
  auto r = run_many({"--version", "--help", "frobnicate", "synth --frobnicate 3", "--frobnicate"});
  const Result &v = r[0], &h = r[1];
  EXPECT_EQ(v.code, 0) << v.err;
  EXPECT_EQ(v.out.rfind("metalearn ", 0), 0u) << v.out;
  // The version is the project's x.y.z (CMakeLists.txt project(VERSION)).
  std::string cmake = slurp(std::string(ML_SOURCE_DIR) + "/CMakeLists.txt");
  auto at = cmake.find("VERSION ", cmake.find("project("));
  ASSERT_NE(at, std::string::npos);
  std::string version = cmake.substr(at + 8, cmake.find_first_of(" )", at + 8) - at - 8);
  EXPECT_TRUE(contains(v.out, "metalearn " + version)) << v.out << " vs " << version;

  EXPECT_EQ(h.code, 0) << h.err;
  for (const char* sub : {"train", "adapt", "eval", "predict", "export", "inspect", "synth"})
    EXPECT_TRUE(contains(h.out, std::string("\n  ") + sub + " ")) << sub << "\n" << h.out;

  expect_one_line_error(r[2], ml::ExitCode::kUsage, "unknown subcommand");
  EXPECT_TRUE(contains(r[2].err, "frobnicate")) << r[2].err;
  expect_one_line_error(r[3], ml::ExitCode::kUsage, "unknown option");
  EXPECT_TRUE(contains(r[3].err, "frobnicate")) << r[3].err;
  expect_one_line_error(r[4], ml::ExitCode::kUsage, "unknown top-level option");
  EXPECT_TRUE(contains(r[4].err, "--frobnicate")) << r[4].err;
}

// eval --report writes REPORT.json beside the page; --json-out naming that same file would be
// overwritten by it, so the pair is refused before any work.
TEST(CliEval, JsonOutThatIsTheReportsTablesIsRefused) {
  auto r = run_many({"eval --checkpoint no/such/run --report out/r.html --json-out out/r.json",
                     "eval --checkpoint no/such/run --report out/r.html --json-out out/e.json"});
  expect_one_line_error(r[0], ml::ExitCode::kUsage, "--report");
  EXPECT_TRUE(contains(r[0].err, "out/r.json")) << r[0].err;
  // A different file passes the check and fails only on the missing run.
  EXPECT_EQ(r[1].code, static_cast<int>(ml::ExitCode::kCheckpoint)) << r[1].err;
}

// The bash completion is generated from the CLI definition: every subcommand --help lists and
// every option of each must be offered in that subcommand's branch, and nothing hidden.
TEST(CliCompletion, CoversEverySubcommandAndOption) {
  const std::vector<std::string> subcommands = {"train",   "adapt",  "eval",    "predict",
                                                "explain", "export", "inspect", "synth"};
  std::vector<std::string> calls = {"completion bash", "completion zsh"};
  for (const std::string& sub : subcommands) calls.push_back(sub + " --help");
  const auto r = run_many(calls);
  ASSERT_EQ(r[0].code, 0) << r[0].err;
  const std::string& script = r[0].out;
  EXPECT_TRUE(contains(script, "complete -o default -F _metalearn metalearn")) << script;
  expect_one_line_error(r[1], ml::ExitCode::kUsage, "unsupported shell");

  // The words offered with no subcommand yet.
  const std::size_t top = script.find("    *)\n");
  ASSERT_NE(top, std::string::npos) << script;
  const std::string top_words = script.substr(top, script.find('\n', top + 8) - top);
  for (const std::string& sub : subcommands) EXPECT_TRUE(contains(top_words, " " + sub)) << sub;
  EXPECT_FALSE(contains(top_words, "completion")) << "the hidden command is offered";

  for (std::size_t i = 0; i < subcommands.size(); ++i) {
    const std::string& sub = subcommands[i];
    const std::size_t at = script.find("\n    " + sub + ")\n");
    ASSERT_NE(at, std::string::npos) << sub << " has no branch\n" << script;
    const std::size_t words_at = script.find("words=\"", at);
    const std::string words =
        " " + script.substr(words_at + 7, script.find('"', words_at + 7) - words_at - 7) + " ";
    // Every long option the subcommand's help shows.
    const std::string& help = r[2 + i].out;
    ASSERT_EQ(r[2 + i].code, 0) << r[2 + i].err;
    int options = 0;
    for (std::size_t p = help.find("--"); p != std::string::npos; p = help.find("--", p + 2)) {
      if (p > 0 && help[p - 1] != ' ' && help[p - 1] != ',') continue;  // inside a word
      std::size_t end = help.find_first_of(" ,=\n", p);
      const std::string option = help.substr(p, end - p);
      if (option.size() <= 2) continue;
      ++options;
      EXPECT_TRUE(contains(words, " " + option + " ")) << sub << " lacks " << option << "\n"
                                                       << words;
    }
    EXPECT_GE(options, 2) << sub << " help shows no options?\n" << help;
  }
}

// ---- synth + inspect -----------------------------------------------------------------------

const char* const kSynthArgs = " --users 200 --categories 6 --sessions 2000 --seed 3";

struct SynthData {
  TempDir dir;
  std::string folder, config;
  SynthData() {
    folder = dir.file("synth");
    Result r = run("synth --out " + q(folder) + kSynthArgs);
    EXPECT_EQ(r.code, 0) << r.err;
    // The checked-in synthetic config, pointed at these files.
    json c = json::parse(slurp(std::string(ML_SOURCE_DIR) + "/configs/synthetic.json"));
    c["data"]["files"] = {folder + "/events.csv"};
    c["data"]["side_tables"][0]["files"] = {folder + "/items.csv"};
    c["data"]["side_tables"][1]["files"] = {folder + "/users.csv"};
    config = dir.file("config.json");
    write_file(config, c.dump(2));
  }
};

// One synthetic data set per test process, shared by the tests that only read it.
const SynthData& shared_synth() {
  static SynthData data;
  return data;
}

TEST(CliSynth, SameSeedGivesIdenticalFiles) {
  const SynthData& first = shared_synth();
  TempDir dir;
  Result again = run("synth --out " + q(dir.file("again")) + kSynthArgs);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_TRUE(contains(again.out, dir.file("again") + "/events.csv")) << again.out;
  for (const char* f : {"events.csv", "items.csv", "users.csv"}) {
    std::string a = slurp(first.folder + "/" + f);
    EXPECT_GT(a.size(), 100u) << f;
    EXPECT_EQ(a, slurp(dir.file("again") + "/" + f)) << f;
  }
}

// Results on stdout behind a redirect to a full disk used to end with exit 0 and a cut-off or
// empty result; every command now says so (exit 9).
TEST(CliErrors, AFullDiskBehindStdoutIsAnIoError) {
  const SynthData& data = shared_synth();
  const Result r = ml::testing::run_command(
      "sh -c " + ml::testing::shell_quote(ml::testing::shell_quote(ML_BINARY_PATH) +
                                          " inspect --config " + q(data.config) + " >/dev/full"));
  expect_one_line_error(r, ml::ExitCode::kIo, "stdout on a full disk");
  EXPECT_TRUE(contains(r.err,
                       "metalearn inspect: error: cannot write the results to standard "
                       "output: No space left on device"))
      << r.err;
}

TEST(CliSynth, InspectJsonMatchesCountsMadeFromTheCsv) {
  const SynthData& data = shared_synth();
  Result r = run("inspect --config " + q(data.config) + " --json --tasks");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);  // stdout holds only the JSON

  // Independent counts: records, distinct ids, and the event labels after the cutoff.
  const json config = json::parse(slurp(data.config));
  const std::string cutoff = config["split"]["time_cutoff"].get<std::string>();  // ISO date
  ml::data::CsvReader reader(data.folder + "/events.csv", {',', true, '"'});
  const auto& h = reader.header();
  auto col = [&](const char* n) {
    auto it = std::find(h.begin(), h.end(), n);
    EXPECT_NE(it, h.end()) << n;
    return static_cast<std::size_t>(it - h.begin());
  };
  const std::size_t cu = col("user_id"), ci = col("item_id"), cc = col("category"),
                    ce = col("event"), ct = col("timestamp");
  std::int64_t records = 0, before = 0;
  std::set<std::string> users, items, categories;
  std::map<std::string, bool> pair_positive;  // category|user|item -> has a purchase
  ml::data::CsvRecord rec;
  while (reader.next(rec)) {
    ++records;
    ASSERT_TRUE(rec.error.empty()) << rec.error;
    users.insert(std::string(rec.fields[cu]));
    items.insert(std::string(rec.fields[ci]));
    categories.insert(std::string(rec.fields[cc]));
    const std::string ts(rec.fields[ct]);  // ISO-8601: string order is time order
    if (ts < cutoff) {
      ++before;
      continue;
    }
    const std::string key = std::string(rec.fields[cc]) + "|" + std::string(rec.fields[cu]) + "|" +
                            std::string(rec.fields[ci]);
    pair_positive[key] = pair_positive[key] || rec.fields[ce] == "purchase";
  }
  std::int64_t positives = 0;
  for (const auto& kv : pair_positive) positives += kv.second ? 1 : 0;
  ASSERT_GT(records, 1000);
  // Titles with embedded commas are quoted: a naive line count would disagree with columns.
  EXPECT_TRUE(contains(slurp(data.folder + "/items.csv"), "\""));

  EXPECT_EQ(j["rows"]["read"].get<std::int64_t>(), records);
  EXPECT_EQ(j["rows"]["kept"].get<std::int64_t>(), records);
  EXPECT_EQ(j["rows"]["rejected"].get<std::int64_t>(), 0);
  EXPECT_EQ(j["rows"]["without_task"].get<std::int64_t>(), 0);
  EXPECT_EQ(j["rows"]["before_cutoff"].get<std::int64_t>(), before);
  EXPECT_EQ(j["users"].get<std::size_t>(), users.size());
  EXPECT_EQ(j["items"].get<std::size_t>(), items.size());
  EXPECT_EQ(j["task_keys"].get<std::size_t>(), categories.size());
  EXPECT_EQ(categories.size(), 6u);
  EXPECT_EQ(j["labels"]["kind"], "event_binary");
  EXPECT_EQ(j["labels"]["examples"].get<std::size_t>(), pair_positive.size());
  EXPECT_EQ(j["labels"]["positives"].get<std::int64_t>(), positives);
  EXPECT_EQ(j["labels"]["negatives"].get<std::int64_t>(),
            static_cast<std::int64_t>(pair_positive.size()) - positives);

  const auto& split = j["split"];
  std::int64_t tasks = 0, examples = 0;
  for (const char* role : {"train", "validation", "new", "dropped"}) {
    tasks += split[role]["tasks"].get<std::int64_t>();
    examples += split[role]["examples"].get<std::int64_t>();
  }
  EXPECT_EQ(tasks, j["task_sizes"]["count"].get<std::int64_t>());
  EXPECT_EQ(examples, j["labels"]["examples"].get<std::int64_t>());
  EXPECT_EQ(j["qualifying_tasks"].get<std::int64_t>(),
            tasks - split["dropped"]["tasks"].get<std::int64_t>());
  EXPECT_EQ(split["new_tasks"].size(), split["new"]["tasks"].get<std::size_t>());
  EXPECT_GE(split["train"]["tasks"].get<std::int64_t>(), 1);
  // --tasks lists every task with its role.
  ASSERT_TRUE(j.contains("tasks"));
  EXPECT_EQ(j["tasks"].size(), static_cast<std::size_t>(tasks));
  std::int64_t listed_new = 0;
  for (const auto& t : j["tasks"]) listed_new += t["role"] == "new" ? 1 : 0;
  EXPECT_EQ(listed_new, split["new"]["tasks"].get<std::int64_t>());
}

TEST(CliSynth, PrintConfigShowsTheResolvedConfigWithDefaults) {
  const SynthData& data = shared_synth();
  Result r = run("inspect --config " + q(data.config) + " --set task.support=7 --print-config");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["task"]["support"], 7);
  EXPECT_EQ(j["task"]["stratify"], "balanced");  // not in the file: the default
  EXPECT_EQ(j["features"]["hash_buckets"], 1 << 18);
  EXPECT_EQ(j["task"]["label"]["kind"], "event_binary");
  // Relative data paths come back resolved against the config's folder.
  const std::string events = j["data"]["files"][0].get<std::string>();
  EXPECT_TRUE(fs::path(events).is_absolute()) << events;
  EXPECT_TRUE(fs::exists(events)) << events;
  EXPECT_FALSE(contains(r.out, "rows read"));  // it stops before profiling
}

// ---- errors --------------------------------------------------------------------------------

TEST(CliErrors, ConfigMistakesExitThreeNamingTheKey) {
  const SynthData& data = shared_synth();
  TempDir dir;
  json c = json::parse(slurp(data.config));
  c["task"]["suport"] = 5;
  write_file(dir.file("typo.json"), c.dump());
  write_file(dir.file("broken.json"), "{\"seed\": 1,\n \"data\": {");
  const std::string missing = dir.file("no-such-config.json");
  auto r = run_many({"inspect --config " + q(dir.file("typo.json")),
                     "inspect --config " + q(data.config) + " --set task.support=0",
                     "inspect --config " + q(dir.file("broken.json")),
                     "inspect --config " + q(missing)});

  expect_one_line_error(r[0], ml::ExitCode::kConfig, "unknown key");
  EXPECT_TRUE(contains(r[0].err, "suport")) << r[0].err;
  EXPECT_TRUE(contains(r[0].err, "typo.json")) << r[0].err;

  expect_one_line_error(r[1], ml::ExitCode::kConfig, "invalid value");
  EXPECT_TRUE(contains(r[1].err, "task.support = 0")) << r[1].err;

  expect_one_line_error(r[2], ml::ExitCode::kConfig, "malformed JSON");
  EXPECT_TRUE(contains(r[2].err, "broken.json")) << r[2].err;

  // errors.hpp documents a missing config file as a config error (3).
  expect_one_line_error(r[3], ml::ExitCode::kConfig, "missing config file");
  EXPECT_TRUE(contains(r[3].err, "no-such-config.json")) << r[3].err;
}

TEST(CliErrors, DataMistakesExitFourNamingFileLineOrColumn) {
  const SynthData& data = shared_synth();
  TempDir dir;
  json c = json::parse(slurp(data.config));
  auto config_with = [&](const std::string& name, const std::string& key, const json& value) {
    json copy = c;
    copy["data"][key] = value;
    write_file(dir.file(name), copy.dump());
    return q(dir.file(name));
  };
  json columns = c["data"]["columns"];
  columns["user"] = "usr_id";
  // A copy of the events with a short record on physical line 4.
  std::string events = slurp(data.folder + "/events.csv");
  std::size_t third_newline = 0;
  for (int n = 0; n < 3; ++n) third_newline = events.find('\n', third_newline) + 1;
  events.insert(third_newline, "u1,i1,Dog Food\n");
  write_file(dir.file("bad_events.csv"), events);
  const std::string missing = data.folder + "/no-such-events.csv";
  const std::string bad =
      config_with("bad.json", "files", json::array({dir.file("bad_events.csv")}));
  auto r =
      run_many({"inspect --config " + config_with("missing.json", "files", json::array({missing})),
                "inspect --config " + config_with("column.json", "columns", columns),
                "inspect --config " + bad + " --set 'data.bad_rows=\"fail\"'",
                "inspect --config " + bad + " --json"});

  expect_one_line_error(r[0], ml::ExitCode::kData, "missing data file");
  EXPECT_TRUE(contains(r[0].err, "no-such-events.csv")) << r[0].err;

  expect_one_line_error(r[1], ml::ExitCode::kData, "missing column");
  EXPECT_TRUE(contains(r[1].err, "usr_id")) << r[1].err;
  EXPECT_TRUE(contains(r[1].err, "events.csv")) << r[1].err;

  expect_one_line_error(r[2], ml::ExitCode::kData, "malformed row");
  EXPECT_TRUE(contains(r[2].err, "bad_events.csv:4")) << r[2].err;

  // With the default policy the row is skipped and reported.
  ASSERT_EQ(r[3].code, 0) << r[3].err;
  json j = json::parse(r[3].out);
  EXPECT_EQ(j["rows"]["rejected"], 1);
  ASSERT_EQ(j["rows"]["bad_rows"].size(), 1u);
  EXPECT_EQ(j["rows"]["bad_rows"][0]["line"], 4);
  EXPECT_EQ(j["rows"]["read"].get<std::int64_t>(), j["rows"]["kept"].get<std::int64_t>() + 1);
}

// A small shop log: `tasks` categories of 12 (user, item) pairs each, half of them bought, with
// unix millisecond timestamps one minute apart from 2023-11-14T22:13:20Z.
std::string shop_log_ms(const std::vector<std::string>& tasks) {
  std::string csv = "user,item,category,event,ts,price\n";
  long long ts = 1700000000000LL;
  for (const auto& t : tasks)
    for (int i = 0; i < 12; ++i, ts += 60000)
      csv += "u" + std::to_string(i % 5) + "," + t + "-i" + std::to_string(i) + "," + t + "," +
             (i % 2 ? "purchase" : "view") + "," + std::to_string(ts) + ",2.5\n";
  return csv;
}

// A config for shop_log_ms files, with overrides merged into it.
std::string shop_config(const TempDir& dir, const std::string& name, const json& log_files,
                        const json& patch = json::object()) {
  json c = {{"data",
             {{"files", log_files},
              {"cache", "off"},
              {"columns",
               {{"user", "user"},
                {"item", "item"},
                {"task", "category"},
                {"event", "event"},
                {"timestamp", "ts"},
                {"price", "price"}}}}},
            {"task",
             {{"label",
               {{"kind", "event_binary"},
                {"positive_events", {"purchase"}},
                {"negative_events", {"view"}}}},
              {"support", 2},
              {"query", 4}}},
            {"model", {{"hidden", {8}}}},
            {"meta", {{"iterations", 2}, {"meta_batch", 2}}},
            {"run", {{"dir", dir.file(name + "-run")}, {"device", "cpu"}, {"threads", 1}}}};
  c.merge_patch(patch);
  write_file(dir.file(name + ".json"), c.dump());
  return q(dir.file(name + ".json"));
}

TEST(CliErrors, TimesValuesAndEmptyLogsNameTheCause) {
  TempDir dir;
  const std::string log = dir.file("log.csv");
  write_file(log, shop_log_ms({"A", "B", "C", "D", "E", "F"}));
  std::string bad_price = shop_log_ms({"A", "B"});
  bad_price.replace(bad_price.find(",2.5\n"), 5, ",inf\n");  // line 2
  write_file(dir.file("inf.csv"), bad_price);
  write_file(dir.file("empty.csv"), "");
  write_file(dir.file("one.csv"), shop_log_ms({"Only"}));
  const json fail = {{"data", {{"bad_rows", "fail"}}}};
  auto r = run_many(
      {"inspect --json --config " + shop_config(dir, "auto", {log}),
       "inspect --config " +
           shop_config(dir, "seconds", {log}, {{"data", {{"time_format", "unix"}}}}) +
           " --set 'data.bad_rows=\"fail\"'",
       "inspect --config " + shop_config(dir, "inf", {dir.file("inf.csv")}, fail),
       // Progress lines aside (they go to stderr too), only the error is left.
       "--log-level warn train --config " + shop_config(dir, "empty", {dir.file("empty.csv")}),
       "--log-level warn train --config " + shop_config(dir, "one", {dir.file("one.csv")}),
       "--log-level warn train --config " +
           shop_config(dir, "late", {log}, {{"split", {{"time_cutoff", "2030-01-01"}}}})});

  // Milliseconds are read as such, and inspect says so.
  ASSERT_EQ(r[0].code, 0) << r[0].err;
  const json j = json::parse(r[0].out);
  EXPECT_EQ(j["time_range"]["first"], "2023-11-14T22:13:20");
  EXPECT_EQ(j["timestamps_read_as"], (json{{"unix_ms", 72}}));
  EXPECT_EQ(j["training_problem"], "");

  // Declared as seconds they are the year 55840: refused at the first row, naming the unit.
  expect_one_line_error(r[1], ml::ExitCode::kData, "milliseconds declared as seconds");
  EXPECT_TRUE(contains(r[1].err, log + ":2: timestamp column: '1700000000000' read as unix "
                                       "seconds is 55840-"))
      << r[1].err;
  EXPECT_TRUE(contains(r[1].err, "data.time_format = \"unix_ms\"")) << r[1].err;

  expect_one_line_error(r[2], ml::ExitCode::kData, "an infinite price");
  EXPECT_TRUE(contains(r[2].err, dir.file("inf.csv") + ":2: price column: 'inf' is not a finite "
                                                       "number"))
      << r[2].err;

  expect_one_line_error(r[3], ml::ExitCode::kData, "an empty log");
  EXPECT_TRUE(contains(r[3].err, "the log has no rows: '" + dir.file("empty.csv") + "' is empty"))
      << r[3].err;

  expect_one_line_error(r[4], ml::ExitCode::kData, "a log of one task");
  EXPECT_TRUE(contains(r[4].err, "only one task qualifies ('Only'")) << r[4].err;
  EXPECT_FALSE(fs::exists(dir.file("one-run") + "/checkpoints/latest.mlckpt")) << "nothing trained";

  expect_one_line_error(r[5], ml::ExitCode::kData, "a cutoff after the last row");
  EXPECT_TRUE(contains(r[5].err,
                       "split.time_cutoff = 2030-01-01 is after the log's last time "
                       "(2023-11-14T23:24:20)"))
      << r[5].err;
}

TEST(CliErrors, SideTableDuplicatesAndTasksFromASideTable) {
  TempDir dir;
  const std::string log = dir.file("log.csv");
  write_file(log, shop_log_ms({"A", "B", "C", "D", "E", "F"}));
  // Brands of the items: brand k holds items of two categories; one item is listed twice.
  std::string items = "item,brand\n";
  const std::string categories = "ABCDEF";
  for (std::size_t c = 0; c < categories.size(); ++c)
    for (int i = 0; i < 12; ++i)
      items += std::string(1, categories[c]) + "-i" + std::to_string(i) + ",brand" +
               std::to_string(c / 2) + "\n";
  items += "A-i3,other\n";
  write_file(dir.file("items.csv"), items);
  auto side = [&](const json& extra) {
    json table = {{"files", {dir.file("items.csv")}},
                  {"join", "item"},
                  {"key", "item"},
                  {"features", {{"categorical", {"brand"}}}}};
    table.merge_patch(extra);
    return json{{"data", {{"side_tables", {table}}}}};
  };
  json by_brand = side({{"duplicates", "first"}});
  by_brand["data"]["columns"] = {{"task", "brand"}, {"task_from", "item"}};
  auto r = run_many(
      {"inspect --config " + shop_config(dir, "dup", {log}, side(json::object())),
       "inspect --config " + shop_config(dir, "first", {log}, side({{"duplicates", "first"}})),
       "inspect --json --tasks --config " + shop_config(dir, "brand", {log}, by_brand)});

  expect_one_line_error(r[0], ml::ExitCode::kData, "a duplicate side-table key");
  EXPECT_TRUE(contains(r[0].err, dir.file("items.csv") + ":74: item id 'A-i3' again (first at " +
                                     dir.file("items.csv") + ":5)"))
      << r[0].err;

  // The explicit policy is named in inspect's output with what it left out.
  ASSERT_EQ(r[1].code, 0) << r[1].err;
  EXPECT_TRUE(contains(r[1].out, "duplicates \"first\": 1 later rows of an id ignored"))
      << r[1].out;

  // Tasks are the items' brands: three of them, 24 pairs each.
  ASSERT_EQ(r[2].code, 0) << r[2].err;
  const json j = json::parse(r[2].out);
  EXPECT_EQ(j["task_keys"], 3);
  std::vector<std::string> names;
  for (const auto& t : j["tasks"]) {
    names.push_back(t["name"]);
    EXPECT_EQ(t["examples"], 24) << t;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"brand0", "brand1", "brand2"}));
  EXPECT_EQ(j["side_tables"][0]["duplicates"], "first");
}

TEST(CliErrors, UnavailableDeviceAndPlaceholderCommands) {
  const SynthData& data = shared_synth();
  const std::string train = "train --config " + q(data.config);
  // Where CUDA is missing, plain "cuda" must fail; where it exists, a device index beyond the
  // visible ones must. Either way before any work is done.
  const bool no_cuda = contains(ml::runtime::runtime_description(), "CUDA: not available");
  auto r = run_many({train + (no_cuda ? " --device cuda" : " --device cuda:99"),
                     "predict --checkpoint " + q(data.folder) + " --input " +
                         q(data.folder + "/events.csv") + " --device cpu"});
  expect_one_line_error(r[0], ml::ExitCode::kDevice, "unavailable CUDA device");
  EXPECT_TRUE(contains(r[0].err, "CUDA")) << r[0].err;
  // `predict` was the last placeholder (exit 8); now it is built, a folder that holds no run
  // is a checkpoint error naming the folder.
  expect_one_line_error(r[1], ml::ExitCode::kCheckpoint, "predict without a run");
  EXPECT_TRUE(contains(r[1].err, data.folder)) << r[1].err;
}

// Issue 11, configs and options: each mistake is one line naming what is wrong, exit 2 or 3,
// where each used to crash, print a 309-digit bound or blame the wrong thing.
TEST(CliErrors, ConfigDepthRangesAndOptionsAreOneClearLine) {
  TempDir dir;
  const json minimal = json::parse(R"({"data": {"files": ["log.csv"],
      "columns": {"task": "category", "user": "user_id", "item": "item_id"}}})");
  write_file(dir.file("good.json"), minimal.dump());
  write_file(dir.file("typo.json"), json{{"dta", minimal["data"]}}.dump());
  // Both used to overflow the stack (exit 139): valid JSON 100000 levels deep, and a --set key
  // of 60000 segments (120 kB, within one argument's limit).
  write_file(dir.file("deep.json"),
             "{\"seed\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  std::string key = "a";
  for (int i = 1; i < 60000; ++i) key += ".a";
  const std::string good = "inspect --config " + q(dir.file("good.json"));
  auto r = run_many(
      {"inspect --config " + q(dir.path().string()), "inspect --config " + q(dir.file("deep.json")),
       "inspect --config " + q(dir.file("typo.json")), good + " --set 'model.hidden=[4294967297]'",
       good + " --set meta.inner_lr=1e300", good + " --set " + key + "=1", good + " --threads=-1",
       "predict --checkpoint " + q(dir.file("run")) + " --top-k 0",
       "adapt --checkpoint " + q(dir.file("run")) + " --inner-lr 1e300",
       "train --config " + q(dir.file("good.json")) + " --stop-after=-1",
       good + " --threads 3 --log-level off --print-config",
       good + " --log-level loud --print-config", "synth --out " + q(dir.file("s")) + " --seed=-1",
       "synth --out " + q(dir.file("s")) + " --users 99999999999999999999",
       "synth --out " + q(dir.file("s")) + " --zipf 99",
       "synth --out " + q(dir.file("s")) + " --days 1e3",
       "eval --checkpoint " + q(dir.file("run")) + " --episodes 2147483648",
       "eval --checkpoint " + q(dir.file("run")) + " --shots 5,99999999999",
       good + " --threads 100000"});

  expect_one_line_error(r[0], ml::ExitCode::kConfig, "a folder as --config");
  EXPECT_TRUE(contains(r[0].err, "is a folder; --config takes a JSON config file")) << r[0].err;
  expect_one_line_error(r[1], ml::ExitCode::kConfig, "nesting depth");
  EXPECT_TRUE(contains(r[1].err, "deep.json: line 1, column 109: nested deeper than 100 levels"))
      << r[1].err;
  expect_one_line_error(r[2], ml::ExitCode::kConfig, "typo of the only key");
  EXPECT_TRUE(contains(r[2].err, "dta: unknown key (did you mean 'data'?)")) << r[2].err;
  expect_one_line_error(r[3], ml::ExitCode::kConfig, "integer overflow");
  EXPECT_TRUE(contains(r[3].err, "model.hidden[0] = 4294967297: expected an integer that fits"))
      << r[3].err;
  expect_one_line_error(r[4], ml::ExitCode::kConfig, "float overflow");
  EXPECT_TRUE(contains(r[4].err, "meta.inner_lr = 1e+300: must fit a 32-bit float")) << r[4].err;
  expect_one_line_error(r[5], ml::ExitCode::kUsage, "--set key depth");
  EXPECT_TRUE(contains(r[5].err, "the key has 60000 segments")) << r[5].err.substr(0, 300);
  // Range errors of options in plain words, not DBL_MAX written out.
  for (int i : {5, 6, 7, 8, 9}) EXPECT_LT(r[i].err.size(), 300u) << r[i].err.substr(0, 500);
  expect_one_line_error(r[6], ml::ExitCode::kUsage, "--threads range");
  EXPECT_TRUE(contains(r[6].err, "'-1' is not a whole number from 0 to 1024")) << r[6].err;
  expect_one_line_error(r[7], ml::ExitCode::kUsage, "--top-k range");
  EXPECT_TRUE(contains(r[7].err, "'0' is not a whole number from 1 to 2147483647")) << r[7].err;
  expect_one_line_error(r[8], ml::ExitCode::kUsage, "--inner-lr range");
  EXPECT_TRUE(contains(r[8].err, "'1e300' does not fit a 32-bit float")) << r[8].err;
  expect_one_line_error(r[9], ml::ExitCode::kUsage, "--stop-after range");
  EXPECT_TRUE(contains(r[9].err, "'-1' is not a whole number from 0 to 2147483647")) << r[9].err;
  // inspect takes --threads (it parses CSVs with them), and --log-level works after the
  // subcommand: a bad level is refused there too.
  ASSERT_EQ(r[10].code, 0) << r[10].err;
  EXPECT_EQ(json::parse(r[10].out)["run"]["threads"], 3);
  expect_one_line_error(r[11], ml::ExitCode::kUsage, "--log-level after the subcommand");
  EXPECT_TRUE(contains(r[11].err, "--log-level loud")) << r[11].err;
  // 64-bit options: CLI11 itself wrapped -1 to 2^64 - 1 and saturated what overflowed.
  expect_one_line_error(r[12], ml::ExitCode::kUsage, "--seed -1");
  EXPECT_TRUE(contains(r[12].err, "'-1' is not a whole number from 0 to 18446744073709551615"))
      << r[12].err;
  expect_one_line_error(r[13], ml::ExitCode::kUsage, "--users overflow");
  EXPECT_TRUE(contains(r[13].err, "'99999999999999999999' is not a whole number from"))
      << r[13].err;
  // synth's own range checks are usage errors too (they were config errors, exit 3), and
  // every integer option states its range instead of CLI11's "Could not convert".
  expect_one_line_error(r[14], ml::ExitCode::kUsage, "synth --zipf 99");
  EXPECT_TRUE(contains(r[14].err, "--zipf = 99: must be <= 5")) << r[14].err;
  expect_one_line_error(r[15], ml::ExitCode::kUsage, "synth --days 1e3");
  EXPECT_TRUE(contains(r[15].err, "'1e3' is not a whole number from 1 to 36500")) << r[15].err;
  expect_one_line_error(r[16], ml::ExitCode::kUsage, "eval --episodes overflow");
  EXPECT_TRUE(contains(r[16].err, "'2147483648' is not a whole number from 1 to 1000000"))
      << r[16].err;
  expect_one_line_error(r[17], ml::ExitCode::kUsage, "eval --shots overflow");
  EXPECT_TRUE(contains(r[17].err, "'99999999999' is not a whole number from 1 to 1000000"))
      << r[17].err;
  // 100000 threads used to start creating them (gigabytes, minutes) before anything else.
  expect_one_line_error(r[18], ml::ExitCode::kUsage, "--threads bound");
  EXPECT_TRUE(contains(r[18].err, "'100000' is not a whole number from 0 to 1024")) << r[18].err;
  EXPECT_FALSE(fs::exists(dir.file("s")));  // refused before anything is written
}

// A --set value that is not UTF-8 (a Latin-1 shell, a stray byte) used to pass the config
// check and fail when train wrote the resolved config: "internal error" (exit 1) and a run
// directory left behind. Found by tests/fuzz/fuzz_config.cpp.
TEST(CliErrors, SetValueThatIsNotUtf8IsAUsageError) {
  TempDir dir;
  write_file(dir.file("good.json"),
             R"({"data": {"files": ["log.csv"],
                 "columns": {"task": "category", "user": "user_id", "item": "item_id"}}})");
  const std::string run_dir = dir.file("run\xff");
  auto r =
      run_many({"train --config " + q(dir.file("good.json")) + " --set " + q("run.dir=" + run_dir),
                "inspect --config " + q(dir.file("good.json")) +
                    " --set run.device=cpu\xe9 --print-config"});
  EXPECT_TRUE(contains(r[0].err, "byte 0xFF at offset")) << r[0].err;
  EXPECT_TRUE(contains(r[1].err, "'run.device=cpu\\xE9': byte 0xE9 at offset 14")) << r[1].err;
  for (const Result& one : r) {
    expect_one_line_error(one, ml::ExitCode::kUsage, "--set value not UTF-8");
    EXPECT_TRUE(contains(one.err, "is not UTF-8; config values are UTF-8 text")) << one.err;
  }
  EXPECT_FALSE(fs::exists(run_dir));
}

// ---- real data -----------------------------------------------------------------------------

struct CsvCounts {
  std::int64_t records = 0;
  std::map<std::string, std::set<std::string>> distinct;  // column -> values
  std::map<std::string, std::int64_t> empty;              // column -> empty cells
};

CsvCounts count_csv(const std::vector<std::string>& files,
                    const std::vector<std::string>& columns) {
  CsvCounts counts;
  for (const auto& file : files) {
    ml::data::CsvReader reader(file, {',', true, '"'});
    std::vector<std::size_t> index;
    for (const auto& c : columns) {
      auto it = std::find(reader.header().begin(), reader.header().end(), c);
      EXPECT_NE(it, reader.header().end()) << c << " in " << file;
      index.push_back(static_cast<std::size_t>(it - reader.header().begin()));
    }
    ml::data::CsvRecord r;
    while (reader.next(r)) {
      ++counts.records;
      for (std::size_t k = 0; k < columns.size(); ++k) {
        const auto cell = ml::trim(r.fields.at(index[k]));
        counts.distinct[columns[k]].insert(std::string(cell));
        counts.empty[columns[k]] += cell.empty() ? 1 : 0;
      }
    }
  }
  return counts;
}

// ---- help texts that state where defaults come from --------------------------------------

TEST(CliHelp, AdaptNamesTheValidatedChoiceAsItsDefaultSetting) {
  const Result r = run("adapt --help");
  ASSERT_EQ(r.code, 0) << r.err;
  // --steps and --inner-lr fall back to RUN/adaptation.json first, the config only without it.
  const std::string steps = r.out.substr(r.out.find("--steps"));
  EXPECT_TRUE(contains(steps.substr(0, steps.find("--inner-lr")), "RUN/adaptation.json")) << r.out;
  EXPECT_TRUE(contains(r.out.substr(r.out.find("--inner-lr")), "RUN/adaptation.json")) << r.out;
}

// ---- the README's "Bring your own log" walkthrough ------------------------------------------

// The first fenced block of `kind` ("json", "text") after the line `heading` in README.md.
std::string readme_block(const std::string& heading, const std::string& kind) {
  const std::string readme = slurp(std::string(ML_SOURCE_DIR) + "/README.md");
  const std::size_t at = readme.find("\n" + heading + "\n");
  EXPECT_NE(at, std::string::npos) << heading;
  const std::string fence = "```" + kind + "\n";
  const std::size_t open = readme.find(fence, at);
  EXPECT_NE(open, std::string::npos) << heading << ": no " << kind << " block";
  const std::size_t begin = open + fence.size();
  return readme.substr(begin, readme.find("```", begin) - begin);
}

// A synthetic log exported as a shop would: its own column names, ';' delimited, UTC times.
void export_as_shop(const std::string& events, const std::string& out) {
  ml::data::CsvReader reader(events, {',', true, '"'});
  const auto& header = reader.header();
  std::vector<std::size_t> columns;
  for (const char* name : {"user_id", "item_id", "category", "event", "timestamp", "price"})
    columns.push_back(
        static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin()));
  std::ostringstream csv;
  csv << "customer;sku;dept;action;ts;unit_price\n";
  ml::data::CsvRecord rec;
  while (reader.next(rec)) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      std::string cell(rec.fields.at(columns[c]));
      if (c == 4) cell += "Z";
      csv << (c ? ";" : "") << cell;
    }
    csv << "\n";
  }
  fs::create_directories(fs::path(out).parent_path());
  write_file(out, csv.str());
}

// The README's minimal config and commands, run as a user runs them from their own folder:
// train (what its summary says), --print-config reused as a config, adapt, recommend, and a
// category the log does not have served from its rows.
TEST(CliWalkthrough, MinimalConfigFromTheReadmeTrainsAdaptsAndServesANewCategory) {
  TempDir dir;
  Result synth = run("synth --out " + q(dir.file("synth")) +
                     " --users 300 --categories 20 --sessions 8000 --seed 5");
  ASSERT_EQ(synth.code, 0) << synth.err;
  export_as_shop(dir.file("synth/events.csv"), dir.file("data/myshop/orders.csv"));
  const json config = json::parse(readme_block("## Bring your own log", "json"));
  ASSERT_EQ(config["data"]["files"][0], "../data/myshop/orders.csv");
  fs::create_directories(dir.path() / "myconfigs");
  write_file(dir.file("myconfigs/myshop.json"), config.dump(2));
  // Commands run in the user's folder, as the README shows them.
  auto in_folder = [&](const std::string& args, const std::string& folder = "") {
    return ml::testing::run_command("cd " + q(dir.file(folder)) + " && " + q(ML_BINARY_PATH) + " " +
                                    args);
  };
  const std::string quick = " --set meta.iterations=10 --set meta.meta_batch=4 --threads 1";

  const Result train = in_folder("train --config myconfigs/myshop.json" + quick);
  ASSERT_EQ(train.code, 0) << train.err;
  std::string best, adaptation;
  for (const std::string& line : lines_of(train.out)) {
    if (ml::starts_with(line, "best ")) best = line;
    if (ml::starts_with(line, "adaptation ")) adaptation = line;
  }
  // Each figure says what it measured, so that the two do not read as one disagreeing.
  EXPECT_TRUE(contains(best, "episodes per validation task at K=10 adapted with")) << best;
  EXPECT_TRUE(contains(best, "(meta.adapt_steps, meta.inner_lr)")) << best;
  EXPECT_TRUE(contains(adaptation, "(RUN/adaptation.json, adapt's default)")) << adaptation;
  EXPECT_TRUE(contains(adaptation, "other episodes at K=10")) << adaptation;
  for (const char* wrong : {" 1 steps", "99999"})
    EXPECT_FALSE(contains(train.out + train.err, wrong)) << train.out << train.err;
  // 20 departments, 10% for validation: a choice on too few tasks, said with what to raise.
  EXPECT_TRUE(contains(train.err, "[warning] the adaptation setting was chosen on only"))
      << train.err;
  EXPECT_TRUE(contains(train.err, "raise split.validation_fraction (now 0.1)")) << train.err;

  // --print-config is a config, saved anywhere and used from anywhere; RUN/config.json resumes.
  const Result printed = in_folder("train --config myconfigs/myshop.json --print-config");
  ASSERT_EQ(printed.code, 0) << printed.err;
  fs::create_directories(dir.path() / "saved");
  write_file(dir.file("saved/printed.json"), printed.out);
  const Result reused = run("inspect --config " + q(dir.file("saved/printed.json")));
  EXPECT_EQ(reused.code, 0) << reused.err;
  const Result resumed = in_folder("train --config runs/myshop/config.json --resume --threads 1");
  EXPECT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(contains(resumed.out, "already finished")) << resumed.out;

  const Result adapt = in_folder("adapt --checkpoint runs/myshop --all-new --threads 1 --json");
  ASSERT_EQ(adapt.code, 0) << adapt.err;
  const json adapted = json::parse(adapt.out);
  ASSERT_GE(adapted["tasks"].size(), 2u);
  EXPECT_TRUE(contains(adapted["settings_source"].get<std::string>(), "adaptation.json"));
  const std::string task = adapted["tasks"][0]["task"], other = adapted["tasks"][1]["task"];
  const std::string model = adapted["tasks"][0]["checkpoint"];
  const std::string user = "u000001";
  auto recommend =
      run_many({"predict --checkpoint " + q(dir.file(model)) + " --recommend --user " + user +
                    " --top-k 5 --threads 1",
                "predict --checkpoint " + q(dir.file(model)) + " --recommend --task " + q(other) +
                    " --user " + user + " --threads 1",
                "predict --checkpoint " + q(dir.file("runs/myshop")) +
                    " --recommend --task 'Smart Plugs' --user " + user + " --threads 1"});
  ASSERT_EQ(recommend[0].code, 0) << recommend[0].err;
  EXPECT_EQ(lines_of(recommend[0].out).size(), 6u) << recommend[0].out;
  // aggregate_rows = "before_cutoff": a held-out department's items keep their history, so
  // not all score alike (those nobody touched before the cutoff still may).
  EXPECT_FALSE(contains(recommend[0].err, "got only 1 distinct score")) << recommend[0].err;
  expect_one_line_error(recommend[1], ml::ExitCode::kUsage, "another task's items");
  EXPECT_TRUE(contains(recommend[1].err, "was adapted to task '" + task + "'")) << recommend[1].err;
  expect_one_line_error(recommend[2], ml::ExitCode::kData, "a category the log lacks");
  EXPECT_TRUE(contains(recommend[2].err, "--input ROWS.csv")) << recommend[2].err;

  // The README's new category, from its rows.
  write_file(dir.file("smartplugs.csv"), readme_block("### Serving a new category", "text"));
  const Result plugs = in_folder(
      "adapt --checkpoint runs/myshop --task 'Smart Plugs' --support-csv smartplugs.csv "
      "--threads 1");
  ASSERT_EQ(plugs.code, 0) << plugs.err;
  const Result served = in_folder(
      "predict --checkpoint runs/myshop/adapted/Smart_Plugs.mlckpt --recommend "
      "--input smartplugs.csv --user u000001 --threads 1");
  ASSERT_EQ(served.code, 0) << served.err;
  const auto served_lines = lines_of(served.out);
  ASSERT_EQ(served_lines.size(), 2u) << served.out;  // u000001 bought sp0001: sp0002 is left
  EXPECT_EQ(served_lines[1].rfind("u000001,1,sp0002,", 0), 0u) << served.out;
  // Options of text runs on this purchase-log run are refused, not silently ignored.
  const auto text_only =
      run_many({"predict --checkpoint " + q(dir.file("runs/myshop/adapted/Smart_Plugs.mlckpt")) +
                    " --input " + q(dir.file("smartplugs.csv")) + " --top-k 3",
                "eval --checkpoint " + q(dir.file("runs/myshop")) + " --many-way-shots 5"});
  expect_one_line_error(text_only[0], ml::ExitCode::kUsage, "--top-k without --recommend");
  EXPECT_TRUE(contains(text_only[0].err, "add --recommend or leave --top-k out"))
      << text_only[0].err;
  expect_one_line_error(text_only[1], ml::ExitCode::kUsage, "--many-way-shots on a log run");
  EXPECT_TRUE(contains(text_only[1].err, "is a purchase-log run")) << text_only[1].err;

  // Without the history of held-out items (the default "training") and without item
  // attributes, every candidate looks alike to the model: predict says so, once per list.
  const Result plain = in_folder(
      "train --config myconfigs/myshop.json --set "
      "features.aggregate_rows=training --set run.dir=runs/plain --set "
      "split.validation_fraction=0" +
      quick);
  ASSERT_EQ(plain.code, 0) << plain.err;
  const Result plain_adapt =
      in_folder("adapt --checkpoint runs/plain --task " + q(task) + " --threads 1");
  ASSERT_EQ(plain_adapt.code, 0) << plain_adapt.err;
  const Result tied = in_folder("predict --checkpoint runs/plain/adapted/" +
                                ml::inference::adapted_file_name(task) + " --recommend --user " +
                                user + " --threads 1");
  ASSERT_EQ(tied.code, 0) << tied.err;
  EXPECT_EQ(count_of(tied.err, "distinct score"), 1) << tied.err;
  EXPECT_TRUE(contains(tied.err, "[warning] user '" + user + "': the ")) << tied.err;
  EXPECT_TRUE(contains(tied.err, "got only 1 distinct score, so tied items are ranked by item id"))
      << tied.err;
  // The cause, from this model's config: no item table, and no history for held-out items.
  EXPECT_TRUE(contains(tied.err, "this config maps no item attributes")) << tied.err;
  EXPECT_TRUE(contains(tied.err, "under features.aggregate_rows = \"training\"")) << tied.err;
}

TEST(CliRealData, DunnhumbyInspectMatchesTheReferenceFigures) {
  const std::string dir = std::string(ML_SHARED_DIR) + "/datasets/dunnhumby-completejourney";
  if (!fs::exists(dir)) GTEST_SKIP() << "no Dunnhumby sample at " << dir;
  Result r = run("inspect --config " + q(std::string(ML_SOURCE_DIR) + "/configs/dunnhumby.json") +
                 " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);

  auto counts = count_csv({dir + "/transactions_sample_with_category.part1.csv",
                           dir + "/transactions_sample_with_category.part2.csv"},
                          {"household_id", "product_category"});
  const auto& categories = counts.distinct["product_category"];
  EXPECT_EQ(counts.records, 75000);
  EXPECT_EQ(categories.size(), 291u);  // the empty category included
  ASSERT_EQ(categories.count(""), 1u);
  const std::int64_t without_category = counts.empty["product_category"];
  EXPECT_EQ(without_category, 331);

  EXPECT_EQ(j["rows"]["read"].get<std::int64_t>(), counts.records);
  EXPECT_EQ(j["rows"]["read"], 75000);
  EXPECT_EQ(j["rows"]["rejected"], 0);
  EXPECT_EQ(j["task_keys"].get<std::size_t>(), categories.size() - 1);
  EXPECT_EQ(j["task_keys"], 290);
  EXPECT_EQ(j["rows"]["without_task"].get<std::int64_t>(), without_category);
  EXPECT_EQ(j["users"].get<std::size_t>(), counts.distinct["household_id"].size());
  EXPECT_EQ(j["users"], 2377);
  // The split the reference run reports for the same protocol (REAL-DATA-NOTES.md).
  EXPECT_EQ(j["qualifying_tasks"], 196);
  EXPECT_EQ(j["split"]["train"]["tasks"], 137);
  EXPECT_EQ(j["split"]["validation"]["tasks"], 20);
  EXPECT_EQ(j["split"]["new"]["tasks"], 39);
}

TEST(CliRealData, DunnhumbyManufacturersComeFromTheProductTable) {
  const std::string dir = std::string(ML_SHARED_DIR) + "/datasets/dunnhumby-completejourney";
  if (!fs::exists(dir)) GTEST_SKIP() << "no Dunnhumby sample at " << dir;
  Result r =
      run("inspect --config " +
          q(std::string(ML_SOURCE_DIR) + "/configs/dunnhumby_manufacturers.json") + " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const json j = json::parse(r.out);
  // The join made by hand: each transaction's product, looked up in the product table.
  std::map<std::string, std::string> maker_of;
  {
    ml::data::CsvReader reader(dir + "/products_in_sample.csv", {',', true, '"'});
    const auto& h = reader.header();
    const auto product = std::find(h.begin(), h.end(), "product_id") - h.begin();
    const auto maker = std::find(h.begin(), h.end(), "manufacturer_id") - h.begin();
    ml::data::CsvRecord rec;
    while (reader.next(rec))
      maker_of.emplace(std::string(ml::trim(rec.fields.at(static_cast<std::size_t>(product)))),
                       std::string(ml::trim(rec.fields.at(static_cast<std::size_t>(maker)))));
  }
  std::set<std::string> makers;
  std::int64_t without_maker = 0;
  for (const char* part : {"part1", "part2"}) {
    ml::data::CsvReader reader(dir + "/transactions_sample_with_category." + part + ".csv",
                               {',', true, '"'});
    const auto& h = reader.header();
    const auto product = std::find(h.begin(), h.end(), "product_id") - h.begin();
    ml::data::CsvRecord rec;
    while (reader.next(rec)) {
      auto it =
          maker_of.find(std::string(ml::trim(rec.fields.at(static_cast<std::size_t>(product)))));
      if (it == maker_of.end() || it->second.empty())
        ++without_maker;
      else
        makers.insert(it->second);
    }
  }
  EXPECT_EQ(j["task_keys"].get<std::size_t>(), makers.size());
  EXPECT_GT(makers.size(), 100u);
  // Rows whose product the table lacks (PROVENANCE.txt counts 222) belong to no task.
  EXPECT_EQ(j["rows"]["without_task"].get<std::int64_t>(), without_maker);
  EXPECT_GT(without_maker, 0);
  EXPECT_GT(j["qualifying_tasks"].get<int>(), 20);
  EXPECT_EQ(j["training_problem"], "");
}

TEST(CliRealData, MovieLensInspect) {
  const std::string dir = std::string(ML_SHARED_DIR) + "/datasets/ml-latest-small";
  if (!fs::exists(dir)) GTEST_SKIP() << "no MovieLens sample at " << dir;
  Result r = run("inspect --config " + q(std::string(ML_SOURCE_DIR) + "/configs/movielens.json") +
                 " --json");
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  auto counts = count_csv({dir + "/ratings.csv"}, {"userId", "movieId"});
  EXPECT_EQ(counts.records, 100836);
  EXPECT_EQ(j["rows"]["read"].get<std::int64_t>(), counts.records);
  EXPECT_EQ(j["rows"]["rejected"], 0);
  EXPECT_EQ(j["users"].get<std::size_t>(), counts.distinct["userId"].size());
  EXPECT_EQ(j["users"], 610);
  EXPECT_EQ(j["items"].get<std::size_t>(), counts.distinct["movieId"].size());
  EXPECT_EQ(j["task_keys"], 610);  // one task per user
  EXPECT_EQ(j["labels"]["kind"], "threshold");
  EXPECT_EQ(j["labels"]["examples"], 100836);
}

}  // namespace
