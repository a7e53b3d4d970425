// The checkpoint file format: atomic writing, validated reading, run-directory resolution.
#include "run/checkpoint.hpp"

#include <torch/torch.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>

#include "run/divergence.hpp"
#include "util/atomic_file.hpp"
#include "util/checksum.hpp"
#include "util/errors.hpp"
#include "util/json_text.hpp"
#include "util/rng.hpp"
#include "util/strings.hpp"
#include "util/version.hpp"

namespace ml::run {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[] = "MLCKPT\r\n";
constexpr std::uint64_t kMagicSize = 8;
constexpr std::uint64_t kMetaLengthOffset = kMagicSize + 4;
constexpr std::uint64_t kMetaOffset = kMetaLengthOffset + 8;
// Magic, format, both lengths and the checksum: a file with empty meta and payload.
constexpr std::uint64_t kMinSize = kMetaOffset + 8 + 8;

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

std::string torch_message(const std::exception& e) {
  if (auto* c10_error = dynamic_cast<const c10::Error*>(&e))
    return first_line(c10_error->what_without_backtrace());
  return first_line(e.what());
}

// What guards a file's bytes: format 1 used FNV-1a 64 (read still, so trained runs stay
// usable), later formats XXH3-64, which runs at memory speed on large payloads.
std::uint64_t file_checksum(std::uint32_t format, const char* data, std::size_t size) {
  return format == 1 ? hash_bytes(data, size) : checksum64(data, size);
}

// Explicit little-endian encoding, so files move between machines whatever their byte order.
std::string encode_u32(std::uint32_t v) {
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}
std::string encode_u64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}
std::uint64_t decode_le(const std::string& bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = bytes.size(); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

// Length fields come from the file and may be garbage; saturate rather than wrap around.
std::uint64_t add_saturating(std::uint64_t a, std::uint64_t b) {
  return a > std::numeric_limits<std::uint64_t>::max() - b
             ? std::numeric_limits<std::uint64_t>::max()
             : a + b;
}

CheckpointError not_a_checkpoint(const std::string& path, const std::string& why) {
  return CheckpointError(quoted(path) + " is not a metalearn checkpoint (" + why + ")");
}
CheckpointError truncated(const std::string& path, std::uint64_t expected, std::uint64_t found,
                          bool at_least) {
  return CheckpointError(quoted(path) + " is truncated (expected " + (at_least ? "at least " : "") +
                         std::to_string(expected) + " bytes, found " + std::to_string(found) + ")");
}
CheckpointError corrupt(const std::string& path, const std::string& why) {
  return CheckpointError(quoted(path) + " is corrupt: " + why);
}

// Where the parts of a checkpoint lie, once the lengths have been checked against the file.
struct Layout {
  std::uint32_t format = 0;
  std::uint64_t meta_size = 0;
  std::uint64_t payload_offset = 0;
  std::uint64_t payload_size = 0;
  std::uint64_t checksum_offset = 0;
};

// Shared by the full and the metadata-only reader: `read_at(offset, n)` returns n bytes, which
// every caller guarantees lie inside the file of `size` bytes.
template <typename ReadAt>
Layout parse_layout(const std::string& path, std::uint64_t size, ReadAt&& read_at) {
  if (size == 0) throw not_a_checkpoint(path, "the file is empty");
  const std::string magic = read_at(0, std::min(size, kMagicSize));
  if (magic != std::string(kMagic, magic.size())) {
    if (magic.compare(0, 7, "MLCKPT\n") == 0 || magic.compare(0, 7, "MLCKPT\r") == 0)
      throw not_a_checkpoint(
          path,
          "its line endings were converted, e.g. by a text-mode transfer; copy it in binary "
          "mode");
    throw not_a_checkpoint(path, "it does not start with the checkpoint magic \"MLCKPT\"");
  }
  // A cut-off magic is still our file: say truncated, which tells the user what happened.
  if (size < kMetaLengthOffset) throw truncated(path, kMinSize, size, true);

  Layout layout;
  layout.format = static_cast<std::uint32_t>(decode_le(read_at(kMagicSize, 4)));
  // Checked before any length: a newer format may lay out the rest differently.
  if (layout.format > kNewestCheckpointFormat)
    throw CheckpointError(quoted(path) + " was written by a newer metalearn (checkpoint format " +
                          std::to_string(layout.format) + "; this build reads format " +
                          std::to_string(kNewestCheckpointFormat) + "): upgrade metalearn");
  if (layout.format == 0) throw corrupt(path, "checkpoint format 0 does not exist");
  if (size < kMinSize) throw truncated(path, kMinSize, size, true);

  layout.meta_size = decode_le(read_at(kMetaLengthOffset, 8));
  const std::uint64_t without_payload = add_saturating(kMinSize, layout.meta_size);
  if (size < without_payload) throw truncated(path, without_payload, size, true);

  const std::uint64_t payload_length_offset = kMetaOffset + layout.meta_size;
  layout.payload_size = decode_le(read_at(payload_length_offset, 8));
  layout.payload_offset = payload_length_offset + 8;
  const std::uint64_t total = add_saturating(without_payload, layout.payload_size);
  if (size < total) throw truncated(path, total, size, false);
  if (size > total)
    throw corrupt(path, std::to_string(size - total) + " unexpected bytes after the checksum (" +
                            std::to_string(total) + " bytes expected, found " +
                            std::to_string(size) + ")");
  layout.checksum_offset = total - 8;
  return layout;
}

CheckpointMeta parse_meta(const std::string& path, std::uint32_t format, const std::string& text) {
  JsonText parsed = parse_json_text(text);
  if (!parsed.ok())
    throw corrupt(path, "its metadata is " + parsed.problem + " at " + parsed.where);
  nlohmann::json j = std::move(parsed.value);
  if (!j.is_object()) throw corrupt(path, "its metadata is not a JSON object");
  for (const char* key : {"tool_version", "kind", "config", "features", "progress"})
    if (!j.contains(key)) throw corrupt(path, std::string("its metadata lacks \"") + key + "\"");
  if (!j["tool_version"].is_string())
    throw corrupt(path, "its metadata's \"tool_version\" is not a string");
  if (!j["kind"].is_string()) throw corrupt(path, "its metadata's \"kind\" is not a string");
  // Readers look keys up in these (value(), at()), which nlohmann refuses on a number, string
  // or list; null is what save_checkpoint writes for a part left empty.
  for (const char* key : {"config", "features", "progress"})
    if (!j[key].is_object() && !j[key].is_null())
      throw corrupt(path, std::string("its metadata's \"") + key + "\" is not an object");

  CheckpointMeta meta;
  meta.format = format;
  meta.tool_version = j["tool_version"].get<std::string>();
  meta.kind = j["kind"].get<std::string>();
  if (meta.kind != kCheckpointKindMeta && meta.kind != kCheckpointKindAdapted)
    throw corrupt(path, "its kind \"" + meta.kind + "\" is neither \"" + kCheckpointKindMeta +
                            "\" nor \"" + kCheckpointKindAdapted + "\"");
  meta.config = std::move(j["config"]);
  meta.features = std::move(j["features"]);
  meta.progress = std::move(j["progress"]);
  return meta;
}

// Distinguishes "missing" and "a directory" from a readable file before anything is parsed.
void check_is_file(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found)
    throw CheckpointError("no checkpoint at " + quoted(path));
  if (status.type() == fs::file_type::directory)
    throw not_a_checkpoint(path, "it is a directory; pass a checkpoint file or a run directory");
}

