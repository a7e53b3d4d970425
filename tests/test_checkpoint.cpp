// Tests for the checkpoint format: round trips of metadata, tensors and optimizer state, the
// documented byte layout, every refusal (missing, truncated, not ours, newer, corrupt), atomic
// saving and run-directory resolution.
#include "run/checkpoint.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <xxhash.h>
#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "util/errors.hpp"
#include "util/version.hpp"

namespace {

using ml::testing::contains;
using ml::testing::TempDir;

namespace fs = std::filesystem;
using ml::CheckpointError;
using ml::run::CheckpointMeta;
using torch::serialize::InputArchive;
using torch::serialize::OutputArchive;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::uint64_t read_u64(const std::string& bytes, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes.at(at + i));
  return v;
}

std::string u64_bytes(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}

// The checksums computed independently (FNV-1a by hand, XXH3 straight from libxxhash), so the
// layout tests do not trust the code they check. Format 1 used FNV-1a 64, format 2 XXH3-64.
std::uint64_t fnv1a64(const std::string& bytes) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::uint64_t xxh3_64(const std::string& bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

// A checkpoint assembled by hand, for files that are well-formed except in one chosen way; also
// how metalearn before format 2 wrote them (format 1 with FNV-1a).
std::string assemble(std::uint32_t format, const std::string& meta, const std::string& payload) {
  std::string out = std::string("MLCKPT\r\n", 8);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((format >> (8 * i)) & 0xFF);
  out += u64_bytes(meta.size()) + meta + u64_bytes(payload.size()) + payload;
  return out + u64_bytes(format == 1 ? fnv1a64(out) : xxh3_64(out));
}

CheckpointMeta sample_meta() {
  CheckpointMeta meta;
  meta.tool_version = ml::kToolVersion;
  meta.kind = ml::run::kCheckpointKindMeta;
  meta.config = {{"seed", 7}, {"task", {{"support", 5}, {"query", 10}}}, {"name", "résumé"}};
  meta.features = {{"numeric", {{"price", {{"mean", 12.5}, {"std", 3.25}}}}},
                   {"vocab", {"a", "b", "c"}}};
  meta.progress = {{"iteration", 1200}, {"best_validation", 0.8125}};
  return meta;
}

// The tensors every round-trip test writes, kept so the tests can compare what comes back.
struct SampleState {
  torch::Tensor weights = torch::arange(6, torch::kFloat32).reshape({2, 3}) / 7;
  torch::Tensor ids = torch::tensor(std::vector<std::int64_t>{3, -1, 40000000000LL, 0});
  torch::Tensor scalar = torch::tensor(2.5);
  torch::Tensor model_w = torch::randn({3, 2});
  torch::Tensor model_b = torch::randn({2});
  torch::Tensor param = torch::tensor({0.5, -1.0, 2.0}).requires_grad_(true);
  torch::optim::Adam adam{std::vector<torch::Tensor>{param}, torch::optim::AdamOptions(0.1)};

  SampleState() {
    auto loss = (param * param).sum();
    loss.backward();
    adam.step();
  }

  void write(OutputArchive& archive) const {
    archive.write("weights", weights);
    archive.write("ids", ids);
    archive.write("scalar", scalar);
    OutputArchive model;
    model.write("w", model_w);
    model.write("b", model_b);
    archive.write("model", model);
    OutputArchive optimizer;
    adam.save(optimizer);
    archive.write("optimizer", optimizer);
  }
};

std::string save_sample(const std::string& path) {
  SampleState state;
  ml::run::save_checkpoint(path, sample_meta(),
                           [&](OutputArchive& archive) { state.write(archive); });
  return path;
}

// The message of the CheckpointError `f` throws, or a failure naming what happened instead.
template <typename F>
std::string checkpoint_error(F&& f) {
  try {
    f();
  } catch (const CheckpointError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), ml::ExitCode::kCheckpoint);
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected CheckpointError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected CheckpointError, nothing thrown";
  return "";
}

// What the file system refuses is an IoError (exit code 9), one line naming the checkpoint.
template <typename F>
std::string io_error(F&& f) {
  try {
    f();
  } catch (const ml::IoError& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), ml::ExitCode::kIo);
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected IoError, got: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected IoError, nothing thrown";
  return "";
}

