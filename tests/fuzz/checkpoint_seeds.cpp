// Writes the seed inputs of the checkpoint harness (fuzz_checkpoint.cpp) into a folder: small
// checkpoints written by save_checkpoint with the state layout of run/learner_state.cpp (a
// "model" and an "inner_lr" archive of named tensors, plus Adam's state for a meta run), in each
// of the harness's three input modes. Built by scripts/fuzz.sh's build (ML_FUZZ=ON); rerun it
// and commit the files when the checkpoint format changes:
//
//   build-fuzz/tests/fuzz/fuzz_checkpoint_seeds tests/fuzz/corpus/checkpoint
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "run/checkpoint.hpp"

namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::uint64_t read_u64(const std::string& bytes, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes.at(at + i));
  return v;
}

// Saves one checkpoint and writes it as the harness's inputs NAME.raw (mode 0), NAME.framed
// (mode 2: metadata, NUL, payload) and, with `format1`, NAME.format1 (mode 1, the format field
// set to 1 so the harness puts an FNV checksum).
void emit(const fs::path& dir, const std::string& name, const ml::run::CheckpointMeta& meta,
          bool with_optimizer, bool format1) {
  torch::manual_seed(1);
  torch::nn::Linear layer(3, 2);
  const fs::path file = dir / (name + ".mlckpt.tmp");
  ml::run::save_checkpoint(file.string(), meta, [&](torch::serialize::OutputArchive& archive) {
    torch::serialize::OutputArchive model, lrs;
    for (const auto& p : layer->named_parameters()) {
      model.write(p.key(), p.value().detach());
      lrs.write(p.key(), torch::full({}, 0.3));
    }
    archive.write("model", model);
    archive.write("inner_lr", lrs);
    if (with_optimizer) {
      torch::optim::Adam adam(layer->parameters(), torch::optim::AdamOptions(1e-3));
      layer->forward(torch::ones({1, 3})).sum().backward();
      adam.step();
      adam.save(archive);
    }
  });
  const std::string bytes = slurp(file);
  fs::remove(file);
  write(dir / (name + ".raw"), std::string(1, '\0') + bytes);
  if (format1) {
    std::string old = bytes;
    old[8] = 1;
    write(dir / (name + ".format1"), std::string(1, '\1') + old);
  }
  const std::uint64_t meta_size = read_u64(bytes, 12);
  const std::string meta_text = bytes.substr(20, meta_size);
  const std::string payload =
      bytes.substr(20 + meta_size + 8, bytes.size() - 8 - (20 + meta_size + 8));
  write(dir / (name + ".framed"),
        std::string(1, '\2') + meta_text + std::string(1, '\0') + payload);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FOLDER\n", argv[0]);
    return 2;
  }
  const fs::path dir(argv[1]);
  fs::create_directories(dir);
  ml::run::CheckpointMeta meta;
  meta.kind = ml::run::kCheckpointKindMeta;
  meta.config = {{"seed", 42}, {"model", {{"type", "mlp"}, {"hidden", {4}}}}};
  meta.features = {{"dense", {"price", "quantity"}}, {"vocab", {{"category", {"a", "b"}}}}};
  meta.progress = {{"iteration", 3}, {"best_validation", 0.5}};
  emit(dir, "meta", meta, true, false);
  meta.kind = ml::run::kCheckpointKindAdapted;
  meta.progress = {{"task", "shoes"}, {"steps", 5}};
  emit(dir, "adapted", meta, false, true);
  return 0;
}
