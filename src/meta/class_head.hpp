// Adapting a meta-trained multiclass run to an arbitrary set of M classes, M free of the
// task.label.ways N its head was meta-trained with: the many-way evaluation and `adapt` on new
// text classes. The head is initialised from the support prototypes as in Proto-MAML
// (Triantafillou et al. 2020, "Meta-Dataset", ICLR, Sec. 3.3): on the representation the head
// reads (models::Network::represent), class c's row is W_c = 2 mu_c and b_c = -||mu_c||^2,
// mu_c the mean support representation of class c, so that W_c . z + b_c = ||z||^2 -
// ||z - mu_c||^2: before any step the head ranks classes exactly as nearest class mean under
// squared Euclidean distance (||z||^2 is the same for every class of a row). The run's inner
// loop then adapts from there: its mask (meta.inner_params / meta.inner_layers; ANIL the head,
// Reptile everything), Meta-SGD's learned rates where a parameter keeps its shape and, for the
// head, its rates averaged over the N meta-trained rows and broadcast to M (the rows are
// exchangeable: episodes assign classes to rows at random). ProtoNets take no steps: the
// prototype head is their classifier (its softmax equals ProtoNets' softmax over -distances).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "meta/meta_learner.hpp"
#include "models/batch.hpp"

namespace ml::meta {

// Where the adapted head starts.
enum class HeadInit {
  // kMetaLearned when M equals the head's N rows and the algorithm trained an episode head (all
  // but protonet, and pretrain, whose rows are its training classes), else kPrototypes. At M == N
  // the meta-learned rows are the initialisation MAML
  // meta-trained for the inner loop, so N-way results stay those of MetaLearner's own
  // adaptation (MetaLearner::outputs_at_steps): the same parameters, the same loss. Measured on
  // the banking77 run of README (100 5-way 5-shot episodes of its validation intents): the
  // meta-learned head after its 3 steps at lr 0.1 scored 0.826, the prototype head 0.837 with
  // no step but 0.580 after the same 3 steps (0.822 at lr 0.01): the run's inner loop is tuned
  // to its own head, so the prototypes are not better there.
  kAuto,
  kPrototypes,   // Proto-MAML's head, whatever M
  kMetaLearned,  // the model's own head; only when M == N (std::invalid_argument otherwise)
};

// The Proto-MAML head of `classes` rows: weight [classes, width] = 2 mu_c, bias [classes] =
// -||mu_c||^2, from support representations [n, width] and their int64 class indices [n].
// DataError for classes < 2, a label outside 0..classes-1, or a class without a support row.
struct ClassHead {
  torch::Tensor weight, bias;
};
ClassHead prototype_head(const torch::Tensor& support_rep, const torch::Tensor& labels,
                         std::int64_t classes);

// The learner's parameters adapted to the `classes` classes of `support` (labels 0..classes-1
// as int64 targets, every class present): the model's parameters in layout order, the head's
// two last ones with `classes` rows, after `steps` inner SGD steps at `lr` on the whole
// support (Meta-SGD: its rates instead; protonet: no steps). Detached leaves; the learner and
// its model are left untouched. DataError for a learner that is not multiclass, as for
// prototype_head, or for steps < 0.
std::vector<torch::Tensor> adapt_to_classes(const MetaLearner& learner,
                                            const models::Batch& support, std::int64_t classes,
                                            int steps, double lr, HeadInit init = HeadInit::kAuto);

// Meta-SGD's learned rates (detached) for a head of `classes` rows: the learner's own, the
// head's two averaged over their N rows and broadcast to `classes` rows where that differs;
// empty for the other algorithms. What adapt_to_classes steps with, and what an adapted text
// model keeps.
std::vector<torch::Tensor> class_head_rates(const MetaLearner& learner, std::int64_t classes);

// Logits [n, M] on `query` from adapt_to_classes' parameters (computed in slices of a few
// hundred rows, without a graph, so a large query set fits in memory).
torch::Tensor class_outputs(const MetaLearner& learner, const std::vector<torch::Tensor>& params,
                            const models::Batch& query);

}  // namespace ml::meta
