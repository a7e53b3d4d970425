// The meta-learning algorithms and the two baselines behind one interface: an outer step's
// gradient from a meta-batch of tasks, and adaptation to a new task's support set.
//
//   maml     second order: the query loss is differentiated through the inner SGD steps
//   fomaml   first order: the query gradient at the adapted weights is applied to the init
//   reptile  inner SGD over support + query in K-sized minibatches; meta-gradient theta - phi
//            (Nichol et al. 2018, "On First-Order Meta-Learning Algorithms", Alg. 2)
//   anil     maml with the inner loop on the head only
//   metasgd  maml with learned per-parameter inner learning rates (meta-parameters too)
//   protonet class prototypes from support representations, distances as logits
//   pretrain joint training on the same episodes' examples, then fine-tuning at adaptation
//   scratch  no training: random init, fine-tuned at adaptation
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "meta/row_sparse_gradient.hpp"
#include "models/batch.hpp"
#include "models/model.hpp"
#include "models/network.hpp"
#include "models/task_stack.hpp"
#include "tasks/episode_sampler.hpp"
#include "tasks/task_set.hpp"

namespace ml::runtime {
class WorkerPool;
}  // namespace ml::runtime

namespace ml::meta {

struct TaskBatch {
  models::Batch support, query;
  // Text runs: [N] int64, the joint head's row for episode label i (the class's index among the
  // run's training classes, -1 for a class outside them), which pretrain's joint cross-entropy
  // over all training classes needs (episode labels are relative to the episode); undefined
  // for a purchase log's tasks.
  torch::Tensor classes = {};
};

// Encodes an episode's support and query examples with `encoder` (bound to the episode's log and
// to `features`) onto `device`.
TaskBatch make_task_batch(const features::FeatureSpace& features,
                          const features::FeatureEncoder& encoder, const tasks::Episode& episode,
                          const torch::Device& device);

// What in a meta-batch's inputs would make its loss non-finite, for the error line: the first
// non-finite dense feature (FeatureSpace::non_finite_feature) of a support or query set, else a
// non-finite target, targets whose squares (summed, as the squared loss sums them) a float
// cannot hold, or a target of a million or more in magnitude (the squared loss's gradients
// then overflow within a few inner steps); "" when every input is fine (the learning rates are
// then to blame).
std::string non_finite_input(const features::FeatureSpace& features,
                             const std::vector<TaskBatch>& tasks);

// Inner-loop SGD from `params`. Only parameters where `mask` is true move. With
// `create_graph` the result stays differentiable with respect to `params` (second order);
// without it every adapted tensor is a fresh leaf. `per_param_lr`, when given, replaces `lr`.
std::vector<torch::Tensor> inner_loop(const models::Network& model,
                                      const std::vector<torch::Tensor>& params,
                                      const std::vector<bool>& mask, const models::Batch& support,
                                      tasks::LabelKind kind, int steps, double lr,
                                      bool create_graph,
                                      const std::vector<torch::Tensor>* per_param_lr = nullptr);

class MetaLearner {
 public:
  // Any models::Network: the MLP family over features, the transformer over tokens.
  // meta.inner_layers (the transformer's) picks the adapted layers; ConfigError for a layer
  // the model does not have, or for a model without encoder layers.
  MetaLearner(const config::MetaConfig& config, tasks::LabelKind kind,
              std::shared_ptr<models::Network> model);
  MetaLearner(const config::MetaConfig& config, tasks::LabelKind kind,
              models::FunctionalModel model);