std::ifstream open_for_reading(const std::string& path) {
  check_is_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw CheckpointError("cannot read checkpoint " + quoted(path) + ": " + std::strerror(errno));
  return in;
}

CheckpointError write_error(const std::string& path, const std::string& why) {
  return CheckpointError("cannot write checkpoint " + quoted(path) + ": " + why);
}

}  // namespace

std::string checkpoint_bytes(
    const std::string& path, const CheckpointMeta& meta,
    const std::function<void(torch::serialize::OutputArchive&)>& write_state) {
  if (meta.kind != kCheckpointKindMeta && meta.kind != kCheckpointKindAdapted)
    throw write_error(path, "kind \"" + meta.kind + "\" is neither \"" + kCheckpointKindMeta +
                                "\" nor \"" + kCheckpointKindAdapted + "\"");
  // The metadata is serialized before the (expensive) state, so a bad value fails fast.
  const nlohmann::json j = {
      {"tool_version", meta.tool_version.empty() ? std::string(kToolVersion) : meta.tool_version},
      {"kind", meta.kind},
      {"config", meta.config},
      {"features", meta.features},
      {"progress", meta.progress}};
  std::string meta_text;
  try {
    // Strict: replacing invalid UTF-8 would silently change vocabulary entries on reload.
    meta_text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception& e) {
    throw write_error(path,
                      std::string("its metadata cannot be written as JSON (") + e.what() + ")");
  }

  torch::serialize::OutputArchive archive;
  write_state(archive);
  std::string payload;
  try {
    // The same bytes as save_to(std::ostringstream&), without the stream's extra copy.
    archive.save_to([&payload](const void* data, std::size_t size) {
      payload.append(static_cast<const char*>(data), size);
      return size;
    });
  } catch (const std::exception& e) {
    throw write_error(path, "serializing the tensors failed: " + torch_message(e));
  }

  const std::string head = std::string(kMagic, kMagicSize) +
                           encode_u32(checkpoint_format(meta.kind, meta.config)) +
                           encode_u64(meta_text.size());
  const std::string payload_length = encode_u64(payload.size());
  Checksum64 checksum;
  for (const std::string* part :
       std::initializer_list<const std::string*>{&head, &meta_text, &payload_length, &payload})
    checksum.update(*part);

  const std::string checksum_bytes = encode_u64(checksum.value());
  std::string file;
  file.reserve(head.size() + meta_text.size() + payload_length.size() + payload.size() +
               checksum_bytes.size());
  for (const std::string* part : std::initializer_list<const std::string*>{
           &head, &meta_text, &payload_length, &payload, &checksum_bytes})
    file += *part;
  return file;
}

