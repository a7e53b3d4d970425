// What a run is made of and what it reads, so that no command writes an output over either:
// the files of its run directory (run/run_layout.hpp) and the data files its config names.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace ml::run {

struct RunFiles {
  std::string checkpoint;         // the resolved checkpoint file
  std::filesystem::path dir;      // its run directory (run_dir_of)
  std::vector<std::string> data;  // data.files, side tables, embedding tables, backbone files
};

// The files of the checkpoint `path` (resolved) whose run was trained with `config`.
RunFiles run_files(const std::string& path, const config::Config& config);
// The same from a checkpoint argument (a run directory, checkpoint file or adapted model), its
// config read from the checkpoint's header. Throws CheckpointError as load_checkpoint does.
RunFiles run_files(const std::string& checkpoint_or_run_dir);

// What `path` is to the run, in words ("the checkpoint 'C'", "the data file 'F' of 'C'", "a file
// of the run directory 'R'"), by any spelling of either path; "" when it is none of them. A run
// directory owns its records (config.json, metrics.jsonl, train.log, adaptation.json,
// diverged.json), everything under checkpoints/ and baselines/, and every .mlckpt file in it.
std::string part_of_run(const RunFiles& files, const std::string& path);

// UsageError when `path`, the output of `option`, is part of the run: "OPTION 'PATH' is WHAT;
// give another file name".
void refuse_output_over_run(const RunFiles& files, const std::string& option,
                            const std::string& path);

}  // namespace ml::run
