// Adaptation of a meta-trained text run to M classes, M free of the head's N rows
// (meta/class_head.hpp): the Proto-MAML head, its identity with nearest class mean before any
// step, each algorithm's inner loop from it, N-way adaptation left as MetaLearner does it, and
// the errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <stdexcept>

#include "meta/class_head.hpp"
#include "meta/meta_learner.hpp"
#include "models/transformer.hpp"
#include "util/errors.hpp"

namespace {

using ml::config::Algorithm;
using ml::meta::adapt_to_classes;
using ml::meta::class_outputs;
using ml::meta::HeadInit;
using ml::meta::MetaLearner;
using ml::models::Batch;
using ml::models::TransformerImpl;
using ml::tasks::LabelKind;
using torch::Tensor;

constexpr std::int64_t kTrainedWays = 3, kNewWays = 5, kWidth = 8;

// `n` texts of `classes` classes whose first token is 2 + class (the rest noise).
Batch texts(std::int64_t n, std::int64_t classes) {
  const std::int64_t L = 5;
  Batch b;
  b.target = torch::arange(n, torch::kInt64).remainder(classes);
  b.tokens = torch::randint(8, 16, {n, L}, torch::kInt64);
  b.tokens.select(1, 0).copy_(b.target + 2);
  const Tensor lengths = torch::randint(2, L + 1, {n, 1}, torch::kInt64);
  b.mask = torch::arange(L, torch::kInt64).unsqueeze(0) < lengths;
  b.tokens.masked_fill_(b.mask.logical_not(), 0);
  b.dense = torch::empty({n, 0});
  b.ids = torch::empty({n, 0}, torch::kInt64);
  return b;
}

MetaLearner learner(Algorithm algorithm, std::uint64_t seed = 7,
                    LabelKind kind = LabelKind::kMulticlass) {
  torch::manual_seed(seed);
  ml::models::TransformerShape s;
  s.vocab_size = 16;
  s.max_len = 5;
  s.model_dim = kWidth;
  s.heads = 2;
  s.layers = 1;
  s.ff_dim = 12;
  s.outputs = kind == LabelKind::kMulticlass ? kTrainedWays : 1;
  auto model = std::make_shared<TransformerImpl>(s);
  model->to(torch::kFloat64);
  ml::config::MetaConfig m;
  m.algorithm = algorithm;
  m.inner_steps = 2;
  m.inner_lr = 0.3;
  MetaLearner l(m, kind, model);
  return l;
}

// -||z - mu_c||^2 on the model's representation: nearest class mean's logits.
Tensor nearest_mean_logits(const MetaLearner& l, const Batch& support, const Batch& query,
                           std::int64_t classes) {
  torch::NoGradGuard no_grad;
  const auto params = l.model()->params();
  const Tensor zs = l.model()->represent(support, params);
  const Tensor zq = l.model()->represent(query, params);
  std::vector<Tensor> means;
  for (std::int64_t c = 0; c < classes; ++c)
    means.push_back(zs.index({support.target == c}).mean(0));
  return -torch::cdist(zq, torch::stack(means)).pow(2);
}

TEST(ClassHead, AdaptsToMoreClassesThanTheHeadWasTrainedForWithEveryAlgorithm) {
  for (Algorithm algorithm :
       {Algorithm::kMaml, Algorithm::kAnil, Algorithm::kMetaSgd, Algorithm::kProtonet}) {
    const std::string name = ml::enum_name(algorithm);
    const MetaLearner l = learner(algorithm);
    torch::manual_seed(3);
    const Batch support = texts(10, kNewWays), query = texts(12, kNewWays);
    const auto base = l.model()->params();
    const auto at_start = adapt_to_classes(l, support, kNewWays, 0, 0.3);
    const auto adapted = adapt_to_classes(l, support, kNewWays, 3, 0.3);
    ASSERT_EQ(adapted.size(), base.size()) << name;
    const std::size_t head = adapted.size() - 2;
    EXPECT_EQ(adapted[head].sizes(), (std::vector<std::int64_t>{kNewWays, kWidth})) << name;
    EXPECT_EQ(adapted[head + 1].sizes(), (std::vector<std::int64_t>{kNewWays})) << name;
    const Tensor out = class_outputs(l, adapted, query);
    EXPECT_EQ(out.sizes(), (std::vector<std::int64_t>{12, kNewWays})) << name;
    EXPECT_TRUE(torch::isfinite(out).all().item<bool>()) << name;
    // The model itself is untouched: still N rows.
    EXPECT_EQ(l.model()->params()[head].size(0), kTrainedWays) << name;
    const bool head_moved = !torch::allclose(adapted[head], at_start[head]);
    EXPECT_EQ(head_moved, algorithm != Algorithm::kProtonet) << name << ": protonet takes no step";
    for (std::size_t i = 0; i < head; ++i) {
      const bool moved = !torch::equal(adapted[i], base[i]);
      EXPECT_EQ(moved, algorithm != Algorithm::kProtonet && l.inner_mask()[i])
          << name << ": " << l.model()->names()[i];
    }
  }
}

TEST(ClassHead, MetaSgdBroadcastsItsHeadRatesToTheNewRows) {
  MetaLearner l = learner(Algorithm::kMetaSgd);
  torch::manual_seed(3);
  const Batch support = texts(10, kNewWays);
  auto& rates = l.inner_learning_rates();
  const std::size_t head = rates.size() - 2;
  // Rates of zero on the head's rows: the head must stay where the prototypes put it.
  rates[head] = torch::zeros_like(rates[head]);
  rates[head + 1] = torch::zeros_like(rates[head + 1]);
  const auto start = adapt_to_classes(l, support, kNewWays, 0, 0.3);
  const auto adapted = adapt_to_classes(l, support, kNewWays, 2, 0.3);
  EXPECT_TRUE(torch::equal(adapted[head], start[head]));
  EXPECT_TRUE(torch::equal(adapted[head + 1], start[head + 1]));
  EXPECT_FALSE(torch::equal(adapted[head - 2], start[head - 2])) << "the encoder must move";
  // A rate of one on the head rows (mean 1 over the trained rows) moves it.
  rates[head] = torch::ones_like(rates[head]);
  const auto moved = adapt_to_classes(l, support, kNewWays, 2, 0.3);
  EXPECT_FALSE(torch::allclose(moved[head], start[head]));
}

TEST(ClassHead, BeforeAnyStepThePrototypeHeadIsNearestClassMean) {
  for (Algorithm algorithm : {Algorithm::kMaml, Algorithm::kProtonet}) {
    const MetaLearner l = learner(algorithm, 21);
    torch::manual_seed(4);
    const Batch support = texts(15, kNewWays), query = texts(30, kNewWays);
    const Tensor logits = class_outputs(l, adapt_to_classes(l, support, kNewWays, 0, 0.3), query);
    const Tensor nearest = nearest_mean_logits(l, support, query, kNewWays);
    EXPECT_TRUE(torch::equal(logits.argmax(1), nearest.argmax(1)));
    // W_c.z + b_c = ||z||^2 - ||z - mu_c||^2: the difference is the same for every class.
    const Tensor shift = logits - nearest;
    EXPECT_TRUE(torch::allclose(shift, shift.select(1, 0).unsqueeze(1).expand_as(shift), 0, 1e-9));
    const Tensor norms = l.model()->represent(query, l.model()->params()).detach().pow(2).sum(1);
    EXPECT_TRUE(torch::allclose(shift.select(1, 0), norms, 0, 1e-9));
  }
}

TEST(ClassHead, AtTheTrainedWaysTheMetaLearnedHeadAdaptsAsMetaLearnerDoes) {
  const MetaLearner l = learner(Algorithm::kMaml);
  torch::manual_seed(5);
  const Batch support = texts(6, kTrainedWays), query = texts(9, kTrainedWays);
  const auto at_start = adapt_to_classes(l, support, kTrainedWays, 0, 0.3);
  const std::size_t head = at_start.size() - 2;
  EXPECT_TRUE(torch::equal(at_start[head], l.model()->params()[head].detach()));
  const Tensor ours = class_outputs(l, adapt_to_classes(l, support, kTrainedWays, 2, 0.3), query);
  EXPECT_TRUE(torch::allclose(ours, l.adapted_outputs(support, query, 2), 1e-6, 1e-9));
  // Asked for, the prototypes replace it at N ways too; protonet always uses them.
  const auto prototypes = adapt_to_classes(l, support, kTrainedWays, 0, 0.3, HeadInit::kPrototypes);
  EXPECT_FALSE(torch::equal(prototypes[head], at_start[head]));
  const MetaLearner proto = learner(Algorithm::kProtonet);
  const auto proto_head = adapt_to_classes(proto, support, kTrainedWays, 0, 0.3);
  EXPECT_FALSE(torch::equal(proto_head[head], proto.model()->params()[head].detach()));
}

TEST(ClassHead, RefusesTooFewClassesLabelsOutOfRangeAndMissingClasses) {
  const MetaLearner l = learner(Algorithm::kMaml);
  torch::manual_seed(6);
  const Batch support = texts(10, kNewWays);
  EXPECT_THROW(adapt_to_classes(l, support, 1, 1, 0.3), ml::DataError);
  EXPECT_THROW(adapt_to_classes(l, support, 4, 1, 0.3), ml::DataError) << "label 4 of 4 classes";
  EXPECT_THROW(adapt_to_classes(l, support, 6, 1, 0.3), ml::DataError) << "class 5 has no row";
  EXPECT_THROW(adapt_to_classes(l, support, kNewWays, -1, 0.3), ml::DataError);
  EXPECT_THROW(adapt_to_classes(l, support, kNewWays, 0, 0.3, HeadInit::kMetaLearned),
               std::invalid_argument);
  Batch negative = support;
  negative.target = support.target.clone();
  negative.target[0] = -1;
  EXPECT_THROW(adapt_to_classes(l, negative, kNewWays, 0, 0.3), ml::DataError);
  const MetaLearner binary = learner(Algorithm::kMaml, 7, LabelKind::kBinary);
  EXPECT_THROW(adapt_to_classes(binary, support, kNewWays, 0, 0.3), ml::DataError);
  try {
    adapt_to_classes(l, support, 4, 1, 0.3);
  } catch (const ml::DataError& e) {
    EXPECT_NE(std::string(e.what()).find("label 4"), std::string::npos) << e.what();
  }
}

}  // namespace
