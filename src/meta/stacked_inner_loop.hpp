// The inner loop of every gradient-based meta-learner run for all tasks of a meta-batch at
// once: the adapted parameters carry a leading task dimension, the forward pass is batched
// (bmm/baddbmm, one embedding gather) and one autograd call yields every task's gradient
// (tasks are independent, so the gradient of the summed per-task losses with respect to task
// t's parameters is task t's own gradient). meta::inner_loop is the one-task reference that
// tests hold this to.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "models/model.hpp"
#include "models/task_stack.hpp"
#include "tasks/task_set.hpp"

namespace ml::meta {

// Each task's starting copy of the parameters that adapt (mask true): [T, ...] for dense
// ones, the task's gathered rows [T, u, dim] (embedding_rows[k] from gather_embedding_rows)
// for id table k (models::Network::id_tables). Parameters that do not adapt stay shared.
// `differentiable` keeps the copies connected to `params` (second order); otherwise they are fresh
// leaves.
std::vector<torch::Tensor> per_task_parameters(const models::Network& model,
                                               const std::vector<torch::Tensor>& params,
                                               const std::vector<bool>& mask, std::int64_t tasks,
                                               const std::vector<torch::Tensor>& embedding_rows,
                                               bool differentiable);

// `steps` SGD steps on every task's support rows from the per-task parameters `fast`.
// `per_param_lr` (Meta-SGD), when given, is in the same per-task layout as `fast`. Without
// create_graph or per_param_lr, for the MLP with no embedding table adapting, the steps are
// taken by hand (models/dense_backprop.hpp) in place on `fast`'s tensors; otherwise by autograd.
std::vector<torch::Tensor> stacked_inner_loop(
    const models::Network& model, std::vector<torch::Tensor> fast, const std::vector<bool>& mask,
    const models::StackedBatch& support, tasks::LabelKind kind, int steps, double lr,
    bool create_graph, const std::vector<torch::Tensor>* per_param_lr);

// One (first row, count) per task: rows of a stack that a step uses, all real rows.
using RowRanges = std::vector<std::pair<std::int64_t, std::int64_t>>;

// One first-order SGD step of every task on its `rows` of `batch`, by hand and in place on
// `fast` (models/dense_backprop.hpp): the same step as stacked_inner_loop() on select_rows()
// of those rows, without building that stack. False, with nothing done, where the hand-written
// pass does not apply (stacked_inner_loop's conditions).
bool stacked_sgd_step_on_rows(const models::Network& model, const std::vector<torch::Tensor>& fast,
                              const std::vector<bool>& mask, const models::StackedBatch& batch,
                              const RowRanges& rows, tasks::LabelKind kind, double lr);

// Σ_t (task t's mean loss on its `rows` of `batch`, or on all its rows if `rows` is empty) by
// hand; std::nullopt where the hand-written pass does not apply.
std::optional<double> stacked_loss_sum_on_rows(const models::Network& model,
                                               const models::StackedBatch& batch,
                                               const std::vector<torch::Tensor>& fast,
                                               tasks::LabelKind kind, const RowRanges& rows);

// Σ_t (task t's mean loss on `batch`) with per-task parameters `fast`; no graph is kept.
double stacked_loss_sum(const models::Network& model, const models::StackedBatch& batch,
                        const std::vector<torch::Tensor>& fast, tasks::LabelKind kind);

// scale · Σ_t ∇ (task t's mean loss on `batch`) with respect to every parameter, at the per-task
// (or shared) parameters `fast`, each in the parameter's own shape, computed by hand
// (models/dense_backprop.hpp); returns Σ_t (task t's mean loss). std::nullopt, with `sums`
// untouched, where that does not apply: a model other than the MLP, one with embedding tables,
// or tensors off the CPU.
std::optional<double> stacked_gradient_sum(const models::Network& model,
                                           const models::StackedBatch& batch,
                                           const std::vector<torch::Tensor>& fast,
                                           tasks::LabelKind kind, double scale,
                                           std::vector<torch::Tensor>& sums);

// scale · Σ_t (second-order MAML's meta-gradient of task t's mean query loss after `steps` SGD
// steps of the tensors `mask` marks on its support) with respect to every parameter, from the
// shared initial `params`, by hand (models/dense_second_order.hpp), and through autograd from
// the tower's inputs to the embedding tables; returns Σ_t (task t's mean query loss after the
// steps). With `rates` (Meta-SGD's per-element learning rates, one per parameter, in place of
// `lr`) their meta-gradient goes to `rate_sums` (undefined where the parameter does not
// adapt). std::nullopt, with the sums untouched, where that does not apply: a network other
// than the MLP, embedding tables that adapt (`mask`), or tensors off the CPU.
std::optional<double> stacked_maml_gradient_sum(
    const models::Network& model, const models::StackedBatch& support,
    const models::StackedBatch& query, const std::vector<torch::Tensor>& params,
    const std::vector<bool>& mask, tasks::LabelKind kind, int steps, double lr, double scale,
    std::vector<torch::Tensor>& sums, const std::vector<torch::Tensor>* rates = nullptr,
    std::vector<torch::Tensor>* rate_sums = nullptr);

// A per-task quantity summed back onto parameter i's own shape: over the task dimension for
// dense parameters, scattered onto the gathered rows for embedding tables.
torch::Tensor sum_over_tasks(const models::Network& model, std::size_t i,
                             const torch::Tensor& per_task, const torch::Tensor& shared,
                             const std::vector<torch::Tensor>& embedding_rows);

// Reptile's meta-gradient of parameter i (Nichol, Achiam & Schulman 2018, "On First-Order
// Meta-Learning Algorithms", the batched update): scale · Σ_t (θ - φ_t) in θ's own shape, from
// the shared start θ = `shared` and each task's walk end φ_t = `fast` ([T, ...] for a dense
// parameter, the task's gathered rows [T, u, dim] for id table i, as per_task_parameters()
// lays them out). For a dense CPU float or double parameter one loop reads θ and every φ_t
// once, summing the tasks in order; otherwise tensor operations do the same.
torch::Tensor sum_of_task_moves(const models::Network& model, std::size_t i,
                                const torch::Tensor& shared, const torch::Tensor& fast,
                                double scale, const std::vector<torch::Tensor>& embedding_rows);

}  // namespace ml::meta
