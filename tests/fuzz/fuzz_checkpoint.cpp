// Fuzz harness for the checkpoint reader (run/checkpoint.hpp): read_checkpoint_meta,
// load_checkpoint and read_state on the CPU, as adapt, eval and predict call them. Only a
// CheckpointError may come out. A random byte string almost never passes the checksum, so most
// inputs are first made into a file whose checksum (or whole framing) is right; that is what
// lets the fuzzer reach the metadata JSON and LibTorch's archive decoder. Also checked: a file
// that load_checkpoint accepts has metadata that read_checkpoint_meta reads the same.
//
// Input: byte 0 picks the mode (mod 3), the rest is
//   0: the file as it is
//   1: the file with its last 8 bytes replaced by the right checksum for its format field
//   2: metadata JSON, a NUL byte, then the torch archive: framed as a format-2 checkpoint
#include <torch/serialize/input-archive.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "run/checkpoint.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/rng.hpp"

namespace {

using torch::serialize::InputArchive;

constexpr std::size_t kFormatOffset = 8;
constexpr std::size_t kMinSize = 8 + 4 + 8 + 8 + 8;  // magic, format, 2 lengths, checksum

std::string le_bytes(std::uint64_t v, int n) {
  std::string out(static_cast<std::size_t>(n), '\0');
  for (int i = 0; i < n; ++i) out[static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
  return out;
}

void fix_checksum(std::string& file) {
  if (file.size() < kMinSize) return;
  std::uint32_t format = 0;
  for (int i = 3; i >= 0; --i)
    format = (format << 8) | static_cast<unsigned char>(file[kFormatOffset + i]);
  const std::size_t body = file.size() - 8;
  // Format 1 is guarded by FNV-1a 64 (ml::hash_bytes), later formats by XXH3-64.
  const std::uint64_t sum =
      format == 1 ? ml::hash_bytes(file.data(), body) : ml::checksum64(file.data(), body);
  file.replace(body, 8, le_bytes(sum, 8));
}

std::string frame(std::string_view meta, std::string_view payload) {
  std::string file = std::string("MLCKPT\r\n", 8) + le_bytes(ml::run::kCheckpointFormat, 4) +
                     le_bytes(meta.size(), 8) + std::string(meta) + le_bytes(payload.size(), 8) +
                     std::string(payload) + le_bytes(0, 8);
  fix_checksum(file);
  return file;
}

// What loading a model or an optimizer does with an archive: every key, read as a tensor, a
// nested archive or a plain value.
void read_everything(InputArchive& archive, int depth) {
  for (const std::string& key : archive.keys()) {
    torch::Tensor tensor;
    if (archive.try_read(key, tensor)) {
      (void)tensor.sum().item<double>();
      continue;
    }
    InputArchive nested;
    if (depth < 3 && archive.try_read(key, nested)) {
      read_everything(nested, depth + 1);
      continue;
    }
    c10::IValue value;
    archive.try_read(key, value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ml::fuzz::Bytes in(data, size);
  const int mode = in.take() % 3;
  std::string file(in.rest());
  if (mode == 1) fix_checksum(file);
  if (mode == 2) {
    const std::size_t nul = std::min(file.find('\0'), file.size());
    file = frame(std::string_view(file).substr(0, nul),
                 std::string_view(file).substr(std::min(nul + 1, file.size())));
  }
  const std::string& path = ml::fuzz::ScratchFile::instance().write(file);

  bool meta_read = false;
  ml::run::CheckpointMeta meta;
  try {
    meta = ml::run::read_checkpoint_meta(path);
    meta_read = true;
  } catch (const ml::CheckpointError&) {
  }
  try {
    const ml::run::Checkpoint checkpoint = ml::run::load_checkpoint(path);
    if (!meta_read)
      ml::fuzz::property_failed("load_checkpoint accepts a file read_checkpoint_meta refuses");
    if (meta.kind != checkpoint.meta.kind || meta.tool_version != checkpoint.meta.tool_version ||
        meta.config != checkpoint.meta.config || meta.progress != checkpoint.meta.progress ||
        meta.features != checkpoint.meta.features)
      ml::fuzz::property_failed("read_checkpoint_meta and load_checkpoint disagree");
    checkpoint.read_state([](InputArchive& archive) { read_everything(archive, 0); },
                          c10::Device(c10::kCPU));
  } catch (const ml::CheckpointError&) {
  }
  return 0;
}
