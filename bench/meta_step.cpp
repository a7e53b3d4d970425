// Meta-training throughput and adaptation latency, in process, on the workloads:
//   W1  mlp 32-128-64-1, meta-batch 16, support 10, query 40, 5 inner steps (the Python
//       reference's defaults)
//   W2  embedding_mlp, 2 hashed id fields of 2^18 x 32, 32 dense features, 256-128 tower,
//       meta-batch 32, support 20, query 100, 5 inner steps
//   W3  the transformer on BANKING77 episodes as configs/w3.json describes them (issue 12):
//       real token ids of the training intents, 5-way 5-shot, 15 queries per class
// Each line is one JSON object on stdout: meta-iterations/s of the stacked implementation and
// of the per-task reference, a matmul reference rate, and one-task adaptation latency.
// Usage: metalearn_bench_meta [--seconds S] [--workload W1|W2|W3|all] [--algorithms a,b,...]
//                              [--reference] [--profile FILE] [--threads N] [--meta-batch T]
//                              [--w3-config FILE] [--export-w3 FILE] [--adapt-reps R]
//                              [--sequential-chunks N] [--chunks N] [--device cpu|cuda|cuda:N]
// --reference also times the per-task reference loop (W1 only). --threads N cuts each
// meta-batch into N chunks computed by N single-threaded workers (scripts/bench_threads.sh);
// --meta-batch replaces the workload's meta-batch size; --adapt-reps the 200 one-task
// adaptations timed for the latency figures; --sequential-chunks N computes each meta-batch in
// N chunks one after another on this thread (a smaller stack against the cache); --chunks N cuts
// each meta-batch into N chunks for the --threads workers to claim (default: one per worker).
// --device runs the model and the task pool on a GPU (scripts/gpu_check.sh); the matmul
// reference rate is then the GPU's.
// W1 and W2 data are random tensors drawn once (a pool of 64 tasks), so only the meta-step is
// timed; W3's pool is 64 training episodes of --w3-config (default configs/w3.json), encoded
// once. "all" is W1 and W2. --export-w3 FILE writes, for the Python peers
// (scripts/peers/w3_transformer.py), what W3 measures on: the initial parameters, the pool's
// token ids, masks and labels, the shape and inner-loop settings, and our meta-gradient of the
// first meta-batch for each algorithm, as one torch.save-compatible dict (torch::pickle_save),
// then exits without timing.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "meta/meta_learner.hpp"
#include "models/batched_matmul.hpp"
#include "models/transformer.hpp"
#include "pipeline/text_run_data.hpp"
#include "run/learner_state.hpp"
#include "runtime/blas_core.hpp"
#include "runtime/device.hpp"
#include "runtime/worker_pool.hpp"
#include "train/outer_optimizer.hpp"