  config::Algorithm algorithm() const { return config_.algorithm; }
  // MAML's meta-gradient taken first order from here on (fomaml's; the inner loop, the
  // adaptation and the weights it starts from are unchanged): what train falls back to when a
  // second-order meta-step would not fit in memory. std::logic_error for any other algorithm.
  void use_first_order();
  const config::MetaConfig& config() const { return config_; }
  const std::shared_ptr<models::Network>& model() const { return model_; }
  // What the outer optimiser updates: the model's parameters, then Meta-SGD's learning rates.
  std::vector<torch::Tensor> meta_parameters() const;
  tasks::LabelKind kind() const { return kind_; }
  // Which parameters the inner loop adapts (layout order; the algorithm, meta.inner_params and
  // meta.inner_layers decide).
  const std::vector<bool>& inner_mask() const { return mask_; }
  // Meta-SGD's per-parameter learning rates (empty for the other algorithms).
  std::vector<torch::Tensor>& inner_learning_rates() { return inner_lrs_; }
  const std::vector<torch::Tensor>& inner_learning_rates() const { return inner_lrs_; }
  bool trains() const { return config_.algorithm != config::Algorithm::kScratch; }
  // Which meta_parameters() are embedding tables (and Meta-SGD's rates for them): their
  // meta-gradient comes as row_sparse_gradients(), never in .grad().
  std::vector<bool> row_sparse_parameters() const;

  // Accumulates the meta-gradient of one meta-batch (averaged over tasks) into .grad() of the
  // dense meta_parameters() and returns the mean query loss after adaptation to the support,
  // on query rows the adaptation has not seen (pretrain: its joint training loss). Reptile's
  // inner loop goes on to train on the query rows, so a loss at its end would score rows it has
  // just fitted; it reports the query loss after the loop's first step, one SGD step on the
  // whole support, before any query row is trained on. That is a lighter adaptation than the
  // inner_steps steps MAML's loss is measured after (a support-only loop of inner_steps steps
  // would cost Reptile about a third of its speed for a log line); validation measures every
  // algorithm alike. Embedding tables
  // take part as meta-batch-local tables of just the rows the batch touches, so their gradient
  // is row-sparse: row_sparse_gradients() holds it until the next call replaces it.
  // Gradient-based algorithms run all tasks as one stack (stacked_inner_loop.hpp).
  //
  // With set_task_chunks(C, pool) the meta-batch's T tasks are cut into min(C, T) contiguous
  // chunks (pretrain, one joint batch, is never cut), each differentiated in its own autograd
  // graph with respect to its own copies of the leaves, on the pool's workers; the chunks'
  // gradients are added to .grad() in chunk order. The result depends on the number of chunks
  // only, not on the pool (threads only change how fast), and equals the one-chunk result to
  // float rounding, not bit for bit: one chunk sums a shared weight's gradient over all tasks'
  // rows inside one matrix product, C chunks add C such partial products.
  //
  // Inside a chunk, a stack holds at most tasks_per_stack() tasks: where one task's widest
  // activation alone fills a core's cache (the transformer of workload W3: 100 texts of 32
  // tokens by 384 values, 4.9 MB), a stack of several only streams them from memory (W3 ran
  // 5-10% faster one task at a time than as a stack of 8), so the chunk's tasks are computed
  // in stacks of that many, one after another, into the same leaves. It depends on the model
  // and the episode sizes only, never on the machine, so the result stays reproducible.
  double accumulate_meta_gradient(const std::vector<TaskBatch>& tasks);
  // How many of `tasks` one stack holds (above): as many as keep a stack's widest activation
  // within kStackCacheBytes, at least one; all of them for pretrain (one joint loss) and for a
  // network with embedding tables (whose row-sparse gradient is kept per chunk).
  std::size_t tasks_per_stack(const std::vector<TaskBatch>& tasks) const;
  // A core's share of cache that a stack's widest activation should fit (2 MiB: the L2 of a
  // current server core).
  static constexpr double kStackCacheBytes = 2.0 * 1024 * 1024;
  // How accumulate_meta_gradient() cuts and spreads its tasks: into `chunks` (>= 1; 1, the
  // default, is one stack) computed by `pool`'s workers (nullptr: the calling thread, chunk
  // after chunk). The pool must outlive its use here, and its workers must be single-threaded
  // inside (runtime::ThreadPlan), or their products' thread teams oversubscribe the cores.
  void set_task_chunks(std::size_t chunks, runtime::WorkerPool* pool);
  // How many chunks a meta-batch of `tasks` tasks is cut into.
  std::size_t chunks_for(std::size_t tasks) const;
  const std::vector<RowSparseGradient>& row_sparse_gradients() const { return row_sparse_grads_; }
  // The same gradient, one task at a time on the whole tables (dense .grad() everywhere): the
  // plain reference the stacked, row-sparse version is tested against.
  double accumulate_meta_gradient_per_task(const std::vector<TaskBatch>& tasks);

