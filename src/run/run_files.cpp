// A run's own files and the data it reads: see run_files.hpp.
#include "run/run_files.hpp"

#include "run/checkpoint.hpp"
#include "run/run_layout.hpp"
#include "util/errors.hpp"
#include "util/same_file.hpp"

namespace ml::run {

namespace fs = std::filesystem;

RunFiles run_files(const std::string& path, const config::Config& config) {
  RunFiles f;
  f.checkpoint = path;
  f.dir = run_dir_of(path);
  const config::DataConfig& data = config.data;
  f.data = data.files;
  for (const auto& table : data.side_tables)
    f.data.insert(f.data.end(), table.files.begin(), table.files.end());
  for (const auto& table : config.features.embeddings) f.data.push_back(table.file);
  for (const std::string& file : {config.model.backbone.file, config.model.backbone.tokenizer})
    if (!file.empty()) f.data.push_back(file);
  return f;
}

RunFiles run_files(const std::string& checkpoint_or_run_dir) {
  const std::string path = resolve_checkpoint_path(checkpoint_or_run_dir);
  return run_files(path, config::config_from_saved(read_checkpoint_meta(path).config));
}

std::string part_of_run(const RunFiles& files, const std::string& path) {
  if (same_file(path, files.checkpoint)) return "the checkpoint '" + files.checkpoint + "'";
  for (const std::string& file : files.data)
    if (same_file(path, file)) return "the data file '" + file + "' of '" + files.checkpoint + "'";
  const fs::path relative = resolved_path(path.empty() ? "." : path)
                                .lexically_relative(resolved_path(files.dir.string()));
  if (relative.empty() || *relative.begin() == "..") return "";
  const RunLayout layout(fs::path{});
  const std::string first = relative.begin()->string();
  const bool owned = relative.extension() == ".mlckpt" || first == kCheckpointDirName ||
                     first == "baselines" || relative == layout.config() ||
                     relative == layout.metrics() || relative == layout.train_log() ||
                     relative == layout.validated_adaptation() || relative == layout.divergence();
  return owned ? "a file of the run directory '" + files.dir.string() + "'" : "";
}

void refuse_output_over_run(const RunFiles& files, const std::string& option,
                            const std::string& path) {
  const std::string what = part_of_run(files, path);
  if (!what.empty())
    throw UsageError(option + " '" + path + "' is " + what + "; give another file name");
}

}  // namespace ml::run
