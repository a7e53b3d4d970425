// Adaptation to an arbitrary class set: see class_head.hpp.
#include "meta/class_head.hpp"

#include <stdexcept>
#include <string>

#include "util/errors.hpp"
#include "util/interrupt.hpp"

namespace ml::meta {

using torch::Tensor;

namespace {
// Query rows per forward pass in class_outputs: bounds the activations of a large query set.
constexpr std::int64_t kQuerySlice = 256;
}  // namespace

ClassHead prototype_head(const Tensor& support_rep, const Tensor& labels, std::int64_t classes) {
  if (classes < 2)
    throw DataError("a class head needs at least 2 classes, got " + std::to_string(classes));
  if (support_rep.dim() != 2 || labels.dim() != 1 || labels.size(0) != support_rep.size(0))
    throw DataError("prototype head: support representations [n, width] and n labels expected");
  torch::NoGradGuard no_grad;
  const Tensor target = labels.to(torch::kInt64);
  if (target.numel() > 0) {
    const auto low = target.min().item<std::int64_t>(), high = target.max().item<std::int64_t>();
    if (low < 0 || high >= classes)
      throw DataError("support label " + std::to_string(low < 0 ? low : high) + " is outside the " +
                      std::to_string(classes) + " classes 0.." + std::to_string(classes - 1));
  }
  const Tensor rep = support_rep.detach();
  const Tensor onehot = torch::one_hot(target, classes).to(rep.dtype());  // [n, M]
  const Tensor counts = onehot.sum(0);
  const Tensor empty = (counts == 0).nonzero();
  if (empty.size(0) > 0)
    throw DataError("class " + std::to_string(empty[0][0].item<std::int64_t>()) + " of " +
                    std::to_string(classes) + " has no support example");
  const Tensor means = onehot.t().matmul(rep) / counts.unsqueeze(1);  // [M, width]
  return {2 * means, -means.pow(2).sum(1)};
}

std::vector<Tensor> adapt_to_classes(const MetaLearner& learner, const models::Batch& support,
                                     std::int64_t classes, int steps, double lr, HeadInit init) {
  if (learner.kind() != tasks::LabelKind::kMulticlass)
    throw DataError("adapting to a set of classes needs a multiclass run (task.label.ways > 1)");
  if (steps < 0) throw DataError("adaptation steps must be >= 0, got " + std::to_string(steps));
  const models::Network& model = *learner.model();
  std::vector<Tensor> params;
  for (const Tensor& p : model.params()) params.push_back(p.detach());
  const std::size_t head = params.size() - 2;  // every Network ends with head W [N, w], b [N]
  const bool protonet = learner.algorithm() == config::Algorithm::kProtonet;
  // Pretrain's head rows are its training classes, not episode rows: never an initialisation
  // for other classes, even when their count happens to match.
  const bool episode_head = !protonet && learner.algorithm() != config::Algorithm::kPretrain;
  if (init == HeadInit::kAuto)
    init =
        classes == model.outputs() && episode_head ? HeadInit::kMetaLearned : HeadInit::kPrototypes;
  if (init == HeadInit::kMetaLearned && classes != model.outputs())
    throw std::invalid_argument("adapt_to_classes: the meta-learned head has " +
                                std::to_string(model.outputs()) + " rows, not " +
                                std::to_string(classes));
  // Labels are checked whichever head starts: a label past M would index nothing.
  ClassHead start;
  {
    torch::NoGradGuard no_grad;
    start = prototype_head(model.represent(support, params), support.target, classes);
  }
  if (init == HeadInit::kPrototypes) {
    params[head] = start.weight;
    params[head + 1] = start.bias;
  }
  if (protonet || steps == 0) return params;

  const std::vector<bool>& mask = learner.inner_mask();
  const std::vector<Tensor> rates = class_head_rates(learner, classes);
  // One step at a time (the same SGD steps as one call) so that an interrupt stops a long
  // adaptation between steps rather than after the last.
  std::vector<Tensor> fast = std::move(params);
  for (int step = 0; step < steps; ++step) {
    throw_if_interrupted("adapting to " + std::to_string(classes) + " classes: step " +
                         std::to_string(step) + " of " + std::to_string(steps));
    fast = inner_loop(model, fast, mask, support, tasks::LabelKind::kMulticlass, 1, lr,
                      /*create_graph=*/false, rates.empty() ? nullptr : &rates);
    for (Tensor& p : fast) p = p.detach();
  }
  return fast;
}

std::vector<Tensor> class_head_rates(const MetaLearner& learner, std::int64_t classes) {
  std::vector<Tensor> rates;
  for (const Tensor& r : learner.inner_learning_rates()) rates.push_back(r.detach());
  if (rates.empty() || classes == learner.model()->outputs()) return rates;
  for (std::size_t i : {rates.size() - 2, rates.size() - 1}) {
    std::vector<std::int64_t> shape = rates[i].sizes().vec();
    shape[0] = classes;
    rates[i] = rates[i].mean(0, /*keepdim=*/true).expand(shape).contiguous();
  }
  return rates;
}

Tensor class_outputs(const MetaLearner& learner, const std::vector<Tensor>& params,
                     const models::Batch& query) {
  torch::NoGradGuard no_grad;
  const models::Network& model = *learner.model();
  const std::int64_t n = query.size();
  if (n <= kQuerySlice) return model.forward(query, params);
  std::vector<Tensor> parts;
  for (std::int64_t begin = 0; begin < n; begin += kQuerySlice)
    parts.push_back(model.forward(query.rows(begin, std::min(n, begin + kQuerySlice)), params));
  return torch::cat(parts);
}

}  // namespace ml::meta
