// When a meta-training run counts as diverged, and the mark it leaves. A meta-iteration
// diverges when its query loss is not finite, when its loss explodes (exploding_loss_limit),
// or when its meta-gradient norm is not finite; the trainer checks all three before the outer
// step, so such a step never reaches the weights, the optimizer state or a checkpoint. The run
// then stops with a NumericError and RUN/diverged.json records where and why: its checkpoints
// hold the weights from before the divergence, a run that never finished, so `predict`, `eval`
// and `adapt` (through resolve_checkpoint_path) and `train --resume` refuse it. Torch-free.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "run/run_layout.hpp"
#include "tasks/task_set.hpp"

namespace ml::run {

// How many times the loss of a constant prediction a meta-batch's query loss may reach.
inline constexpr double kExplodingLossFactor = 1e4;

// The largest query loss that is not an explosion: kExplodingLossFactor x max(1, L0), where L0
// is the loss a constant prediction makes on these labels: log 2 for binary labels, log C for C
// classes, and for regression (mean squared error) the mean squared target of the training
// examples, the loss of predicting 0. Relative to the targets' own scale, so regression on
// large values (prices, revenue) is not flagged for its large losses; a model that loses
// 10^4 times more than a constant guess has left any meaningful solution (an inner or outer
// learning rate far too high), even where the loss is still finite (1e28).
double exploding_loss_limit(tasks::LabelKind kind,
                            const std::vector<const tasks::Task*>& training_tasks);

// Why one meta-iteration diverged ("the query loss is nan", "the query loss 3.2e+28 exceeds
// ..."), or "" when it did not. `gradient_norm` is NaN when not known yet (checked before the
// step) and the meta-gradient's joint L2 norm after it.
std::string divergence_reason(double loss, double loss_limit, double gradient_norm);

// RUN/diverged.json.
struct Divergence {
  int iteration = 0;    // the meta-iteration (0-based, as the error says) whose step was refused
  int checkpoint = -1;  // the iteration latest.mlckpt holds (from before it); -1: none
  std::string reason;   // the error line the run stopped with
};

// Atomically; FileWriteError when it cannot.
void write_divergence(const RunLayout& layout, const Divergence& divergence);
// std::nullopt when the run has no mark; a mark that cannot be parsed still counts (reason
// "unreadable mark"), since only the trainer writes the file.
std::optional<Divergence> read_divergence(const RunLayout& layout);

// NumericError naming the run and where it diverged when the run directory of
// `checkpoint_or_run_dir` (run_dir_of) carries the mark.
void refuse_diverged(const std::string& checkpoint_or_run_dir);

}  // namespace ml::run