  // Outputs on `query` after adapting to `support` for `steps` steps ([n, outputs]; binary
  // protonet gives one logit column). No graph is kept.
  torch::Tensor adapted_outputs(const models::Batch& support, const models::Batch& query,
                                int steps) const;
  // ProtoNets' class prototypes (Snell et al. 2017, arXiv:1703.05175): the mean
  // representation of each class's rows of `support` under `params`, [classes, width], classes
  // being outputs() for multiclass and 2 for binary labels. What adapted_outputs() scores a
  // protonet's query against (minus the squared Euclidean distances), and export bakes in.
  torch::Tensor prototypes(const models::Batch& support,
                           const std::vector<torch::Tensor>& params) const;
  // Outputs on `query` after 0..max(steps) adaptation steps, recorded at each requested count:
  // one adaptation serves a whole grid of step counts, bit-identical to adapted_outputs().
  std::vector<torch::Tensor> outputs_at_steps(const models::Batch& support,
                                              const models::Batch& query,
                                              const std::vector<int>& steps) const;
  // The adapted parameters themselves (for saving an adapted model).
  std::vector<torch::Tensor> adapted_parameters(const models::Batch& support, int steps) const;

 private:
  std::vector<bool> mask_for(config::Algorithm algorithm) const;
  // The meta-gradient over all chunks of `tasks`, spread over the pool's workers.
  double chunked_meta_gradient(const std::vector<TaskBatch>& tasks,
                               const std::vector<torch::Tensor>& params,
                               const std::vector<torch::Tensor>& lrs);
  // The meta-gradient of `tasks`, a part of a meta-batch of `total` tasks (each task weighs
  // 1 / total), with `params` and `lrs` (Meta-SGD) standing in for the model's parameters and
  // inner_lrs_: the leaves that receive it. Returns the part's share of the mean loss.
  double meta_gradient(const std::vector<TaskBatch>& tasks,
                       const std::vector<torch::Tensor>& params,
                       const std::vector<torch::Tensor>& lrs, std::size_t total);
  // meta_gradient() of `tasks` as one stack.
  double stacked_meta_gradient(const std::vector<TaskBatch>& tasks,
                               const std::vector<torch::Tensor>& params,
                               const std::vector<torch::Tensor>& lrs, std::size_t total);
  double per_task_meta_gradient(const std::vector<TaskBatch>& tasks,
                                const std::vector<torch::Tensor>& params,
                                const std::vector<torch::Tensor>& lrs, std::size_t meta_batch);
  double stacked_second_order(const std::vector<TaskBatch>& tasks,
                              const std::vector<torch::Tensor>& params,
                              const std::vector<torch::Tensor>& lrs, std::size_t total);
  double stacked_first_order(const std::vector<TaskBatch>& tasks,
                             const std::vector<torch::Tensor>& params, std::size_t total);
  double stacked_reptile(const std::vector<TaskBatch>& tasks,
                         const std::vector<torch::Tensor>& params, std::size_t total);
  std::size_t embedding_tables() const;
  bool adapts_embeddings() const;
  // One new task's adaptation (a stack of one) for `steps` steps; `after_step(done, fast)`
  // sees the per-task parameters after 0..steps steps.
  std::vector<torch::Tensor> adapt_one_task(
      const models::StackedBatch& support, const std::vector<torch::Tensor>& rows, int steps,
      const std::function<void(int, const std::vector<torch::Tensor>&)>& after_step) const;
  torch::Tensor prototype_logits(const models::Batch& support, const models::Batch& query,
                                 const std::vector<torch::Tensor>& params) const;

  config::MetaConfig config_;
  tasks::LabelKind kind_;
  std::shared_ptr<models::Network> model_;
  std::vector<bool> mask_;
  std::vector<torch::Tensor> inner_lrs_;
  std::vector<RowSparseGradient> row_sparse_grads_;
  std::size_t chunks_ = 1;
  runtime::WorkerPool* pool_ = nullptr;
};

}  // namespace ml::meta
