// features.embeddings: the CSV and binary table formats, their errors, the join onto examples,
// inspect's coverage counts, learning from a planted item vector, and refusing a changed table.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "features/embedding_table.hpp"
#include "features/feature_space.hpp"
#include "inference/prediction.hpp"
#include "inspect/log_profile.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/run_data.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"
#include "util/errors.hpp"
#include "util/rng.hpp"
#include "util/utf8.hpp"

namespace {

using ml::testing::contains;
using ml::testing::TempDir;
using ml::testing::write_file;

constexpr int kDim = 4;
constexpr int kTasks = 10;
constexpr int kItemsPerTask = 6;
constexpr int kUsers = 12;

// A shop whose label depends only on a planted item vector: an example is a 1 iff its item's
// v[0] + v[1] > 0. Tasks T0..T9 hold six items each; T8 and T9 are held out.
struct PlantedShop {
  std::vector<std::string> items;
  std::vector<std::array<float, kDim>> vectors;
  int label(std::size_t item) const { return vectors[item][0] + vectors[item][1] > 0 ? 1 : 0; }
};

PlantedShop planted_shop() {
  PlantedShop shop;
  ml::Rng rng(5);
  for (int i = 0; i < kTasks * kItemsPerTask; ++i) {
    shop.items.push_back("i" + std::to_string(i));
    std::array<float, kDim> v{};
    for (float& x : v) x = static_cast<float>(2 * ml::uniform01(rng) - 1);
    shop.vectors.push_back(v);
  }
  return shop;
}

// Every user rates every item of every task; `noise` is a row feature without signal, so that
// the model has an input without the table too.
std::string log_csv(const PlantedShop& shop, const std::vector<int>& tasks) {
  ml::Rng rng(9);
  std::string out = "user,item,task,rating,noise\n";
  for (int t : tasks)
    for (int u = 0; u < kUsers; ++u)
      for (int k = 0; k < kItemsPerTask; ++k) {
        const auto i = static_cast<std::size_t>(t * kItemsPerTask + k);
        out += "u" + std::to_string(u) + "," + shop.items[i] + ",T" + std::to_string(t) + "," +
               std::to_string(shop.label(i)) + "," + std::to_string(ml::uniform01(rng)) + "\n";
      }
  return out;
}

std::vector<int> all_tasks() {
  std::vector<int> t;
  for (int i = 0; i < kTasks; ++i) t.push_back(i);
  return t;
}

// The table's CSV (a header, then key and vector), leaving out the items for which `skip` holds.
std::string vectors_csv(const PlantedShop& shop,
                        const std::function<bool(std::size_t)>& skip = nullptr) {
  std::string out = "item_id,a,b,c,d\n";
  for (std::size_t i = 0; i < shop.items.size(); ++i) {
    if (skip && skip(i)) continue;
    out += shop.items[i];
    for (float x : shop.vectors[i]) out += "," + std::to_string(x);
    out += "\n";
  }
  return out;
}

ml::config::Json shop_json(const TempDir& dir, bool with_table, const std::string& table_file) {
  ml::config::Json j = {
      {"seed", 3},
      {"data",
       {{"files", {dir.file("log.csv")}},
        {"columns", {{"user", "user"}, {"item", "item"}, {"task", "task"}, {"rating", "rating"}}},
        {"features", {{"numeric", {"noise"}}}}}},
      {"features", {{"aggregates", ml::config::Json::array()}}},
      {"task",
       {{"label", {{"kind", "threshold"}, {"threshold", 0.5}}}, {"support", 4}, {"query", 8}}},
      {"split", {{"new_tasks", {"T8", "T9"}}, {"validation_fraction", 0.15}}},
      {"model", {{"hidden", {16}}}},
      {"meta",
       {{"algorithm", "fomaml"},
        {"iterations", 60},
        {"meta_batch", 4},
        {"inner_steps", 1},
        {"outer_lr", 0.01}}},
      {"train", {{"log_every", 20}, {"validate_every", 30}, {"checkpoint_every", 60}}},
      {"run",
       {{"dir", dir.file(with_table ? "run_table" : "run_plain")},
        {"device", "cpu"},
        {"threads", 1}}}};
  if (with_table)
    j["features"]["embeddings"] = {
        {{"file", table_file}, {"join", "item"}, {"key", "item_id"}, {"dim", kDim}}};
  return j;
}

ml::config::Config shop_config(const TempDir& dir, const std::string& table_file,
                               const std::string& missing = "zero") {
  auto j = shop_json(dir, true, table_file);
  j["features"]["embeddings"][0]["missing"] = missing;
  return ml::config::config_from_json(j);
}

// Every example's dense vector, in task order.
std::vector<std::vector<float>> encoded(const ml::pipeline::RunData& run) {
  std::vector<std::vector<float>> out;
  std::vector<std::int64_t> ids(run.features.id_fields());
  for (const auto& task : run.tasks.tasks)
    for (const auto& e : task.examples) {
      std::vector<float> dense(run.features.dense_dim());
      run.encoder.encode(e, dense.data(), ids.data());
      out.push_back(std::move(dense));
    }
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ml::DataError& e) {
    return e.what();
  }
  return "(no DataError)";
}