std::string load_error(const std::string& path) {
  return checkpoint_error([&] { ml::run::load_checkpoint(path); });
}
std::string meta_error(const std::string& path) {
  return checkpoint_error([&] { ml::run::read_checkpoint_meta(path); });
}

TEST(CheckpointRoundTrip, MetaAndTensorsAndOptimizerState) {
  TempDir dir;
  SampleState state;
  const std::string path = dir.file("run.mlckpt");
  ml::run::save_checkpoint(path, sample_meta(),
                           [&](OutputArchive& archive) { state.write(archive); });

  const ml::run::Checkpoint ck = ml::run::load_checkpoint(path);
  const CheckpointMeta expected = sample_meta();
  EXPECT_EQ(ck.path, path);
  EXPECT_EQ(ck.meta.format, ml::run::kCheckpointFormat);
  EXPECT_EQ(ck.meta.tool_version, ml::kToolVersion);
  EXPECT_EQ(ck.meta.kind, "meta");
  EXPECT_EQ(ck.meta.config, expected.config);
  EXPECT_EQ(ck.meta.features, expected.features);
  EXPECT_EQ(ck.meta.progress, expected.progress);

  const CheckpointMeta cheap = ml::run::read_checkpoint_meta(path);
  EXPECT_EQ(cheap.format, ml::run::kCheckpointFormat);
  EXPECT_EQ(cheap.tool_version, ml::kToolVersion);
  EXPECT_EQ(cheap.kind, "meta");
  EXPECT_EQ(cheap.config, expected.config);
  EXPECT_EQ(cheap.features, expected.features);
  EXPECT_EQ(cheap.progress, expected.progress);

  torch::Tensor weights, ids, scalar, model_w, model_b;
  auto fresh_param = torch::zeros({3}).requires_grad_(true);
  torch::optim::Adam fresh{std::vector<torch::Tensor>{fresh_param}, torch::optim::AdamOptions(0.1)};
  ck.read_state(
      [&](InputArchive& archive) {
        archive.read("weights", weights);
        archive.read("ids", ids);
        archive.read("scalar", scalar);
        InputArchive model;
        archive.read("model", model);
        model.read("w", model_w);
        model.read("b", model_b);
        InputArchive optimizer;
        archive.read("optimizer", optimizer);
        fresh.load(optimizer);
      },
      torch::Device(torch::kCPU));

  EXPECT_EQ(weights.scalar_type(), torch::kFloat32);
  EXPECT_EQ(ids.scalar_type(), torch::kInt64);
  EXPECT_EQ(scalar.dim(), 0);
  EXPECT_TRUE(torch::equal(weights, state.weights));
  EXPECT_TRUE(torch::equal(ids, state.ids));
  EXPECT_TRUE(torch::equal(scalar, state.scalar));
  EXPECT_TRUE(torch::equal(model_w, state.model_w));
  EXPECT_TRUE(torch::equal(model_b, state.model_b));

  auto adam_state = [](const torch::optim::Adam& adam) -> const torch::optim::AdamParamState& {
    const auto& p = adam.param_groups().at(0).params().at(0);
    const auto& s = adam.state().at(c10::guts::to_string(p.unsafeGetTensorImpl()));
    return static_cast<const torch::optim::AdamParamState&>(*s);
  };
  const auto& original = adam_state(state.adam);
  const auto& loaded = adam_state(fresh);
  EXPECT_EQ(loaded.step(), 1);
  EXPECT_EQ(loaded.step(), original.step());
  EXPECT_TRUE(torch::equal(loaded.exp_avg(), original.exp_avg()));
  EXPECT_TRUE(torch::equal(loaded.exp_avg_sq(), original.exp_avg_sq()));
  EXPECT_FALSE(torch::equal(loaded.exp_avg(), torch::zeros({3})));
}

