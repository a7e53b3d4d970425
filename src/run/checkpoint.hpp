// The checkpoint file format shared by train, adapt, eval and predict: one self-checking file
// holding the tensors (model, optimizer, ...) and the JSON needed to use them later.
//
// Layout (all integers little endian):
//   "MLCKPT\r\n"           8-byte magic; the \r\n catches text-mode (CRLF) mangling in transfers
//   u32 format             kCheckpointFormat; a newer one is refused with "upgrade metalearn"
//   u64 meta length, meta  UTF-8 JSON {tool_version, kind, config, features, progress}
//   u64 payload length, payload   a torch OutputArchive as written by save_to(std::ostream&)
//   u64 checksum           XXH3-64 of every preceding byte (format 1: FNV-1a 64)
//
// Format 2 differs from format 1 only in the checksum. Format 3 adds text runs (data.text):
// their class names in meta.features.text and their tokenizer in the archive ("tokenizer",
// run/learner_state.hpp); a purchase log's checkpoint is laid out as in format 2. Format 4 is
// format 3 for an adapted text model (kind "adapted" of a text run: its head has one row per
// class of meta.progress.classes, however many, instead of task.label.ways). All four are read;
// an adapted text model is written as format 4 and everything else as format 3, so a build from
// before text runs refuses every new checkpoint with "upgrade metalearn" instead of misreading a
// text run's, and one from before adapted text models refuses just those. Format 5 is format 3
// for a purchase-log run whose model reads item texts or user sequences (model.item_text,
// model.user_sequence: models/context_model.hpp; their tokenizer and stored recent items are in
// meta.features): a build from before them refuses such a run with "upgrade metalearn" instead
// of failing on config keys it does not know.
//
// The header deliberately stays free of torch (the archive types are only forward-declared) so
// that torch-free code, e.g. a CLI listing checkpoints, can include it and call
// read_checkpoint_meta / resolve_checkpoint_path without the torch headers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "run/run_layout.hpp"

namespace c10 {
struct Device;  // torch::Device
}  // namespace c10
namespace torch::serialize {
class InputArchive;
class OutputArchive;
}  // namespace torch::serialize

namespace ml::run {

// The format every checkpoint but an adapted text model is written as.
inline constexpr std::uint32_t kCheckpointFormat = 3;
// The first format that can hold a text run.
inline constexpr std::uint32_t kFirstTextCheckpointFormat = 3;
// An adapted text model's format, and the newest this build reads.
inline constexpr std::uint32_t kAdaptedTextCheckpointFormat = 4;
// A run with the item-text or user-sequence encoders, and the newest this build reads.
inline constexpr std::uint32_t kContextCheckpointFormat = 5;
inline constexpr std::uint32_t kNewestCheckpointFormat = 5;

// The two kinds of checkpoint; anything else is refused on save and on load.
inline constexpr const char* kCheckpointKindMeta = "meta";        // a meta-training run
inline constexpr const char* kCheckpointKindAdapted = "adapted";  // a model adapted to one task

struct CheckpointMeta {
  // From the header; save_checkpoint ignores it and writes checkpoint_format(kind, config).
  std::uint32_t format = kCheckpointFormat;
  std::string tool_version;  // ml::kToolVersion of the writer
  std::string kind;          // kCheckpointKindMeta or kCheckpointKindAdapted
  nlohmann::json config;     // the resolved config
  nlohmann::json features;   // fitted feature statistics and vocabularies
  nlohmann::json progress;   // meta: a TrainingProgress; adapted: see adaptation.cpp
};

// The format a checkpoint of `kind` with the resolved `config` is written as:
// kAdaptedTextCheckpointFormat for an adapted text run (data.text.column set),
// kContextCheckpointFormat for a run with model.item_text or model.user_sequence, else
// kCheckpointFormat.
std::uint32_t checkpoint_format(const std::string& kind, const nlohmann::json& config);

// Writes atomically: everything is serialized in memory first, then written to PATH.tmp-PID in
// the same folder, flushed, fsync'ed and renamed over PATH (then the folder is fsync'ed so the
// rename survives a crash). On any failure an existing PATH is left untouched and the temporary
// removed. An exception thrown by write_state propagates unchanged; metadata that is not valid
// UTF-8 or an unknown kind throw CheckpointError, and what the file system refuses (folder not
// writable, disk full) IoError ("cannot write checkpoint 'PATH': REASON"). Missing parent
// folders are created. An empty meta.tool_version is filled with ml::kToolVersion.
void save_checkpoint(const std::string& path, const CheckpointMeta& meta,
                     const std::function<void(torch::serialize::OutputArchive&)>& write_state);

// save_checkpoint in two halves, for a checkpoint made in one process and written by another
// (a rank's adapted model, written by rank 0): the file's bytes (the errors of
// save_checkpoint's serializing, naming `path`), and writing them atomically (IoError).
std::string checkpoint_bytes(
    const std::string& path, const CheckpointMeta& meta,
    const std::function<void(torch::serialize::OutputArchive&)>& write_state);
void write_checkpoint_bytes(const std::string& path, const std::string& bytes);

struct Checkpoint {
  std::string path;
  CheckpointMeta meta;
  std::string payload;  // the serialized torch archive