ml::config::EmbeddingTableConfig table_at(const std::string& file, int dim) {
  ml::config::EmbeddingTableConfig t;
  t.file = file;
  t.dim = dim;
  return t;
}

}  // namespace

TEST(EmbeddingTable, BinaryRoundTripMapsKeysAndVectorsBack) {
  TempDir dir;
  // A backslash and a Latin-1 byte: keys are raw bytes, matched as the log reader escapes them.
  const std::vector<std::string> keys = {"plain", "back\\slash", std::string("caf\xE9")};
  const std::vector<float> values = {1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -7.0f};
  const std::string path = dir.file("t.mlemb");
  ml::features::write_embedding_binary(path, keys, values.data(), 2);
  EXPECT_EQ(std::filesystem::file_size(path), 64u + 4 * 6 + (4 + 5) + (4 + 10) + (4 + 4));
  const auto table = ml::features::EmbeddingTable::open(table_at(path, 2));
  ASSERT_EQ(table->rows(), 3);
  ASSERT_EQ(table->dim(), 2);
  for (std::size_t r = 0; r < keys.size(); ++r) {
    const std::int64_t row = table->find(ml::cell_escaped(keys[r]));
    ASSERT_EQ(row, static_cast<std::int64_t>(r)) << keys[r];
    EXPECT_EQ(table->row(row)[0], values[2 * r]);
    EXPECT_EQ(table->row(row)[1], values[2 * r + 1]);
  }
  EXPECT_EQ(table->find("absent"), -1);
  EXPECT_EQ(table->find("back\\slash"), -1);  // the raw spelling is not how the log holds it

  // The converter writes a CSV table's rows, keys unescaped back to their bytes.
  write_file(dir.file("t.csv"), "key,x,y\nplain,1.5,-2\nback\\slash,0,3.25\n");
  EXPECT_EQ(
      ml::features::convert_embedding_table(table_at(dir.file("t.csv"), 0), dir.file("c.mlemb")),
      2);
  const auto converted = ml::features::EmbeddingTable::open(table_at(dir.file("c.mlemb"), 2));
  EXPECT_EQ(converted->find("back\\\\slash"), 1);
  EXPECT_EQ(converted->row(1)[1], 3.25f);

  // Converting a table onto itself is refused before anything is written: the CSV survives.
  const std::string before = ml::testing::slurp(dir.file("t.csv"));
  EXPECT_THROW(
      ml::features::convert_embedding_table(table_at(dir.file("t.csv"), 0), dir.file("./t.csv")),
      ml::UsageError);
  EXPECT_EQ(ml::testing::slurp(dir.file("t.csv")), before);
}

