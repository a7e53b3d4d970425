// Shared test fixtures: a temporary directory per test, and a small synthetic shop with a
// config like configs/synthetic.json, so tests that need a trained run build it one way.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "synth/synthetic_log.hpp"

namespace ml::testing {

// The enum value a config spells `name`, for tests parameterised by names; throws for an
// unknown name so that a typo fails the test.
template <typename E>
E choice(const std::string& name) {
  const auto value = ml::enum_from_name<E>(name);
  if (!value) throw std::invalid_argument("no such choice: " + name);
  return *value;
}

// A fresh directory per instance, removed afterwards even when the test fails.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "_" + info->name() : "x";
    for (char& c : name)
      if (c == '/') c = '_';
    path_ =
        std::filesystem::temp_directory_path() / ("metalearn_test_" + std::to_string(::getpid()) +
                                                  "_" + std::to_string(counter++) + "_" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Makes `folder` the working directory for a scope and restores the previous one, also when
// the test fails (for what resolves relative paths against the working directory).
class WorkingDirectory {
 public:
  explicit WorkingDirectory(const std::filesystem::path& folder)
      : previous_(std::filesystem::current_path()) {
    std::filesystem::current_path(folder);
  }
  ~WorkingDirectory() {
    std::error_code ec;
    std::filesystem::current_path(previous_, ec);
  }
  WorkingDirectory(const WorkingDirectory&) = delete;
  WorkingDirectory& operator=(const WorkingDirectory&) = delete;

 private:
  std::filesystem::path previous_;
};

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Whether `part` occurs in `text` (for messages: EXPECT_TRUE(contains(err, "...")) << err).
inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Single-quotes one shell word.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CliResult {
  int code = -1;
  std::string out, err;
  int err_lines() const { return static_cast<int>(std::count(err.begin(), err.end(), '\n')); }
};

// Runs a shell command line, capturing stdout, stderr and the exit code.
inline CliResult run_command(const std::string& command_line) {
  TempDir capture;
  const std::string out = capture.file("stdout"), err = capture.file("stderr");
  const std::string command =
      command_line + " >" + shell_quote(out) + " 2>" + shell_quote(err) + " </dev/null";
  const int status = std::system(command.c_str());
  CliResult r;
  r.code = status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

#ifdef ML_BINARY_PATH
// Runs the metalearn binary with `args` (already shell-quoted), capturing stdout, stderr and
// the exit code.
inline CliResult run_cli(const std::string& args) {
  return run_command(shell_quote(ML_BINARY_PATH) + " " + args);
}

// Runs several invocations at once: most of each one's time is loading LibTorch.
inline std::vector<CliResult> run_cli_many(const std::vector<std::string>& args) {
  std::vector<std::future<CliResult>> running;
  for (const auto& a : args) running.push_back(std::async(std::launch::async, run_cli, a));
  std::vector<CliResult> results;
  for (auto& f : running) results.push_back(f.get());
  return results;
}
#endif

// Six intents of eight texts: "lost" and "fee" held out as new, "pin" and "refund" for
// validation, "card" and "topup" to train on.
inline config::Config tiny_text_run(const TempDir& dir) {
  std::string csv = "text,category\n";
  for (const char* intent : {"card", "topup", "refund", "pin", "fee", "lost"})
    for (int i = 0; i < 8; ++i)
      csv += std::string("my ") + intent + " question " + std::to_string(i) + " please," + intent +
             "\n";
  ml::testing::write_file(dir.file("intents.csv"), csv);
  config::Json j = config::Json::parse(R"({
    "data": {"text": {"column": "text", "class_column": "category"}},
    "task": {"label": {"kind": "multiclass", "ways": 2}, "support": 2, "query": 3},
    "model": {"type": "transformer",
              "transformer": {"dim": 16, "heads": 2, "layers": 2, "ff_dim": 24, "max_len": 10}},
    "features": {"tokenizer": {"vocab_size": 60, "hash_buckets": 16}},
    "split": {"new_classes": ["lost", "fee"], "validation_classes": ["pin", "refund"]},
    "meta": {"iterations": 4, "meta_batch": 2, "inner_steps": 1},
    "train": {"validate_every": 0},
    "run": {"device": "cpu", "threads": 1}
  })");
  j["data"]["files"] = {dir.file("intents.csv")};
  j["run"]["dir"] = dir.file("text_run");
  return config::config_from_json(j);
}

// Writes a small synthetic shop into dir/synth and returns a validated config for it:
// purchase vs view/cart labels per category, item and user side tables, a small MLP, a short
// meta-training run into dir/run.
inline config::Config synthetic_shop(const TempDir& dir, std::int64_t users = 300,
                                     std::int64_t categories = 12, std::int64_t sessions = 6000) {
  synth::SynthOptions o;
  o.users = users;
  o.categories = categories;
  o.sessions = sessions;
  o.seed = 11;
  auto files = synth::write_synthetic_log(o, dir.file("synth")).files;
  config::Json j = {
      {"seed", 7},
      {"data",
       {{"files", {files.events}},
        {"columns",
         {{"user", "user_id"},
          {"item", "item_id"},
          {"task", "category"},
          {"timestamp", "timestamp"},
          {"event", "event"},
          {"price", "price"}}},
        {"side_tables",
         {{{"files", {files.items}},
           {"join", "item"},
           {"key", "item_id"},
           {"features", {{"numeric", {"base_price"}}, {"categorical", {"brand", "price_tier"}}}}},
          {{"files", {files.users}},
           {"join", "user"},
           {"key", "user_id"},
           {"features", {{"numeric", {"loyalty_member"}}, {"categorical", {"age_band"}}}}}}}}},
      {"task",
       {{"label",
         {{"kind", "event_binary"},
          {"positive_events", {"purchase"}},
          {"negative_events", {"view", "cart"}}}},
        {"support", 6},
        {"query", 10}}},
      {"split", {{"new_fraction", 0.25}, {"validation_fraction", 0.15}}},
      {"model", {{"hidden", {32}}}},
      {"meta", {{"iterations", 30}, {"meta_batch", 4}, {"inner_steps", 2}}},
      {"train", {{"log_every", 5}, {"validate_every", 10}, {"checkpoint_every", 10}}},
      {"run", {{"dir", dir.file("run")}, {"device", "cpu"}, {"threads", 1}}}};
  return config::config_from_json(j);
}

}  // namespace ml::testing