TEST(CheckpointRoundTrip, AdaptedKindAndDefaultToolVersion) {
  TempDir dir;
  CheckpointMeta meta;
  meta.kind = ml::run::kCheckpointKindAdapted;  // tool_version left empty on purpose
  ml::run::save_checkpoint(dir.file("a.mlckpt"), meta, [](OutputArchive&) {});
  const auto ck = ml::run::load_checkpoint(dir.file("a.mlckpt"));
  EXPECT_EQ(ck.meta.kind, "adapted");
  EXPECT_EQ(ck.meta.tool_version, ml::kToolVersion);
  EXPECT_TRUE(ck.meta.config.is_null());
}

TEST(CheckpointRoundTrip, ReadStateMismatchIsACheckpointError) {
  TempDir dir;
  const auto ck = ml::run::load_checkpoint(save_sample(dir.file("x.mlckpt")));
  const std::string message = checkpoint_error([&] {
    ck.read_state(
        [](InputArchive& archive) {
          torch::Tensor t;
          archive.read("no_such_tensor", t);
        },
        torch::Device(torch::kCPU));
  });
  EXPECT_TRUE(contains(message, "does not match")) << message;
  EXPECT_TRUE(contains(message, "x.mlckpt")) << message;
}

TEST(CheckpointFormat, LayoutIsAsDocumented) {
  TempDir dir;
  const std::string bytes = read_bytes(save_sample(dir.file("x.mlckpt")));
  ASSERT_GE(bytes.size(), 36u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("MLCKPT\r\n", 8));
  EXPECT_EQ(bytes.substr(8, 4), std::string("\x03\x00\x00\x00", 4));
  const std::uint64_t meta_size = read_u64(bytes, 12);
  const auto meta = nlohmann::json::parse(bytes.substr(20, meta_size));
  EXPECT_EQ(meta.at("kind"), "meta");
  EXPECT_EQ(meta.at("tool_version"), ml::kToolVersion);
  EXPECT_EQ(meta.at("config"), sample_meta().config);
  const std::uint64_t payload_size = read_u64(bytes, 20 + meta_size);
  ASSERT_EQ(bytes.size(), 20 + meta_size + 8 + payload_size + 8);
  EXPECT_EQ(read_u64(bytes, bytes.size() - 8), xxh3_64(bytes.substr(0, bytes.size() - 8)));

  // The payload is a plain torch archive, readable without this module.
  InputArchive archive;
  const std::string payload = bytes.substr(28 + meta_size, payload_size);
  archive.load_from(payload.data(), payload.size());
  torch::Tensor ids;
  archive.read("ids", ids);
  EXPECT_EQ(ids.numel(), 4);

  // And the documented layout is all there is: reassembling it gives the same bytes.
  EXPECT_EQ(assemble(3, bytes.substr(20, meta_size), payload), bytes);
}

// Runs trained before format 2 stay usable: a format 1 file (FNV-1a checksum) is read in full,
// and its checksum is still verified.
TEST(CheckpointFormat, ReadsFormatOneWithItsFnvChecksum) {
  TempDir dir;
  const std::string bytes = read_bytes(save_sample(dir.file("x.mlckpt")));
  const std::size_t meta_size = read_u64(bytes, 12);
  const std::string meta = bytes.substr(20, meta_size);
  const std::string payload = bytes.substr(28 + meta_size, bytes.size() - 8 - 28 - meta_size);
  const std::string old_file = dir.file("old.mlckpt");
  write_bytes(old_file, assemble(1, meta, payload));

  const ml::run::Checkpoint loaded = ml::run::load_checkpoint(old_file);
  EXPECT_EQ(loaded.meta.format, 1u);
  EXPECT_EQ(loaded.meta.config, sample_meta().config);
  EXPECT_EQ(loaded.payload, payload);
  EXPECT_EQ(ml::run::read_checkpoint_meta(old_file).format, 1u);

  // The same file with the new checksum in place of FNV-1a is damaged, not another format.
  std::string wrong = assemble(1, meta, payload);
  const std::string xxh = u64_bytes(xxh3_64(wrong.substr(0, wrong.size() - 8)));
  wrong.replace(wrong.size() - 8, 8, xxh);
  write_bytes(dir.file("wrong.mlckpt"), wrong);
  EXPECT_TRUE(contains(load_error(dir.file("wrong.mlckpt")), "is corrupt: checksum mismatch"));
}