TEST(EmbeddingTable, BadTablesAreOneLineNamingTheFileAndWhatWasExpected) {
  TempDir dir;
  const std::vector<float> values = {1, 2, 3, 4};
  const std::string good = dir.file("good.mlemb");
  ml::features::write_embedding_binary(good, {"a", "b"}, values.data(), 2);
  std::string bytes = ml::testing::slurp(good);
  auto variant = [&](const std::string& name, const std::function<void(std::string&)>& change) {
    std::string b = bytes;
    change(b);
    write_file(dir.file(name), b);
    return dir.file(name);
  };
  auto open_error = [&](const std::string& path, int dim) {
    return error_of([&] { ml::features::EmbeddingTable::open(table_at(path, dim)); });
  };
  const std::string truncated = variant("truncated.mlemb", [](std::string& b) { b.resize(70); });
  EXPECT_TRUE(contains(open_error(truncated, 2), "truncated")) << open_error(truncated, 2);
  EXPECT_TRUE(contains(open_error(truncated, 2), "truncated.mlemb"));
  const std::string short_header = variant("short.mlemb", [](std::string& b) { b.resize(20); });
  EXPECT_TRUE(contains(open_error(short_header, 2), "less than the 64-byte header"));
  const std::string magic = variant("magic.mlemb", [](std::string& b) { b[0] = 'X'; });
  EXPECT_TRUE(contains(open_error(magic, 2), "magic \"MLEMBTBL\"")) << open_error(magic, 2);
  const std::string newer = variant("newer.mlemb", [](std::string& b) { b[8] = 2; });
  EXPECT_TRUE(contains(open_error(newer, 2), "version 2; this build reads version 1"))
      << open_error(newer, 2);
  EXPECT_TRUE(contains(open_error(good, 3), "holds vectors of dim 2; dim = 3 was declared"))
      << open_error(good, 3);
  const std::string twice = variant("twice.mlemb", [](std::string& b) { b[b.size() - 1] = 'a'; });
  EXPECT_TRUE(contains(open_error(twice, 2), "key 'a' is on rows 1 and 2")) << open_error(twice, 2);
  const std::string nan = variant("nan.mlemb", [](std::string& b) {
    const float v = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(&b[64 + 3 * 4], &v, 4);
  });
  EXPECT_TRUE(contains(open_error(nan, 2), "row 2 (key 'b') value 2 is nan")) << open_error(nan, 2);

  write_file(dir.file("wide.csv"), "id,x,y\na,1,2\nb,1,2,3\n");
  EXPECT_TRUE(contains(open_error(dir.file("wide.csv"), 2), "wide.csv:3: 3 values after the key"))
      << open_error(dir.file("wide.csv"), 2);
  write_file(dir.file("narrow.csv"), "id,x,y\na,1,2\n");
  EXPECT_TRUE(contains(open_error(dir.file("narrow.csv"), 3),
                       "has 2 values after the key on its first line; dim = 3 was declared"))
      << open_error(dir.file("narrow.csv"), 3);
  write_file(dir.file("dup.csv"), "id,x\na,1\nb,2\na,3\n");
  EXPECT_TRUE(contains(open_error(dir.file("dup.csv"), 1), "key 'a' is on lines 2 and 4"))
      << open_error(dir.file("dup.csv"), 1);
  write_file(dir.file("inf.csv"), "id,x\na,1\nb,inf\n");
  EXPECT_TRUE(contains(open_error(dir.file("inf.csv"), 1), "inf.csv:3: column 2 is 'inf'"))
      << open_error(dir.file("inf.csv"), 1);
  write_file(dir.file("word.csv"), "id,x\na,one\n");
  EXPECT_TRUE(contains(open_error(dir.file("word.csv"), 1), "finite numbers"));
}