void write_checkpoint_bytes(const std::string& path, const std::string& bytes) {
  try {
    AtomicFile file(path);
    file.write(bytes);
    file.commit();
  } catch (const FileWriteError& e) {
    // The file system's refusal, not the checkpoint's fault: the I/O exit code.
    throw IoError("cannot write checkpoint " + quoted(path) + ": " + e.reason());
  }
}

void save_checkpoint(const std::string& path, const CheckpointMeta& meta,
                     const std::function<void(torch::serialize::OutputArchive&)>& write_state) {
  write_checkpoint_bytes(path, checkpoint_bytes(path, meta, write_state));
}

std::string read_checkpoint_file(const std::string& path) {
  std::ifstream in = open_for_reading(path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad())
    throw CheckpointError("cannot read checkpoint " + quoted(path) + ": " + std::strerror(errno));
  return bytes;
}

Checkpoint load_checkpoint(const std::string& path) {
  return checkpoint_from_bytes(path, read_checkpoint_file(path));
}

Checkpoint checkpoint_from_bytes(const std::string& path, std::string bytes) {
  const Layout layout =
      parse_layout(path, bytes.size(),
                   [&bytes](std::uint64_t at, std::uint64_t n) { return bytes.substr(at, n); });
  const std::uint64_t stored = decode_le(bytes.substr(layout.checksum_offset, 8));
  if (file_checksum(layout.format, bytes.data(), layout.checksum_offset) != stored)
    throw corrupt(path,
                  "checksum mismatch (the file was modified or damaged after it was written)");

  Checkpoint checkpoint;
  checkpoint.path = path;
  checkpoint.meta = parse_meta(path, layout.format, bytes.substr(kMetaOffset, layout.meta_size));
  // In place, so a large payload is never held twice.
  bytes.resize(layout.payload_offset + layout.payload_size);
  bytes.erase(0, layout.payload_offset);
  checkpoint.payload = std::move(bytes);

  // Decoding once here costs a copy of the tensors but reports an archive that this LibTorch
  // cannot read (e.g. one from a much newer PyTorch) before any work starts.
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(checkpoint.payload.data(), checkpoint.payload.size(),
                      torch::Device(torch::kCPU));
  } catch (const std::exception& e) {
    throw corrupt(path, "its tensor archive does not decode (" + torch_message(e) + ")");
  }
  return checkpoint;
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  std::ifstream in = open_for_reading(path);
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end < 0)
    throw CheckpointError("cannot read checkpoint " + quoted(path) + ": " + std::strerror(errno));
  auto read_at = [&](std::uint64_t at, std::uint64_t n) {
    std::string out(n, '\0');
    in.seekg(static_cast<std::streamoff>(at));
    in.read(out.data(), static_cast<std::streamsize>(n));
    if (!in)
      throw CheckpointError("cannot read checkpoint " + quoted(path) + ": " + std::strerror(errno));
    return out;
  };
  const Layout layout = parse_layout(path, static_cast<std::uint64_t>(end), read_at);
  return parse_meta(path, layout.format, read_at(kMetaOffset, layout.meta_size));
}