TEST(CheckpointRefusals, MissingFile) {
  TempDir dir;
  const std::string message = load_error(dir.file("nope.mlckpt"));
  EXPECT_TRUE(contains(message, "no checkpoint at '" + dir.file("nope.mlckpt") + "'")) << message;
  EXPECT_TRUE(contains(meta_error(dir.file("nope.mlckpt")), "no checkpoint at"));
}

// Every cut is "truncated", except a cut at byte 0: an empty file carries no sign of being a
// checkpoint, so it is "not a metalearn checkpoint". A cut inside the magic still matches the
// magic's first bytes and counts as truncated.
TEST(CheckpointRefusals, TruncatedAnywhere) {
  TempDir dir;
  const std::string bytes = read_bytes(save_sample(dir.file("full.mlckpt")));
  const std::size_t meta_size = read_u64(bytes, 12);
  const std::size_t payload_at = 28 + meta_size;
  const std::vector<std::size_t> cuts = {
      3,                                             // in the magic
      8,                                             // right after the magic
      10,                                            // in the format
      15,                                            // in the meta length
      20 + meta_size / 2,                            // in the meta
      20 + meta_size + 3,                            // in the payload length
      payload_at + 1,                                // at the start of the payload
      payload_at + (bytes.size() - payload_at) / 2,  // in the payload
      bytes.size() - 5,                              // in the checksum
      bytes.size() - 1};
  for (std::size_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    const std::string path = dir.file("cut.mlckpt");
    write_bytes(path, bytes.substr(0, cut));
    const std::string message = load_error(path);
    EXPECT_TRUE(contains(message, "is truncated")) << message;
    EXPECT_TRUE(contains(message, "found " + std::to_string(cut) + ")")) << message;
    // The cheap reader checks the lengths against the file size, so it sees every cut too.
    EXPECT_TRUE(contains(meta_error(path), "is truncated")) << meta_error(path);
  }
  // Once both lengths are readable the exact size is known.
  write_bytes(dir.file("cut.mlckpt"), bytes.substr(0, bytes.size() - 1));
  EXPECT_EQ(load_error(dir.file("cut.mlckpt")),
            "'" + dir.file("cut.mlckpt") + "' is truncated (expected " +
                std::to_string(bytes.size()) + " bytes, found " + std::to_string(bytes.size() - 1) +
                ")");

  write_bytes(dir.file("empty.mlckpt"), "");
  EXPECT_TRUE(contains(load_error(dir.file("empty.mlckpt")), "is not a metalearn checkpoint"));
}

TEST(CheckpointRefusals, NotACheckpoint) {
  TempDir dir;
  write_bytes(dir.file("notes.txt"), "user,item,event\n1,2,view\n3,4,purchase\n");
  const std::string message = load_error(dir.file("notes.txt"));
  EXPECT_EQ(message, "'" + dir.file("notes.txt") +
                         "' is not a metalearn checkpoint (it does not start with the checkpoint "
                         "magic \"MLCKPT\")");
  EXPECT_TRUE(contains(meta_error(dir.file("notes.txt")), "is not a metalearn checkpoint"));
  EXPECT_TRUE(contains(load_error(dir.path().string()), "is not a metalearn checkpoint"));

  // A text-mode transfer turns \r\n into \n: still refused, with the likely cause.
  std::string bytes = read_bytes(save_sample(dir.file("x.mlckpt")));
  bytes.erase(6, 1);
  write_bytes(dir.file("mangled.mlckpt"), bytes);
  const std::string mangled = load_error(dir.file("mangled.mlckpt"));
  EXPECT_TRUE(contains(mangled, "is not a metalearn checkpoint")) << mangled;
  EXPECT_TRUE(contains(mangled, "line endings")) << mangled;
}