TEST(EmbeddingFeatures, CsvAndBinaryTablesGiveIdenticalFeatures) {
  TempDir dir;
  const PlantedShop shop = planted_shop();
  write_file(dir.file("log.csv"), log_csv(shop, all_tasks()));
  write_file(dir.file("vectors.csv"), vectors_csv(shop));
  auto csv_config = shop_config(dir, dir.file("vectors.csv"));
  csv_config.features.embeddings[0].normalize = ml::config::EmbeddingNormalize::kL2;
  ml::features::convert_embedding_table(csv_config.features.embeddings[0],
                                        dir.file("vectors.mlemb"));
  auto binary_config = csv_config;
  binary_config.features.embeddings[0].file = dir.file("vectors.mlemb");
  binary_config.features.embeddings[0].key = {};
  const auto from_csv = ml::pipeline::prepare_run_data(csv_config);
  const auto from_binary = ml::pipeline::prepare_run_data(binary_config);
  ASSERT_EQ(from_csv->features.dense_names(), from_binary->features.dense_names());
  const auto& names = from_csv->features.dense_names();
  ASSERT_EQ(names.back(), "embedding:vectors#3");
  EXPECT_EQ(encoded(*from_csv), encoded(*from_binary));

  // The joined values are the item's vector, l2-normalised and not standardised.
  const auto& e = from_csv->tasks.tasks[0].examples[0];
  std::vector<float> dense(names.size());
  std::vector<std::int64_t> ids(from_csv->features.id_fields());
  from_csv->encoder.encode(e, dense.data(), ids.data());
  const auto& v =
      shop.vectors[static_cast<std::size_t>(std::stoi(from_csv->log.items.name(e.item).substr(1)))];
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  for (int k = 0; k < kDim; ++k)
    EXPECT_NEAR(dense[names.size() - kDim + static_cast<std::size_t>(k)], v[k] / std::sqrt(norm),
                1e-6);
}

TEST(EmbeddingFeatures, MissingIdsGetZerosAndTheIndicatorAndInspectCountsThemPerSplit) {
  TempDir dir;
  const PlantedShop shop = planted_shop();
  write_file(dir.file("log.csv"), log_csv(shop, all_tasks()));
  // Absent: the first item of every task, and every item of T9 (items 54..59).
  write_file(dir.file("vectors.csv"), vectors_csv(shop, [](std::size_t i) {
               return i % kItemsPerTask == 0 || i >= 9 * kItemsPerTask;
             }));
  const auto config = shop_config(dir, dir.file("vectors.csv"), "learned");
  const auto run = ml::pipeline::prepare_run_data(config);
  const auto& names = run->features.dense_names();
  ASSERT_EQ(names.back(), "embedding:vectors:missing");
  std::vector<float> dense(names.size());
  std::vector<std::int64_t> ids(run->features.id_fields());
  int missing = 0, present = 0;
  for (const auto& task : run->tasks.tasks)
    for (const auto& e : task.examples) {
      run->encoder.encode(e, dense.data(), ids.data());
      const auto item = static_cast<std::size_t>(std::stoi(run->log.items.name(e.item).substr(1)));
      const bool absent = item % kItemsPerTask == 0 || item >= 9 * kItemsPerTask;
      const float* v = &dense[names.size() - 1 - kDim];
      EXPECT_EQ(dense.back(), absent ? 1.0f : 0.0f);
      // The CSV holds each value to 6 decimals.
      for (int k = 0; k < kDim; ++k) EXPECT_NEAR(v[k], absent ? 0.0f : shop.vectors[item][k], 1e-6);
      ++(absent ? missing : present);
    }
  EXPECT_GT(missing, 0);
  EXPECT_GT(present, 0);

  const auto profile = ml::inspect::profile_log(config);
  ASSERT_EQ(profile.embeddings.size(), 1u);
  const auto& p = profile.embeddings[0];
  EXPECT_EQ(p.rows, 60 - 10 - 5);
  EXPECT_EQ(p.dim, kDim);
  EXPECT_EQ(p.held_out_new.ids, 12);                 // T8 and T9's items
  EXPECT_EQ(p.held_out_new.missing, 1 + 6);          // T8's first, all of T9
  EXPECT_EQ(p.train.ids + p.validation.ids, 8 * 6);  // T0..T7
  EXPECT_EQ(p.train.missing + p.validation.missing, 8);
  std::ostringstream text;
  ml::inspect::print_profile(profile, text, false);
  EXPECT_TRUE(contains(text.str(), "7 of 12 items missing (58.3%)")) << text.str();
}