void Checkpoint::read_state(const std::function<void(torch::serialize::InputArchive&)>& read,
                            const c10::Device& device) const {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(payload.data(), payload.size(), device);
  } catch (const std::exception& e) {
    throw CheckpointError("cannot load the tensors of " + quoted(path) + " onto " + device.str() +
                          ": " + torch_message(e));
  }
  try {
    read(archive);
  } catch (const ml::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw CheckpointError(quoted(path) +
                          " does not match what it is loaded into: " + torch_message(e));
  }
}

std::string resolve_checkpoint_path(const std::string& path_or_run_dir) {
  refuse_diverged(path_or_run_dir);
  std::error_code ec;
  const fs::path given(path_or_run_dir);
  if (fs::is_directory(given, ec)) {
    const RunLayout layout(given);
    for (const fs::path& candidate : {layout.best_checkpoint(), layout.latest_checkpoint()})
      if (fs::is_regular_file(candidate, ec)) return candidate.string();
    throw CheckpointError("no checkpoint in run directory " + quoted(path_or_run_dir) +
                          " (looked for " + quoted(layout.best_checkpoint().string()) + " and " +
                          quoted(layout.latest_checkpoint().string()) + ")");
  }
  if (fs::exists(given, ec)) return path_or_run_dir;
  throw CheckpointError("no checkpoint at " + quoted(path_or_run_dir) +
                        " (neither a checkpoint file nor a run directory)");
}

namespace {
bool text_run_config(const nlohmann::json& config) {
  const auto* column = config.is_object() ? &config : nullptr;
  for (const char* key : {"data", "text", "column"}) {
    if (!column || !column->is_object() || !column->contains(key)) return false;
    column = &(*column)[key];
  }
  return column->is_string() && !column->get<std::string>().empty();
}
}  // namespace

namespace {

// Whether the config's model reads item texts or user sequences (model.item_text.columns
// non-empty or model.user_sequence.length > 0).
bool context_model_config(const nlohmann::json& config) {
  if (!config.is_object() || !config.contains("model") || !config["model"].is_object())
    return false;
  const auto& model = config["model"];
  const auto text = model.find("item_text");
  if (text != model.end() && text->is_object() && text->contains("columns") &&
      (*text)["columns"].is_array() && !(*text)["columns"].empty())
    return true;
  const auto sequence = model.find("user_sequence");
  return sequence != model.end() && sequence->is_object() && sequence->contains("length") &&
         (*sequence)["length"].is_number() && (*sequence)["length"].get<double>() > 0;
}

}  // namespace

std::uint32_t checkpoint_format(const std::string& kind, const nlohmann::json& config) {
  if (kind == kCheckpointKindAdapted && text_run_config(config))
    return kAdaptedTextCheckpointFormat;
  return context_model_config(config) ? kContextCheckpointFormat : kCheckpointFormat;
}

bool is_text_run_checkpoint(const std::string& checkpoint) {
  return text_run_config(read_checkpoint_meta(resolve_checkpoint_path(checkpoint)).config);
}

void refuse_text_run(bool text_run, const std::string& path) {
  if (text_run)
    throw UsageError("'" + path +
                     "' is a text run's (data.text.column), and this reads purchase-log runs "
                     "only; give it to `metalearn eval`, `adapt` or `predict` on its own");
}

}  // namespace ml::run
