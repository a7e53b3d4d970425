// Tests of the transformer model: layout and shapes, the attention mask, the task-stacked
// forward against the per-task one, the adaptation masks, and the second-order MAML
// meta-gradient through attention against finite differences in float64.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "meta_gradients.hpp"
#include "models/transformer.hpp"
#include "util/errors.hpp"

namespace {

using ml::models::ParamGroup;
using ml::models::TokenBatch;
using ml::models::Transformer;
using ml::models::TransformerShape;
using ml::tasks::LabelKind;
using torch::Tensor;

TransformerShape tiny_shape(std::int64_t layers) {
  TransformerShape s;
  s.vocab_size = 13;
  s.max_len = 6;
  s.model_dim = 8;
  s.heads = 2;
  s.layers = layers;
  s.ff_dim = 10;
  s.outputs = 3;
  return s;
}

// Random ids in [1, vocab) with each row's real length in [1, L]; padding after it.
TokenBatch random_tokens(std::int64_t n, std::int64_t L, std::int64_t vocab) {
  TokenBatch b;
  b.ids = torch::randint(1, vocab, {n, L}, torch::kInt64);
  Tensor lengths = torch::randint(1, L + 1, {n, 1}, torch::kInt64);
  b.mask = torch::arange(L, torch::kInt64).unsqueeze(0) < lengths;
  b.ids.masked_fill_(b.mask.logical_not(), 0);
  return b;
}

TEST(Transformer, LayoutAndShapes) {
  torch::manual_seed(0);
  Transformer model(tiny_shape(2));
  const auto& names = model->names();
  ASSERT_EQ(names.size(), 2u + 2u * 12u + 2u + 2u);
  EXPECT_EQ(names.front(), "token_embedding");
  EXPECT_EQ(names[2], "layer_0_norm1_weight");
  EXPECT_EQ(names[14], "layer_1_norm1_weight");
  EXPECT_EQ(names.back(), "head_bias");
  EXPECT_EQ(model->groups().front(), ParamGroup::kEmbedding);
  EXPECT_EQ(model->groups().back(), ParamGroup::kHead);
  EXPECT_EQ(model->layer_of()[14], 1);
  EXPECT_EQ(model->layer_of()[names.size() - 3], -1);  // final norm

  double count = 0;
  for (const auto& p : model->params()) count += static_cast<double>(p.numel());
  EXPECT_EQ(count, ml::models::parameter_count(model->shape()));

  const TokenBatch batch = random_tokens(5, 4, 13);  // shorter than max_len
  const auto p = model->params();
  EXPECT_EQ(model->forward(batch, p).sizes(), (std::vector<std::int64_t>{5, 3}));
  EXPECT_EQ(model->represent(batch, p).sizes(), (std::vector<std::int64_t>{5, 8}));
  TokenBatch too_long = random_tokens(2, 7, 13);
  EXPECT_THROW(model->forward(too_long, p), ml::DataError);

  TransformerShape bad = tiny_shape(1);
  bad.heads = 3;
  EXPECT_THROW(Transformer{bad}, ml::ConfigError);
  bad = tiny_shape(1);
  bad.vocab_size = std::int64_t{1} << 40;
  EXPECT_THROW(Transformer{bad}, ml::ConfigError);
}

TEST(Transformer, TokenBatchFromEncodedTexts) {
  ml::features::EncodedTexts e;
  e.rows = 2;
  e.max_len = 3;
  e.ids = {5, 6, 0, 7, 0, 0};
  e.mask = {1, 1, 0, 1, 0, 0};
  const TokenBatch b = ml::models::token_batch(e);
  EXPECT_EQ(b.ids.sizes(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(b.mask.scalar_type(), torch::kBool);
  EXPECT_EQ(b.ids[1][0].item<std::int64_t>(), 7);
  EXPECT_EQ(b.mask.sum().item<std::int64_t>(), 3);
}

TEST(Transformer, PaddedPositionsChangeNothing) {
  torch::manual_seed(1);
  Transformer model(tiny_shape(2));
  const auto p = model->params();
  TokenBatch batch = random_tokens(6, 6, 13);
  ASSERT_LT(batch.mask.sum().item<std::int64_t>(), 36) << "the draw left no padding";
  torch::NoGradGuard no_grad;
  const Tensor out = model->forward(batch, p);

  TokenBatch changed = batch;
  changed.ids = batch.ids.clone();
  Tensor noise = torch::randint(1, 13, batch.ids.sizes(), torch::kInt64);
  changed.ids.masked_scatter_(batch.mask.logical_not(),
                              noise.masked_select(batch.mask.logical_not()));
  ASSERT_FALSE(torch::equal(changed.ids, batch.ids));
  EXPECT_TRUE(torch::equal(model->forward(changed, p), out));

  // A real token does matter (so the comparison above can fail).
  TokenBatch real = batch;
  real.ids = batch.ids.clone();
  real.ids[0][0] = (batch.ids[0][0].item<std::int64_t>() % 12) + 1;
  EXPECT_FALSE(torch::allclose(model->forward(real, p)[0], out[0]));

  // A row of padding only pools to zeros: the head's bias, no NaN.
  TokenBatch empty = batch;
  empty.mask = batch.mask.clone();
  empty.mask[2].fill_(false);
  const Tensor empty_out = model->forward(empty, p);
  EXPECT_TRUE(torch::allclose(empty_out[2], p.back()));
  EXPECT_TRUE(torch::equal(empty_out[1], out[1]));
}

TEST(Transformer, StackedForwardEqualsPerTaskForward) {
  torch::manual_seed(2);
  Transformer model(tiny_shape(2));
  model->to(torch::kFloat64);
  const auto base = ml::testing::detached_clones(model->params());
  const std::int64_t T = 3, n = 4, L = 5;
  // Per-task copies (perturbed, so a mix-up between tasks shows) of the token table, a norm
  // gain, an attention weight and bias, and the head; the rest shared.
  const std::vector<std::size_t> per_task = {0, 1, 2, 4, 5, 9, base.size() - 2, base.size() - 1};
  std::vector<Tensor> stacked = base;
  for (std::size_t i : per_task) {
    std::vector<std::int64_t> shape = base[i].sizes().vec();
    shape.insert(shape.begin(), T);
    stacked[i] = base[i].unsqueeze(0).expand(shape) + 0.1 * torch::randn(shape, torch::kFloat64);
  }
  TokenBatch stack{torch::empty({T, n, L}, torch::kInt64), torch::empty({T, n, L}, torch::kBool)};
  std::vector<TokenBatch> tasks;
  for (std::int64_t t = 0; t < T; ++t) {
    tasks.push_back(random_tokens(n, L, 13));
    stack.ids[t] = tasks.back().ids;
    stack.mask[t] = tasks.back().mask;
  }
  torch::NoGradGuard no_grad;
  const Tensor out = model->forward_stacked(stack, stacked);
  ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{T, n, 3}));
  const Tensor rep = model->represent_stacked(stack, stacked);
  for (std::int64_t t = 0; t < T; ++t) {
    std::vector<Tensor> own = base;
    for (std::size_t i : per_task) own[i] = stacked[i][t];
    const auto& task = tasks[static_cast<std::size_t>(t)];
    EXPECT_TRUE(torch::allclose(out[t], model->forward(task, own), 1e-12, 1e-12)) << "task " << t;
    EXPECT_TRUE(torch::allclose(rep[t], model->represent(task, own), 1e-12, 1e-12));
  }
  // Shared parameters alone give every task the plain forward.
  const Tensor shared = model->forward_stacked(stack, base);
  EXPECT_TRUE(torch::allclose(shared[1], model->forward(tasks[1], base), 1e-12, 1e-12));
}

// A stack of T tasks' random tokens.
TokenBatch random_stack(std::int64_t T, std::int64_t n, std::int64_t L, std::int64_t vocab) {
  TokenBatch stack{torch::empty({T, n, L}, torch::kInt64), torch::empty({T, n, L}, torch::kBool)};
  for (std::int64_t t = 0; t < T; ++t) {
    const TokenBatch task = random_tokens(n, L, vocab);
    stack.ids[t] = task.ids;
    stack.mask[t] = task.mask;
  }
  return stack;
}

TEST(Transformer, StackedPrefixResumesToTheSameOutputsAndGradients) {
  torch::manual_seed(6);
  Transformer model(tiny_shape(2));
  model->to(torch::kFloat64);
  const auto& names = model->names();
  const auto index_of = [&](const std::string& name) {
    return static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
  };
  const std::int64_t T = 3;
  const TokenBatch tokens = random_stack(T, 4, 5, 13);
  ml::models::StackedBatch batch;
  batch.tokens = tokens.ids;
  batch.mask = tokens.mask;
  // first adapted parameter -> the encoder layers below it (0: no prefix).
  const std::pair<std::string, std::int64_t> cases[] = {
      {"token_embedding", 0},  {"layer_0_norm1_weight", 0}, {"layer_1_norm1_weight", 1},
      {"layer_1_ff2_bias", 1}, {"final_norm_weight", 2},    {"head_weight", 2}};
  for (const auto& [name, frozen] : cases) {
    const std::size_t first = index_of(name);
    ASSERT_LT(first, names.size()) << name;
    // As the inner loop holds them: per-task copies from `first` on, shared leaves below.
    std::vector<Tensor> shared, p;
    for (std::size_t i = 0; i < names.size(); ++i) {
      shared.push_back(model->params()[i].detach().clone().requires_grad_(true));
      if (i < first) {
        p.push_back(shared.back());
      } else {
        std::vector<std::int64_t> shape = shared.back().sizes().vec();
        shape.insert(shape.begin(), T);
        p.push_back(shared.back().unsqueeze(0).expand(shape) +
                    0.1 * torch::randn(shape, torch::kFloat64));
      }
    }
    const ml::models::StackedPrefix prefix = model->stacked_prefix(batch, p, first);
    ASSERT_EQ(prefix.defined(), frozen > 0) << name;
    if (!prefix.defined()) continue;
    EXPECT_EQ(prefix.resume_at, frozen) << name;
    const Tensor direct = model->forward_stacked(batch, p);
    const Tensor resumed = model->forward_stacked_from(prefix, batch, p);
    EXPECT_TRUE(torch::allclose(resumed, direct, 1e-12, 1e-12)) << name;
    // The frozen layers' meta-gradient flows back through the prefix as through the full pass.
    const Tensor weights = torch::randn(direct.sizes(), torch::kFloat64);
    const auto g_direct = torch::autograd::grad({(direct * weights).sum()}, shared);
    const auto g_resumed = torch::autograd::grad({(resumed * weights).sum()}, shared);
    for (std::size_t i = 0; i < shared.size(); ++i)
      EXPECT_TRUE(torch::allclose(g_resumed[i], g_direct[i], 1e-10, 1e-12))
          << name << ": " << names[i];
  }
}

TEST(Transformer, FusedAndComposedGeluComputeTheSameFunctionAndGradient) {
  // Leaf parameters take torch's fused GELU; parameters autograd tracks back (an adapted copy
  // in second-order MAML) take the composed erf formula. Both must agree.
  torch::manual_seed(8);
  Transformer model(tiny_shape(2));
  model->to(torch::kFloat64);
  const TokenBatch tokens = random_tokens(6, 5, 13);
  std::vector<Tensor> leaves, tracked;
  for (const auto& p : model->params()) {
    leaves.push_back(p.detach().clone().requires_grad_(true));
    tracked.push_back(leaves.back() * 1.0);
  }
  const Tensor fused = model->forward(tokens, leaves);
  const Tensor composed = model->forward(tokens, tracked);
  ASSERT_TRUE(tracked[0].grad_fn() != nullptr);
  EXPECT_TRUE(torch::allclose(fused, composed, 1e-12, 1e-12));
  const Tensor weights = torch::randn(fused.sizes(), torch::kFloat64);
  const auto g_fused = torch::autograd::grad({(fused * weights).sum()}, leaves);
  const auto g_composed = torch::autograd::grad({(composed * weights).sum()}, leaves);
  for (std::size_t i = 0; i < leaves.size(); ++i)
    EXPECT_TRUE(torch::allclose(g_fused[i], g_composed[i], 1e-10, 1e-12)) << model->names()[i];
}

TEST(Transformer, AdaptMasksPickTheHeadOrChosenLayers) {
  Transformer model(tiny_shape(3));
  const auto& names = model->names();
  const auto head = ml::models::adapt_mask(*model, ml::config::InnerParams::kHead);
  const auto dense = ml::models::adapt_mask(*model, ml::config::InnerParams::kDense);
  const auto top = ml::models::layer_adapt_mask(*model, {-1});
  const auto first_and_top = ml::models::layer_adapt_mask(*model, {0, 2});
  for (std::size_t i = 0; i < names.size(); ++i) {
    const bool is_head = names[i].rfind("head_", 0) == 0;
    const int layer = model->layer_of()[i];
    EXPECT_EQ(head[i], is_head) << names[i];
    EXPECT_EQ(dense[i], names[i].find("embedding") == std::string::npos) << names[i];
    EXPECT_EQ(top[i], is_head || layer == 2) << names[i];
    EXPECT_EQ(first_and_top[i], is_head || layer == 0 || layer == 2) << names[i];
  }
  EXPECT_THROW(ml::models::layer_adapt_mask(*model, {3}), ml::ConfigError);
  EXPECT_THROW(ml::models::layer_adapt_mask(*model, {-4}), ml::ConfigError);
}

// `steps` SGD steps on the support loss from `params` (the parameters with mask true adapt).
std::vector<Tensor> inner_loop(const ml::models::TransformerImpl& model, std::vector<Tensor> fast,
                               const std::vector<bool>& mask, const TokenBatch& support,
                               const Tensor& target, int steps, double lr, bool create_graph) {
  for (int s = 0; s < steps; ++s) {
    Tensor loss =
        ml::models::task_loss(model.forward(support, fast), target, LabelKind::kMulticlass);
    std::vector<Tensor> inputs;
    for (std::size_t i = 0; i < fast.size(); ++i)
      if (mask[i]) inputs.push_back(fast[i]);
    auto grads = torch::autograd::grad({loss}, inputs, {}, create_graph, create_graph, true);
    std::size_t k = 0;
    for (std::size_t i = 0; i < fast.size(); ++i)
      if (mask[i]) {
        if (grads[k].defined()) fast[i] = fast[i] - lr * grads[k];
        ++k;
      }
  }
  return fast;
}

// The second-order MAML meta-gradient (Finn et al. 2017) of the query loss after two inner
// steps, against central differences of that loss as a plain function of the initial weights.
void check_meta_gradient(const std::vector<bool>& mask, std::int64_t layers, std::uint64_t seed) {
  torch::manual_seed(seed);
  Transformer model(tiny_shape(layers));
  model->to(torch::kFloat64);
  const TokenBatch support = random_tokens(6, 5, 13), query = random_tokens(7, 5, 13);
  const Tensor ys = torch::randint(0, 3, {6}, torch::kInt64);
  const Tensor yq = torch::randint(0, 3, {7}, torch::kInt64);
  const int steps = 2;
  const double lr = 0.5;
  const std::vector<bool> adapt =
      mask.empty() ? std::vector<bool>(model->names().size(), true) : mask;

  std::vector<Tensor> theta;
  for (const auto& p : model->params()) theta.push_back(p.detach().clone().requires_grad_(true));
  auto fast = inner_loop(*model, theta, adapt, support, ys, steps, lr, /*create_graph=*/true);
  Tensor lq = ml::models::task_loss(model->forward(query, fast), yq, LabelKind::kMulticlass);
  const auto analytic = torch::autograd::grad({lq}, theta, {}, false, false, true);

  auto query_loss = [&](const std::vector<Tensor>& start) {
    std::vector<Tensor> leaves;
    for (const auto& p : start) leaves.push_back(p.clone().requires_grad_(true));
    auto adapted = inner_loop(*model, leaves, adapt, support, ys, steps, lr, false);
    torch::NoGradGuard no_grad;
    return ml::models::task_loss(model->forward(query, adapted), yq, LabelKind::kMulticlass)
        .item<double>();
  };
  // Every parameter tensor, a few entries each (the token table: rows the batches use).
  const auto compared = ml::testing::expect_finite_differences(
      ml::testing::detached_clones(model->params()), query_loss, analytic, model->names(), 5);
  const auto checked = compared.size();
  double largest = 0;
  for (const auto& [i, numeric] : compared) largest = std::max(largest, std::abs(numeric));
  EXPECT_GT(checked, 50u);
  EXPECT_GT(largest, 1e-3);  // the check compared real gradients, not zeros
}

TEST(TransformerMetaGradient, SecondOrderMatchesFiniteDifferences) {
  check_meta_gradient({}, 1, 3);
}

TEST(TransformerMetaGradient, SecondOrderMatchesFiniteDifferencesAdaptingTheTopLayer) {
  torch::manual_seed(4);
  Transformer shape_only(tiny_shape(2));
  check_meta_gradient(ml::models::layer_adapt_mask(*shape_only, {-1}), 2, 4);
}

}  // namespace