TEST(EmbeddingFeatures, APlantedItemVectorIsLearnedWithTheTableAndNotWithout) {
  TempDir dir;
  const PlantedShop shop = planted_shop();
  write_file(dir.file("log.csv"), log_csv(shop, all_tasks()));
  write_file(dir.file("vectors.mlemb"), "");
  {
    std::vector<float> values;
    for (const auto& v : shop.vectors) values.insert(values.end(), v.begin(), v.end());
    ml::features::write_embedding_binary(dir.file("vectors.mlemb"), shop.items, values.data(),
                                         kDim);
  }
  // The held-out tasks' rows, scored by each run's meta-learned init.
  write_file(dir.file("new.csv"), log_csv(shop, {8, 9}));
  std::vector<float> labels;
  for (int t : {8, 9})
    for (int u = 0; u < kUsers; ++u)
      for (int k = 0; k < kItemsPerTask; ++k)
        labels.push_back(static_cast<float>(shop.label(static_cast<std::size_t>(t * 6 + k))));
  auto held_out_auc = [&](bool with_table) {
    const auto config =
        ml::config::config_from_json(shop_json(dir, with_table, dir.file("vectors.mlemb")));
    ml::train::run_training(config, {});
    ml::inference::PredictOptions o;
    o.checkpoint = config.run.dir;
    o.input = dir.file("new.csv");
    o.device = "cpu";
    o.threads = 1;
    const auto scores = ml::inference::score_rows(o);
    std::vector<float> s;
    for (const auto& r : scores.rows) s.push_back(static_cast<float>(r.score));
    EXPECT_EQ(s.size(), labels.size());
    return ml::metrics::roc_auc(s, labels);
  };
  const double with_table = held_out_auc(true);
  const double without = held_out_auc(false);
  RecordProperty("held_out_auc_with_table", std::to_string(with_table));
  RecordProperty("held_out_auc_without", std::to_string(without));
  EXPECT_GT(with_table, 0.85) << "without: " << without;
  EXPECT_LT(without, 0.7);
  EXPECT_GT(with_table - without, 0.25);
}

TEST(EmbeddingFeatures, PredictRefusesATableThatChangedSinceTraining) {
  TempDir dir;
  const PlantedShop shop = planted_shop();
  write_file(dir.file("log.csv"), log_csv(shop, all_tasks()));
  write_file(dir.file("vectors.csv"), vectors_csv(shop));
  auto j = shop_json(dir, true, dir.file("vectors.csv"));
  j["meta"]["iterations"] = 4;
  j["train"] = {{"log_every", 2}, {"validate_every", 4}, {"checkpoint_every", 4}};
  const auto config = ml::config::config_from_json(j);
  ml::train::run_training(config, {});
  write_file(dir.file("new.csv"), log_csv(shop, {8}));
  ml::inference::PredictOptions o;
  o.checkpoint = config.run.dir;
  o.input = dir.file("new.csv");
  o.device = "cpu";
  o.threads = 1;
  EXPECT_EQ(ml::inference::score_rows(o).rows.size(), 72u);  // unchanged: scores
  // One value changed, same size: the checksum, not the size, tells.
  std::string text = vectors_csv(shop);
  const auto comma = text.find(',', text.find('\n') + 1);
  text[comma + 1] = text[comma + 1] == '-' ? '0' : '-';
  write_file(dir.file("vectors.csv"), text + "");
  const std::string error = error_of([&] { ml::inference::score_rows(o); });
  EXPECT_TRUE(contains(error, "is not the file the run was trained with")) << error;
  EXPECT_TRUE(contains(error, "vectors.csv")) << error;
}

