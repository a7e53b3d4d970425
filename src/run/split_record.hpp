// The split a run was trained with, kept in its checkpoints. The split shuffles the tasks the
// log holds, so a log that gained or lost tasks since training splits otherwise: a later eval
// would score training tasks as new. Commands that read a run compare the split they get now
// with the recorded one and stop where they differ.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tasks/task_set.hpp"

namespace ml::run {

// {"new": [names], "validation": [names]}, each sorted: the held-out tasks of `set`.
nlohmann::json split_record(const tasks::TaskSet& set);

// The key of a checkpoint's progress (meta.progress, or an adapted model's source_progress)
// that holds split_record.
inline constexpr const char* kSplitKey = "split";

// DataError when `progress` records a split (kSplitKey) and `set` splits its tasks otherwise,
// naming up to three tasks whose role changed and the checkpoint; nothing for a checkpoint
// written before the split was recorded.
void check_split_record(const nlohmann::json& progress, const tasks::TaskSet& set,
                        const std::string& checkpoint);

}  // namespace ml::run
