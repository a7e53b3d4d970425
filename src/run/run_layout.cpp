// Run-directory paths: see run_layout.hpp.
#include "run/run_layout.hpp"

namespace ml::run {

namespace fs = std::filesystem;

fs::path run_dir_of(const std::string& checkpoint_or_run_dir) {
  const fs::path given(checkpoint_or_run_dir);
  std::error_code ec;
  if (fs::is_directory(given, ec)) return given;
  fs::path dir = given.parent_path();
  if (dir.filename() == kCheckpointDirName || dir.filename() == kAdaptedDirName)
    dir = dir.parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

}  // namespace ml::run