TEST(CheckpointRefusals, NewerFormat) {
  TempDir dir;
  std::string bytes = read_bytes(save_sample(dir.file("x.mlckpt")));
  // What an older build says of a newer format (as one reading format 4 says of a run with
  // item-text or user-sequence encoders, format 5), one format on.
  const auto newest = ml::run::kNewestCheckpointFormat;
  bytes[8] = static_cast<char>(newest + 1);
  write_bytes(dir.file("x.mlckpt"), bytes);
  const std::string expected = "'" + dir.file("x.mlckpt") +
                               "' was written by a newer metalearn (checkpoint format " +
                               std::to_string(newest + 1) + "; this build reads format " +
                               std::to_string(newest) + "): upgrade metalearn";
  EXPECT_EQ(load_error(dir.file("x.mlckpt")), expected);
  EXPECT_EQ(meta_error(dir.file("x.mlckpt")), expected);

  // The format is judged before the lengths: a newer layout may not match ours at all.
  write_bytes(dir.file("short.mlckpt"), bytes.substr(0, 12));
  EXPECT_TRUE(contains(load_error(dir.file("short.mlckpt")), "newer"));
}

TEST(CheckpointRefusals, Corrupt) {
  TempDir dir;
  const std::string bytes = read_bytes(save_sample(dir.file("x.mlckpt")));
  const std::size_t meta_size = read_u64(bytes, 12);
  const std::size_t payload_at = 28 + meta_size;

  std::string flipped = bytes;
  flipped[payload_at + (bytes.size() - 8 - payload_at) / 2] ^= 0x10;
  write_bytes(dir.file("flipped.mlckpt"), flipped);
  std::string message = load_error(dir.file("flipped.mlckpt"));
  EXPECT_TRUE(contains(message, "is corrupt: checksum mismatch")) << message;
  // The cheap reader does not hash the payload, by design.
  EXPECT_NO_THROW(ml::run::read_checkpoint_meta(dir.file("flipped.mlckpt")));

  std::string meta_flipped = bytes;
  meta_flipped[20 + meta_size / 2] ^= 0x01;
  write_bytes(dir.file("meta_flipped.mlckpt"), meta_flipped);
  EXPECT_TRUE(contains(load_error(dir.file("meta_flipped.mlckpt")), "is corrupt"));

  write_bytes(dir.file("trailing.mlckpt"), bytes + "xx");
  message = load_error(dir.file("trailing.mlckpt"));
  EXPECT_TRUE(contains(message, "is corrupt: 2 unexpected bytes after the checksum")) << message;

  // Files with a valid checksum whose content is still wrong.
  const std::string payload = bytes.substr(payload_at, bytes.size() - 8 - payload_at);
  const std::string good_meta = bytes.substr(20, meta_size);
  struct Case {
    std::string name, meta, payload, expected;
  };
  const std::vector<Case> cases = {
      {"json", "{\"kind\": ", payload, "metadata is not valid JSON"},
      {"deep", "{\"kind\": " + std::string(5000, '['), payload,
       "metadata is nested deeper than 100 levels at line 1, column 109"},
      {"progress", R"({"tool_version":"0","kind":"meta","config":{},"features":{},"progress":[]})",
       payload, "metadata's \"progress\" is not an object"},
      {"array", "[1, 2]", payload, "metadata is not a JSON object"},
      {"lacks", R"({"kind":"meta","config":{},"features":{},"progress":{}})", payload,
       "metadata lacks \"tool_version\""},
      {"kind", R"({"tool_version":"0","kind":"x","config":{},"features":{},"progress":{}})",
       payload, "kind \"x\" is neither"},
      {"archive", good_meta, "definitely not a zip archive", "tensor archive does not decode"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.file(c.name + ".mlckpt");
    write_bytes(path, assemble(ml::run::kCheckpointFormat, c.meta, c.payload));
    message = load_error(path);
    EXPECT_TRUE(contains(message, "is corrupt: ")) << message;
    EXPECT_TRUE(contains(message, c.expected)) << message;
  }
  write_bytes(dir.file("format0.mlckpt"), assemble(0, good_meta, payload));
  EXPECT_TRUE(contains(load_error(dir.file("format0.mlckpt")), "is corrupt"));
}

TEST(CheckpointSave, FailedSaveLeavesExistingFileAndNoTemporary) {
  TempDir dir;
  const std::string path = save_sample(dir.file("latest.mlckpt"));
  const std::string before = read_bytes(path);

  CheckpointMeta meta = sample_meta();
  meta.progress["iteration"] = 9999;
  // The exception of write_state comes through as it is, not wrapped in a CheckpointError.
  try {
    ml::run::save_checkpoint(path, meta, [](OutputArchive& archive) {
      archive.write("half", torch::ones({2}));
      throw std::logic_error("interrupted mid-save");
    });
    ADD_FAILURE() << "save_checkpoint did not rethrow";
  } catch (const std::logic_error& e) {
    EXPECT_STREQ(e.what(), "interrupted mid-save");
  }
  EXPECT_EQ(read_bytes(path), before);

  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path()))
    names.push_back(entry.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"latest.mlckpt"});
  EXPECT_EQ(ml::run::load_checkpoint(path).meta.progress, sample_meta().progress);
}

