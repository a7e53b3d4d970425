// Tests of spreading work over threads: the thread plan on its inputs (budget, units, product
// size), the cores a process may use, the worker pool's contract, and meta-gradients and
// training runs that depend on how a meta-batch is cut into chunks, never on the threads that
// compute the chunks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sched.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include "meta/meta_learner.hpp"
#include "models/model.hpp"
#include "run/checkpoint.hpp"
#include "run/learner_state.hpp"
#include "run/training_progress.hpp"
#include "runtime/device.hpp"
#include "runtime/thread_plan.hpp"
#include "runtime/worker_pool.hpp"
#include "test_support.hpp"
#include "train/trainer.hpp"

namespace {

using ml::meta::MetaLearner;
using ml::meta::TaskBatch;
using ml::runtime::ThreadBudget;
using ml::runtime::ThreadPlan;
using ml::runtime::WorkShape;
using ml::tasks::LabelKind;
using torch::Tensor;

WorkShape work(int units, double largest_product) {
  WorkShape w;
  w.units = units;
  w.largest_product = largest_product;
  return w;
}

ThreadBudget budget(int threads) {
  return {threads, "test", false};
}

TEST(ThreadPlan, WorkersUpToTheUnitsAndIntraOpThreadsOnlyForALoneLargeProduct) {
  const double small = 50.0 * 32 * 128;  // W1: a task's rows through its widest layer
  const double large = ml::runtime::kIntraOpMinMultiplyAdds;
  auto plan = [](int threads, int units, double product) {
    const ThreadPlan p = ml::runtime::plan_threads(budget(threads), work(units, product));
    return std::make_pair(p.workers, p.intra_op);
  };
  EXPECT_EQ(plan(1, 16, large), std::make_pair(1, 1));
  EXPECT_EQ(plan(4, 16, small), std::make_pair(4, 1));
  EXPECT_EQ(plan(4, 16, large), std::make_pair(4, 1));
  EXPECT_EQ(plan(4, 2, small), std::make_pair(2, 1));
  EXPECT_EQ(plan(4, 1, small), std::make_pair(1, 1));
  EXPECT_EQ(plan(4, 1, large - 1), std::make_pair(1, 1));
  EXPECT_EQ(plan(4, 1, large), std::make_pair(1, 4));
  EXPECT_EQ(plan(8, 3, large), std::make_pair(3, 1));  // never workers and teams at once
  for (int threads = 1; threads <= 9; ++threads)
    for (int units = 1; units <= 20; ++units)
      for (double product : {0.0, small, large}) {
        const auto [workers, intra] = plan(threads, units, product);
        EXPECT_LE(workers * intra, threads);
        EXPECT_LE(workers, units);
        EXPECT_TRUE(workers == 1 || intra == 1);
      }
  const ThreadPlan p =
      ml::runtime::plan_threads({2, "2 usable cores (all cores)", true}, work(16, small));
  EXPECT_EQ(p.describe("meta-batch's tasks"),
            "2 workers over the meta-batch's tasks, 1 thread each (budget 2: 2 usable cores (all "
            "cores))");
}

TEST(ThreadPlan, CgroupQuotasRoundToWholeCores) {
  using ml::runtime::quota_cores_from_cfs;
  using ml::runtime::quota_cores_from_cpu_max;
  EXPECT_EQ(quota_cores_from_cpu_max("max 100000"), 0);
  EXPECT_EQ(quota_cores_from_cpu_max("200000 100000"), 2);
  EXPECT_EQ(quota_cores_from_cpu_max("150000 100000"), 2);
  EXPECT_EQ(quota_cores_from_cpu_max("120000 100000"), 1);
  EXPECT_EQ(quota_cores_from_cpu_max("20000 100000"), 1);  // a fifth of a core is still one
  EXPECT_EQ(quota_cores_from_cpu_max(""), 0);
  EXPECT_EQ(quota_cores_from_cpu_max("max"), 0);
  EXPECT_EQ(quota_cores_from_cfs("-1", "100000"), 0);
  EXPECT_EQ(quota_cores_from_cfs("300000", "100000"), 3);
  EXPECT_EQ(quota_cores_from_cfs("", ""), 0);
}

TEST(ThreadPlan, UsableCoresFollowTheAffinityMask) {
  cpu_set_t saved;
  ASSERT_EQ(sched_getaffinity(0, sizeof(saved), &saved), 0);
  const ThreadBudget all = ml::runtime::usable_cores();
  EXPECT_TRUE(all.automatic);
  EXPECT_GE(all.threads, 1);
  EXPECT_LE(all.threads, CPU_COUNT(&saved));
  int first = 0;
  while (!CPU_ISSET(first, &saved)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  const ThreadBudget pinned = ml::runtime::usable_cores();
  ASSERT_EQ(sched_setaffinity(0, sizeof(saved), &saved), 0);
  EXPECT_EQ(pinned.threads, 1);
  if (CPU_COUNT(&saved) > 1 && all.threads > 1) {
    EXPECT_NE(pinned.source.find("affinity"), std::string::npos) << pinned.source;
  }
}

TEST(WorkerPool, RunsEveryUnitOnceOnSeveralThreadsRunAfterRun) {
  ml::runtime::WorkerPool pool(3);
  EXPECT_EQ(pool.workers(), 3);
  for (int run = 0; run < 3; ++run) {
    std::vector<std::atomic<int>> calls(50);
    std::mutex mutex;
    std::set<std::thread::id> threads;
    auto distinct = [&] {
      const std::lock_guard<std::mutex> lock(mutex);
      return threads.size();
    };
    pool.run(calls.size(), [&](std::size_t i) {
      ++calls[i];
      {
        const std::lock_guard<std::mutex> lock(mutex);
        threads.insert(std::this_thread::get_id());
      }
      // Unit 0 holds its thread (up to 10 s) until another thread has taken a unit: the units
      // really are spread, whoever takes which.
      if (i == 0)
        for (int w = 0; w < 10000 && distinct() < 2; ++w)
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    for (const auto& c : calls) EXPECT_EQ(c.load(), 1);
    EXPECT_GE(threads.size(), 2u);
    EXPECT_LE(threads.size(), 3u);
  }
  pool.run(0, [](std::size_t) { FAIL() << "no unit to run"; });
}

TEST(WorkerPool, RethrowsTheLowestFailingUnitAndStartsNoMore) {
  for (int workers : {1, 2, 4}) {
    ml::runtime::WorkerPool pool(workers);
    std::atomic<int> started{0};
    try {
      pool.run(1000, [&](std::size_t i) {
        ++started;
        if (i == 7 || i == 9) throw std::runtime_error("unit " + std::to_string(i));
      });
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "unit 7") << workers << " workers";
    }
    EXPECT_LT(started.load(), 1000) << workers << " workers";
  }
}

TEST(WorkerPool, WorkersRunWithTheCallersGradMode) {
  ml::runtime::WorkerPool pool(3);
  for (bool grad : {false, true}) {
    std::optional<torch::NoGradGuard> guard;
    if (!grad) guard.emplace();
    std::vector<int> enabled(40, -1);
    pool.run(enabled.size(), [&](std::size_t i) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      enabled[i] = torch::GradMode::is_enabled() ? 1 : 0;
    });
    for (int e : enabled) EXPECT_EQ(e, grad ? 1 : 0);
  }
}

// --- meta-gradients by chunks -----------------------------------------------------------------

struct Family {
  ml::models::ModelShape shape;
  std::string inner_params = "all";
};

TaskBatch random_task(std::int64_t support, std::int64_t query, const Family& f) {
  auto batch = [&](std::int64_t n) {
    ml::models::Batch b;
    b.dense = torch::randn({n, f.shape.dense_dim});
    std::vector<Tensor> ids;
    for (auto rows : f.shape.id_cardinalities) ids.push_back(torch::randint(rows, {n, 1}));
    b.ids = ids.empty() ? torch::zeros({n, 0}, torch::kInt64) : torch::cat(ids, 1);
    b.target = (torch::rand({n}) > 0.5).to(torch::kFloat32);
    return b;
  };
  return {batch(support), batch(query)};
}

struct Gradient {
  double loss = 0;
  std::vector<Tensor> dense;  // every meta-parameter, the row-sparse ones scattered onto zeros
};

Gradient meta_gradient(MetaLearner& learner, const std::vector<TaskBatch>& tasks,
                       std::size_t chunks, ml::runtime::WorkerPool* pool) {
  for (auto& p : learner.meta_parameters()) p.mutable_grad() = Tensor();
  learner.set_task_chunks(chunks, pool);
  EXPECT_EQ(learner.chunks_for(tasks.size()), std::min(chunks, tasks.size()));
  Gradient g;
  g.loss = learner.accumulate_meta_gradient(tasks);
  for (const auto& p : learner.meta_parameters())
    g.dense.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  for (const auto& sparse : learner.row_sparse_gradients())
    g.dense[sparse.parameter].index_copy_(0, sparse.rows, sparse.values);
  return g;
}

void expect_identical(const Gradient& a, const Gradient& b, const std::string& what) {
  EXPECT_EQ(a.loss, b.loss) << what;
  for (std::size_t i = 0; i < a.dense.size(); ++i)
    EXPECT_TRUE(torch::equal(a.dense[i], b.dense[i])) << what << ": parameter " << i;
}

TEST(TaskChunks, ThreadsChangeNothingAndChunksOnlyTheFloatRounding) {
  Family mlp;
  mlp.shape.dense_dim = 6;
  mlp.shape.hidden = {24, 16};  // wide against the support rows: maml keeps the tower implicit
  Family shared_tables = mlp;
  shared_tables.shape.type = ml::config::ModelType::kEmbeddingMlp;
  shared_tables.shape.id_cardinalities = {40, 5};
  shared_tables.shape.embedding_dim = 3;
  shared_tables.inner_params = "dense";
  Family adapted_tables = shared_tables;
  adapted_tables.inner_params = "all";
  ml::runtime::WorkerPool two(2), three(3);
  const std::vector<std::pair<std::string, Family>> cases = {{"maml", mlp},
                                                             {"fomaml", mlp},
                                                             {"reptile", mlp},
                                                             {"anil", mlp},
                                                             {"metasgd", mlp},
                                                             {"protonet", mlp},
                                                             {"maml", shared_tables},
                                                             {"fomaml", adapted_tables},
                                                             {"reptile", adapted_tables},
                                                             {"metasgd", adapted_tables}};
  for (const auto& [algorithm, family] : cases) {
    const std::string what =
        algorithm + " / " + ml::enum_name(family.shape.type) + " / " + family.inner_params;
    SCOPED_TRACE(what);
    torch::manual_seed(3);
    ml::config::MetaConfig config;
    config.algorithm = ml::testing::choice<ml::config::Algorithm>(algorithm);
    config.inner_steps = 2;
    config.inner_lr = 0.3;
    config.inner_params = ml::testing::choice<ml::config::InnerParams>(family.inner_params);
    Family f = family;
    MetaLearner learner(config, LabelKind::kBinary, ml::models::FunctionalModel(f.shape));
    std::vector<TaskBatch> tasks;
    for (std::int64_t t = 0; t < 5; ++t) tasks.push_back(random_task(3 + t, 9 - t, f));

    const Gradient one = meta_gradient(learner, tasks, 1, nullptr);
    for (std::size_t chunks : {2, 3}) {
      const Gradient alone = meta_gradient(learner, tasks, chunks, nullptr);
      expect_identical(alone, meta_gradient(learner, tasks, chunks, &two),
                       std::to_string(chunks) + " chunks on 2 threads");
      expect_identical(alone, meta_gradient(learner, tasks, chunks, &three),
                       std::to_string(chunks) + " chunks on 3 threads");
      // Float32 rounding of sums over the tasks' rows in another grouping, nothing more.
      EXPECT_NEAR(alone.loss, one.loss, 1e-6 * (1 + std::abs(one.loss)));
      double size = 0;
      for (std::size_t i = 0; i < one.dense.size(); ++i) {
        EXPECT_TRUE(torch::allclose(alone.dense[i], one.dense[i], 1e-4, 1e-6))
            << chunks << " chunks, parameter " << i << ": largest difference "
            << (alone.dense[i] - one.dense[i]).abs().max().item<double>();
        size += one.dense[i].abs().sum().item<double>();
      }
      EXPECT_GT(size, 1e-3);  // a real gradient
    }
  }
}

TEST(TaskChunks, PretrainIsOneJointBatchAndNeverCut) {
  ml::config::MetaConfig config;
  config.algorithm = ml::config::Algorithm::kPretrain;
  ml::models::ModelShape shape;
  shape.dense_dim = 4;
  shape.hidden = {5};
  MetaLearner learner(config, LabelKind::kBinary, ml::models::FunctionalModel(shape));
  learner.set_task_chunks(3, nullptr);
  EXPECT_EQ(learner.chunks_for(8), 1u);
}

// --- training runs -----------------------------------------------------------------------------

std::vector<Tensor> weights_of(const std::string& checkpoint) {
  auto run = ml::run::load_run(checkpoint, {}, "cpu");
  std::vector<Tensor> out;
  for (const auto& p : run.learner->model()->params()) out.push_back(p.detach().clone());
  return out;
}

int chunks_of(const std::string& checkpoint) {
  return ml::run::read_checkpoint_meta(checkpoint)
      .progress.get<ml::run::TrainingProgress>()
      .task_chunks;
}

TEST(TrainRun, ThreadsGiveOneThreadsRunToFloatRoundingAndResumeExactly) {
  ml::testing::TempDir dir;
  auto config = ml::testing::synthetic_shop(dir);
  for (const std::string algorithm : {"maml", "fomaml", "reptile", "anil"}) {
    SCOPED_TRACE(algorithm);
    config.meta.algorithm = ml::testing::choice<ml::config::Algorithm>(algorithm);
    auto train = [&](const std::string& name, int threads, int stop_after = 0,
                     bool resume = false) {
      config.run.dir = dir.file(algorithm + "-" + name);
      config.run.threads = threads;
      ml::train::TrainOptions options;
      options.stop_after = stop_after;
      options.resume = resume;
      ml::train::run_training(config, options);
      return config.run.dir + "/checkpoints/latest.mlckpt";
    };
    const std::string one = train("one", 1), two = train("two", 2), three = train("three", 3);
    // Cut at 13 with two chunks, resumed with the automatic budget: the recorded chunks hold.
    train("resumed", 2, 13);
    const std::string resumed = train("resumed", 0, 0, true);
    EXPECT_EQ(chunks_of(one), 1);
    EXPECT_EQ(chunks_of(two), 2);
    EXPECT_EQ(chunks_of(three), 3);
    EXPECT_EQ(chunks_of(resumed), 2);
    // The automatic budget times both ways on the first meta-batch before training; whichever
    // it keeps, the run equals the explicit run with those chunks: the timing leaves no trace.
    const std::string automatic = train("automatic", 0);
    const int kept = chunks_of(automatic);
    const int most = std::min(ml::runtime::usable_cores().threads, config.meta.meta_batch);
    EXPECT_TRUE(kept == 1 || kept == most) << kept;
    const auto wa = weights_of(automatic), wk = weights_of(kept == 1   ? one
                                                           : kept == 2 ? two
                                                                       : three);
    if (kept <= 3) {
      for (std::size_t i = 0; i < wa.size(); ++i)
        EXPECT_TRUE(torch::equal(wa[i], wk[i])) << "automatic differs at param " << i;
    }
    const auto w1 = weights_of(one), w2 = weights_of(two), w3 = weights_of(three),
               wr = weights_of(resumed);
    for (std::size_t i = 0; i < w1.size(); ++i) {
      EXPECT_TRUE(torch::equal(wr[i], w2[i])) << "resume differs at param " << i;
      // 30 Adam steps from gradients that differ in float rounding only.
      for (const auto* w : {&w2, &w3})
        EXPECT_TRUE(torch::allclose((*w)[i], w1[i], 1e-3, 1e-5))
            << "param " << i << ": largest difference "
            << ((*w)[i] - w1[i]).abs().max().item<double>();
    }
  }
}

}  // namespace
