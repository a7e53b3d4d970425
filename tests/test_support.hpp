// Shared test fixtures: a temporary directory per test, and a small synthetic shop with a
// config like configs/synthetic.json, so tests that need a trained run build it one way.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.hpp"
#include "synth/synthetic_log.hpp"

namespace ml::testing {

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

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
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