  // Decodes the payload with tensors mapped onto `device` and hands the archive to `read`
  // (e.g. `module->load(archive)`, `archive.read("model", nested)`, `optimizer.load(nested)`).
  // A torch error inside `read` (a missing key, a shape mismatch) becomes a CheckpointError
  // saying the checkpoint does not match; ml::Error from `read` propagates unchanged.
  void read_state(const std::function<void(torch::serialize::InputArchive&)>& read,
                  const c10::Device& device) const;
};

// Reads and validates the whole file: magic, format, lengths, checksum, the metadata and that the
// torch archive decodes (on the CPU, so a bad archive is reported here, not halfway through a
// run). Throws CheckpointError, one line naming the file, for:
//   missing           "no checkpoint at 'X'"
//   not a checkpoint  "'X' is not a metalearn checkpoint (...)": empty, a directory, or a magic
//                     that differs from "MLCKPT\r\n" (a file that is a cut-off prefix of the magic
//                     counts as truncated)
//   newer format      "'X' was written by a newer metalearn (checkpoint format 2; this build reads
//                     format 1): upgrade metalearn"
//   truncated         "'X' is truncated (expected [at least] N bytes, found M)"
//   corrupt           "'X' is corrupt: ..." (checksum mismatch, bad JSON or fields, trailing
//                     bytes, an archive torch cannot decode)
Checkpoint load_checkpoint(const std::string& path);
// load_checkpoint in two halves, for a checkpoint read on one host and used on others (a
// group's --resume): the file's bytes (CheckpointError when missing or unreadable), and the
// checkpoint they hold, validated as load_checkpoint does, its messages naming `path`.
std::string read_checkpoint_file(const std::string& path);
Checkpoint checkpoint_from_bytes(const std::string& path, std::string bytes);

// Header and metadata only: reads the first bytes and the JSON, checks the lengths against the
// file size, but neither reads the payload nor verifies the checksum. Same errors as above.
CheckpointMeta read_checkpoint_meta(const std::string& path);

// A checkpoint file resolves to itself; a run directory to RUN/checkpoints/best.mlckpt if present,
// else RUN/checkpoints/latest.mlckpt. Anything else is a CheckpointError naming what was looked
// for. Does not open the file: load_checkpoint validates it. A run that diverged in training
// (run/divergence.hpp) is a NumericError, whichever of its checkpoints is named.
std::string resolve_checkpoint_path(const std::string& path_or_run_dir);

// Whether `checkpoint` (a run directory or checkpoint file) is a text run's (data.text.column):
// reads only its metadata. The errors of resolve_checkpoint_path and read_checkpoint_meta.
bool is_text_run_checkpoint(const std::string& checkpoint);
// UsageError naming `path` when `text_run` (the checkpoint is a text run's), for what reads
// purchase-log runs only (run::load_run). Called before anything reads a feature run's parts
// of the checkpoint.
void refuse_text_run(bool text_run, const std::string& path);

}  // namespace ml::run