TEST(CheckpointSave, FailedRenameRemovesTheTemporary) {
  TempDir dir;
  // A non-empty folder where the file should go: everything succeeds up to the rename.
  fs::create_directories(dir.path() / "x.mlckpt" / "inside");
  const std::string message = io_error([&] { save_sample(dir.file("x.mlckpt")); });
  EXPECT_TRUE(contains(message, "cannot write checkpoint '" + dir.file("x.mlckpt") + "'"))
      << message;
  EXPECT_TRUE(contains(message, "into place failed")) << message;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(CheckpointSave, OverwritesAndCreatesFolders) {
  TempDir dir;
  const std::string path = dir.file("run/checkpoints/latest.mlckpt");
  save_sample(path);
  CheckpointMeta meta = sample_meta();
  meta.progress["iteration"] = 2400;
  ml::run::save_checkpoint(path, meta,
                           [](OutputArchive& archive) { archive.write("w", torch::ones({1})); });
  EXPECT_EQ(ml::run::load_checkpoint(path).meta.progress["iteration"], 2400);
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
    ++files;
  EXPECT_EQ(files, 1u);
}

TEST(CheckpointSave, RefusesBadInputWithoutWriting) {
  TempDir dir;
  CheckpointMeta meta = sample_meta();
  meta.kind = "final";
  std::string message = checkpoint_error(
      [&] { ml::run::save_checkpoint(dir.file("k.mlckpt"), meta, [](OutputArchive&) {}); });
  EXPECT_TRUE(contains(message, "cannot write checkpoint")) << message;
  EXPECT_TRUE(contains(message, "\"final\"")) << message;

  // Invalid UTF-8 would otherwise come back as a different string.
  meta = sample_meta();
  meta.features["vocab"].push_back(std::string("caf\xe9"));
  message = checkpoint_error(
      [&] { ml::run::save_checkpoint(dir.file("u.mlckpt"), meta, [](OutputArchive&) {}); });
  EXPECT_TRUE(contains(message, "cannot write checkpoint")) << message;

  // A parent that is a file, not a folder.
  write_bytes(dir.file("plain"), "x");
  message = io_error([&] { save_sample(dir.file("plain/x.mlckpt")); });
  EXPECT_TRUE(contains(message, "cannot write checkpoint")) << message;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(CheckpointResolve, RunDirectoriesAndFiles) {
  TempDir dir;
  const fs::path run = dir.path() / "run";
  const fs::path ckdir = run / "checkpoints";
  fs::create_directories(ckdir);

  std::string message = checkpoint_error([&] { ml::run::resolve_checkpoint_path(run.string()); });
  EXPECT_TRUE(contains(message, "no checkpoint in run directory")) << message;
  EXPECT_TRUE(contains(message, (ckdir / "best.mlckpt").string())) << message;
  EXPECT_TRUE(contains(message, (ckdir / "latest.mlckpt").string())) << message;

  write_bytes((ckdir / "latest.mlckpt").string(), "l");
  EXPECT_EQ(ml::run::resolve_checkpoint_path(run.string()), (ckdir / "latest.mlckpt").string());

  write_bytes((ckdir / "best.mlckpt").string(), "b");
  EXPECT_EQ(ml::run::resolve_checkpoint_path(run.string()), (ckdir / "best.mlckpt").string());

  const std::string file = (ckdir / "latest.mlckpt").string();
  EXPECT_EQ(ml::run::resolve_checkpoint_path(file), file);

  message = checkpoint_error(
      [&] { ml::run::resolve_checkpoint_path((dir.path() / "missing").string()); });
  EXPECT_TRUE(contains(message, "no checkpoint at")) << message;
}

}  // namespace