TEST(ConfigEmbeddings, ChecksNameTheKeyAndPathsResolveAgainstTheConfigFolder) {
  TempDir dir;
  auto error_of_json = [](const ml::config::Json& j) -> std::string {
    try {
      ml::config::config_from_json(j);
    } catch (const ml::ConfigError& e) {
      return e.what();
    }
    return "(accepted)";
  };
  auto j = shop_json(dir, true, "v.csv");
  EXPECT_EQ(error_of_json(j), "(accepted)");
  auto no_dim = j;
  no_dim["features"]["embeddings"][0].erase("dim");
  EXPECT_TRUE(contains(error_of_json(no_dim), "features.embeddings[0].dim"))
      << error_of_json(no_dim);
  auto by_user = j;
  by_user["features"]["embeddings"][0]["join"] = "user";
  by_user["data"]["columns"].erase("user");
  EXPECT_TRUE(contains(error_of_json(by_user), "features.embeddings[0].join = \"user\""))
      << error_of_json(by_user);
  auto headerless = j;
  headerless["features"]["embeddings"][0]["csv"] = {{"header", false}};
  EXPECT_TRUE(contains(error_of_json(headerless), "1-based position")) << error_of_json(headerless);
  auto bad_missing = j;
  bad_missing["features"]["embeddings"][0]["missing"] = "mean";
  EXPECT_TRUE(contains(error_of_json(bad_missing), "features.embeddings[0].missing"))
      << error_of_json(bad_missing);

  const ml::config::Json text_run = {
      {"data", {{"files", {"t.csv"}}, {"text", {{"column", "text"}, {"class_column", "label"}}}}},
      {"task", {{"label", {{"kind", "multiclass"}}}}},
      {"model", {{"type", "transformer"}}},
      {"features", {{"embeddings", {{{"file", "v.csv"}, {"dim", 2}}}}}}};
  EXPECT_TRUE(contains(error_of_json(text_run), "features.embeddings: not used in a text run"))
      << error_of_json(text_run);

  std::filesystem::create_directories(dir.file("configs"));
  write_file(dir.file("configs/c.json"), j.dump());
  const auto loaded = ml::config::load_config(dir.file("configs/c.json"));
  EXPECT_EQ(loaded.features.embeddings[0].file,
            std::filesystem::path(dir.file("configs/v.csv")).lexically_normal().string());
}

TEST(EmbeddingTable, ThePythonWriterAndTheConverterWriteTheSameBytes) {
  TempDir dir;
  write_file(dir.file("t.csv"), "key,x,y,z\nu1,0.1,-2.5,3\nu\xC3\xA9,1e-3,0,-0.3333333\n");
  ml::features::convert_embedding_table(table_at(dir.file("t.csv"), 3), dir.file("c.mlemb"));
  const auto r = ml::testing::run_command(
      "/usr/bin/python3 " + ml::testing::shell_quote(std::string(ML_SOURCE_DIR)) +
      "/scripts/write_embeddings.py --input " + ml::testing::shell_quote(dir.file("t.csv")) +
      " --output " + ml::testing::shell_quote(dir.file("p.mlemb")));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(ml::testing::slurp(dir.file("p.mlemb")), ml::testing::slurp(dir.file("c.mlemb")));
}

TEST(EmbeddingsCli, ConvertWritesTheBinaryTableOrSaysWhatIsWrongInOneLine) {
  TempDir dir;
  write_file(dir.file("t.csv"), "id;x;y\na;1;2\nb;3;4\n");
  const auto q = ml::testing::shell_quote;
  const auto results =
      ml::testing::run_cli_many({"embeddings convert --input " + q(dir.file("t.csv")) +
                                     " --output " + q(dir.file("t.mlemb")) + " --dim 2",
                                 "embeddings convert --input " + q(dir.file("t.csv")) +
                                     " --output " + q(dir.file("u.mlemb")) + " --dim 3"});
  EXPECT_EQ(results[0].code, 0) << results[0].err;
  EXPECT_TRUE(contains(results[0].out, "2 rows of dim 2")) << results[0].out;
  EXPECT_EQ(ml::features::EmbeddingTable::open(table_at(dir.file("t.mlemb"), 2))->row(1)[0], 3);
  EXPECT_EQ(results[1].code, 4);
  EXPECT_EQ(results[1].err_lines(), 1) << results[1].err;
  EXPECT_TRUE(contains(results[1].err, "dim = 3 was declared")) << results[1].err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("u.mlemb")));
}