namespace {

using ml::meta::MetaLearner;
using ml::meta::TaskBatch;
using Clock = std::chrono::steady_clock;

struct Workload {
  std::string name;
  ml::models::ModelShape shape;
  int meta_batch, support, query, inner_steps;
  double inner_lr;
};

Workload workload(const std::string& name) {
  Workload w;
  w.name = name;
  w.inner_steps = 5;
  if (name == "W1") {
    w.shape.dense_dim = 32;
    w.shape.hidden = {128, 64};
    w.meta_batch = 16, w.support = 10, w.query = 40, w.inner_lr = 0.3;
  } else {
    w.shape.type = ml::config::ModelType::kEmbeddingMlp;
    w.shape.dense_dim = 32;
    w.shape.hidden = {256, 128};
    w.shape.embedding_dim = 32;
    w.shape.id_cardinalities = {1 << 18, 1 << 18};
    w.meta_batch = 32, w.support = 20, w.query = 100, w.inner_lr = 0.1;
  }
  return w;
}

ml::models::Batch random_batch(const Workload& w, int n) {
  ml::models::Batch b;
  b.dense = torch::randn({n, w.shape.dense_dim});
  std::vector<torch::Tensor> ids;
  for (auto rows : w.shape.id_cardinalities) ids.push_back(torch::randint(rows, {n, 1}));
  b.ids = ids.empty() ? torch::zeros({n, 0}, torch::kInt64) : torch::cat(ids, 1);
  b.target = (torch::rand({n}) > 0.5).to(torch::kFloat32);
  return b;
}

// The device the run is timed on: the clock stops only after its queued work has run.
torch::Device timed_device = torch::kCPU;

// W3: a text run's config, its data and a pool of 64 of its training episodes, encoded once.
struct TextWorkload {
  ml::config::Config config;
  std::unique_ptr<ml::pipeline::TextRunData> data;
  std::vector<TaskBatch> pool;
};

TextWorkload text_workload(const std::string& path) {
  TextWorkload w{ml::config::load_config(path), nullptr, {}};
  w.data = ml::pipeline::prepare_text_run_data(w.config);
  const auto& sampler = w.data->sampler(ml::tasks::ClassSplitPart::kTrain);
  for (std::uint64_t i = 0; i < 64; ++i)
    w.pool.push_back(ml::pipeline::make_text_task_batch(*w.data, sampler.sample(i), timed_device));
  return w;
}

// The learner `metalearn train` builds for the config with `algorithm` (seeded by the config:
// every algorithm starts from the same weights).
std::unique_ptr<MetaLearner> text_learner(const TextWorkload& w, ml::config::Algorithm algorithm) {
  ml::config::Config config = w.config;
  config.meta.algorithm = algorithm;
  return ml::run::build_text_learner(config, *w.data, timed_device);
}

// The Python peers' input (--export-w3): see the file's opening comment.
void export_text_workload(const TextWorkload& w, const std::vector<std::string>& algorithms,
                          int meta_batch, const std::string& path) {
  c10::impl::GenericDict out(c10::StringType::get(), c10::AnyType::get());
  const auto stack = [&](torch::Tensor ml::models::Batch::*field, bool support) {
    std::vector<torch::Tensor> parts;
    for (const auto& t : w.pool) parts.push_back((support ? t.support : t.query).*field);
    return torch::stack(parts).cpu();
  };
  for (const bool support : {true, false}) {
    const std::string side = support ? "support_" : "query_";
    out.insert(side + "ids", stack(&ml::models::Batch::tokens, support));
    out.insert(side + "mask", stack(&ml::models::Batch::mask, support));
    out.insert(side + "target", stack(&ml::models::Batch::target, support));
  }
  const auto first = text_learner(w, ml::config::Algorithm::kMaml);
  const auto& model = dynamic_cast<const ml::models::TransformerImpl&>(*first->model());
  c10::List<std::string> names;
  c10::List<torch::Tensor> params;
  for (std::size_t i = 0; i < model.names().size(); ++i) {
    names.push_back(model.names()[i]);
    params.push_back(model.params()[i].detach().cpu().clone());
  }
  out.insert("names", names);
  out.insert("params", params);
  const std::vector<bool> adapted = ml::models::layer_adapt_mask(model, w.config.meta.inner_layers);
  c10::List<bool> inner_mask;
  for (const bool a : adapted) inner_mask.push_back(a);
  out.insert("inner_mask", inner_mask);
  out.insert("heads", model.shape().heads);
  out.insert("meta_batch", static_cast<std::int64_t>(meta_batch));
  out.insert("inner_steps", static_cast<std::int64_t>(w.config.meta.inner_steps));
  out.insert("inner_lr", w.config.meta.inner_lr);
  out.insert("outer_lr", w.config.meta.outer_lr);
  const std::vector<TaskBatch> batch(w.pool.begin(), w.pool.begin() + meta_batch);
  c10::impl::GenericDict grads(c10::StringType::get(), c10::AnyType::get());
  c10::impl::GenericDict losses(c10::StringType::get(), c10::FloatType::get());
  for (const auto& algorithm : algorithms) {
    auto learner = text_learner(w, *ml::enum_from_name<ml::config::Algorithm>(algorithm));
    losses.insert(algorithm, learner->accumulate_meta_gradient(batch));
    c10::List<torch::Tensor> g;
    for (const auto& p : learner->model()->params())
      g.push_back(p.grad().defined() ? p.grad().cpu().clone() : torch::zeros_like(p).cpu());
    grads.insert(algorithm, g);
  }
  out.insert("grads", grads);
  out.insert("losses", losses);
  const std::vector<char> bytes = torch::pickle_save(out);
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

double seconds_since(Clock::time_point t) {
  if (timed_device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Meta-steps (gradient and outer update) over meta-batches drawn from a pool in turn.
class MetaStepper {
 public:
  MetaStepper(MetaLearner& learner, const std::vector<TaskBatch>& pool, int meta_batch,
              bool reference)
      : learner_(learner),
        pool_(pool),
        meta_batch_(meta_batch),
        reference_(reference),
        optimizer_(outer_config(), learner.meta_parameters(), row_sparse(learner, reference)) {}

  void step() {
    std::vector<TaskBatch> tasks;
    for (int i = 0; i < meta_batch_; ++i) tasks.push_back(pool_[next_++ % pool_.size()]);
    optimizer_.zero_grad();
    if (reference_) {
      learner_.accumulate_meta_gradient_per_task(tasks);
      optimizer_.step({});
    } else {
      learner_.accumulate_meta_gradient(tasks);
      optimizer_.step(learner_.row_sparse_gradients());
    }
  }

 private:
  // The trainer's outer optimiser (Adam, 1e-3).
  static ml::config::MetaConfig outer_config() {
    ml::config::MetaConfig outer;
    outer.outer_lr = 1e-3;
    return outer;
  }
  // The per-task reference fills dense .grad(), so it gets plain dense Adam everywhere.
  static std::vector<bool> row_sparse(const MetaLearner& learner, bool reference) {
    std::vector<bool> sparse = learner.row_sparse_parameters();
    if (reference) sparse.assign(sparse.size(), false);
    return sparse;
  }

  MetaLearner& learner_;
  const std::vector<TaskBatch>& pool_;
  int meta_batch_;
  bool reference_;
  ml::train::OuterOptimizer optimizer_;
  std::size_t next_ = 0;
};

// Meta-iterations per second over about `budget` seconds (after a short warm-up).
double iterations_per_second(MetaLearner& learner, const std::vector<TaskBatch>& pool,
                             int meta_batch, bool reference, double budget) {
  MetaStepper stepper(learner, pool, meta_batch, reference);
  for (int i = 0; i < 3; ++i) stepper.step();
  int done = 0;
  auto start = Clock::now();
  while (seconds_since(start) < budget) {
    stepper.step();
    ++done;
  }
  return done / seconds_since(start);
}

// Self time per (operator, input shapes) over one profiled run, the largest first, on stderr:
// where the remaining time goes, finer than the Chrome trace's operator names.
void print_op_table(const torch::autograd::profiler::thread_event_lists& threads, int iterations) {
  using torch::autograd::profiler::EventKind;
  std::map<std::string, std::pair<double, int>> self;  // key -> (microseconds, calls)
  double total = 0;
  for (const auto& events : threads) {
    struct Open {
      const torch::autograd::profiler::LegacyEvent* event;
      double children;
    };
    std::vector<Open> stack;
    for (const auto& e : events) {
      if (e.kind() == EventKind::PushRange) {
        stack.push_back({&e, 0.0});
      } else if (e.kind() == EventKind::PopRange && !stack.empty()) {
        Open open = stack.back();
        stack.pop_back();
        const double inclusive = open.event->cpuElapsedUs(e);
        std::string key = open.event->name();
        for (const auto& shape : open.event->shapes()) {
          key += " [";
          for (std::size_t d = 0; d < shape.size(); ++d)
            key += (d ? "," : "") + std::to_string(shape[d]);
          key += "]";
        }
        auto& entry = self[key];
        entry.first += inclusive - open.children;
        entry.second += 1;
        total += inclusive - open.children;
        if (!stack.empty()) stack.back().children += inclusive;
      }
    }
  }
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [key, value] : self) rows.push_back({value.first, key});
  std::sort(rows.rbegin(), rows.rend());
  std::fprintf(stderr, "self time per meta-iteration (%d profiled):\n", iterations);
  for (std::size_t i = 0; i < std::min<std::size_t>(rows.size(), 60); ++i)
    std::fprintf(stderr, "%6.1f%% %8.1f us %6.1f calls  %s\n", 100 * rows[i].first / total,
                 rows[i].first / iterations, self[rows[i].second].second / double(iterations),
                 rows[i].second.c_str());
}

// Float32 GFLOP/s of a 1024^2 matrix product: the machine's arithmetic reference.
double matmul_gflops() {
  torch::Tensor a = torch::randn({1024, 1024}, timed_device),
                b = torch::randn({1024, 1024}, timed_device);
  a.mm(b);
  int n = 0;
  auto start = Clock::now();
  while (seconds_since(start) < 1.0) {
    a.mm(b);
    ++n;
  }
  return 2.0 * 1024 * 1024 * 1024 * n / seconds_since(start) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  ml::runtime::choose_blas_core();
  double budget = 3.0;
  std::vector<std::string> workloads = {"W1", "W2"};
  std::vector<std::string> algorithms = {"maml", "fomaml", "reptile", "anil"};
  bool reference = false;
  std::string profile;
  bool op_table = false;
  int meta_batch = 0;
  int threads = 1;
  std::string w3_config = "configs/w3.json", export_w3;
  bool algorithms_given = false;
  int adapt_reps = 200;
  int sequential_chunks = 0;
  int chunks = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--seconds")
      budget = std::stod(value());
    else if (a == "--workload") {
      std::string w = value();
      if (w != "all") workloads = {w};
    } else if (a == "--algorithms") {
      algorithms.clear();
      algorithms_given = true;
      std::string list = value();
      for (std::size_t start = 0, end; start <= list.size(); start = end + 1) {
        end = std::min(list.find(',', start), list.size());
        algorithms.push_back(list.substr(start, end - start));
      }
    } else if (a == "--reference")
      reference = true;
    else if (a == "--profile")
      profile = value();
    else if (a == "--threads")
      threads = std::stoi(value());
    else if (a == "--meta-batch")
      meta_batch = std::stoi(value());
    else if (a == "--op-table")
      op_table = true;
    else if (a == "--w3-config")
      w3_config = value();
    else if (a == "--export-w3")
      export_w3 = value();
    else if (a == "--device")
      timed_device = torch::Device(value());
    else if (a == "--sequential-chunks")
      sequential_chunks = std::stoi(value());
    else if (a == "--chunks")
      chunks = std::stoi(value());
    else if (a == "--adapt-reps")
      adapt_reps = std::max(1, std::stoi(value()));
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  for (const auto& algorithm : algorithms)
    if (!ml::enum_from_name<ml::config::Algorithm>(algorithm)) {
      std::fprintf(stderr, "unknown algorithm '%s'\n", algorithm.c_str());
      return 2;
    }
  ml::runtime::configure_compute(1);
  ml::runtime::WorkerPool workers(threads);
  if (export_w3.empty())
    std::printf("%s\n",
                nlohmann::json{{"matmul_1024_gflops", matmul_gflops()},
                               {"batched_gemm_calls_blas", ml::models::batched_matmul_uses_blas()}}
                    .dump()
                    .c_str());
  for (const auto& name : workloads) {
    Workload w;
    std::vector<TaskBatch> pool;
    std::optional<TextWorkload> text;
    if (name == "W3") {
      text = text_workload(w3_config);
      w.meta_batch = text->config.meta.meta_batch;
      if (!algorithms_given) algorithms = {"maml", "fomaml", "protonet"};
    } else {
      w = workload(name);
      torch::manual_seed(0);
      for (int i = 0; i < 64; ++i)
        pool.push_back({random_batch(w, w.support).to(timed_device),
                        random_batch(w, w.query).to(timed_device)});
    }
    if (meta_batch > 0) w.meta_batch = meta_batch;
    if (text) {
      if (!export_w3.empty()) {
        export_text_workload(*text, algorithms, w.meta_batch, export_w3);
        continue;
      }
      pool = text->pool;
    }
    for (const auto& algorithm : algorithms) {
      const auto parsed = ml::enum_from_name<ml::config::Algorithm>(algorithm);
      if (!parsed) {
        std::fprintf(stderr, "unknown algorithm '%s'\n", algorithm.c_str());
        return 2;
      }
      std::unique_ptr<MetaLearner> owned;
      if (text) {
        owned = text_learner(*text, *parsed);
      } else {
        ml::config::MetaConfig config;
        config.algorithm = *parsed;
        config.inner_steps = w.inner_steps;
        config.inner_lr = w.inner_lr;
        ml::models::FunctionalModel model(w.shape);
        model->to(timed_device);
        owned = std::make_unique<MetaLearner>(config, ml::tasks::LabelKind::kBinary, model);
      }
      MetaLearner& learner = *owned;
      learner.set_task_chunks(static_cast<std::size_t>(chunks > 0 ? chunks : threads), &workers);
      if (sequential_chunks > 0)
        learner.set_task_chunks(static_cast<std::size_t>(sequential_chunks), nullptr);
      nlohmann::json line{{"workload", name},
                          {"algorithm", algorithm},
                          {"device", timed_device.str()},
                          {"meta_batch", w.meta_batch}};
      if (!profile.empty()) {
        torch::autograd::profiler::RecordProfile guard(profile + "." + name + "." + algorithm +
                                                       ".json");
        iterations_per_second(learner, pool, w.meta_batch, false, budget);
      }
      if (op_table) {
        constexpr int kProfiled = 50;
        torch::autograd::profiler::TLSLegacyProfilerGuard guard(
            torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU,
                                                  /*report_input_shapes=*/true),
            [&](const torch::autograd::profiler::thread_event_lists& threads) {
              print_op_table(threads, kProfiled);
            });
        MetaStepper stepper(learner, pool, w.meta_batch, false);
        for (int i = 0; i < kProfiled; ++i) stepper.step();
      }
      line["stacked_it_per_s"] = iterations_per_second(learner, pool, w.meta_batch, false, budget);
      // The per-task loop copies whole embedding tables per task: on W2 one of its
      // meta-iterations takes up to half a minute, so it is measured on W1 only.
      if (reference && name == "W1")
        line["per_task_it_per_s"] =
            iterations_per_second(learner, pool, w.meta_batch, true, budget);
      // One new task: K = support, 5 steps, as `adapt` runs it.
      std::vector<double> ms;
      for (int i = 0; i < adapt_reps; ++i) {
        const auto& t = pool[static_cast<std::size_t>(i) % pool.size()];
        auto start = Clock::now();
        auto out = learner.adapted_outputs(t.support, t.query, 5);
        ms.push_back(seconds_since(start) * 1e3);
      }
      std::sort(ms.begin(), ms.end());
      line["adapt_ms_median"] = ms[ms.size() / 2];
      line["adapt_ms_p99"] = ms[ms.size() * 99 / 100];
      std::printf("%s\n", line.dump().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
