// Long-lived worker threads: see worker_pool.hpp.
#include "runtime/worker_pool.hpp"

#include <ATen/ThreadLocalState.h>

#include <algorithm>
#include <limits>

namespace ml::runtime {
namespace {

// How long a waiting thread yields its core before it sleeps: longer than W1's gap between
// meta-steps and its chunks' spread in finishing times (~0.1-0.3 ms each), so the next unit
// starts at once instead of after a wake-up (40-80 us on this VM, twice per meta-step).
constexpr auto kYieldBudget = std::chrono::milliseconds(1);

// Yields the core until done() or the budget is spent; whether done() came true. sched_yield
// lets any other runnable thread have the core first, so on a loaded machine the waiter takes
// little from the others, and never more than the budget per wait.
template <typename Done>
bool yield_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + kYieldBudget;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

WorkerPool::WorkerPool(int workers) {
  for (int i = 1; i < std::max(1, workers); ++i) threads_.emplace_back([this] { serve(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::run(std::size_t count, const std::function<void(std::size_t)>& job) {
  if (count == 0) return;
  if (threads_.empty() || count == 1) {
    for (std::size_t i = 0; i < count; ++i) job(i);  // the first throw is the lowest index
    return;
  }
  const at::ThreadLocalState state;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &job;
    state_ = &state;
    count_ = count;
    next_ = 0;
    busy_ = static_cast<int>(threads_.size());
    failure_ = nullptr;
    failed_index_ = std::numeric_limits<std::size_t>::max();
    ++generation_;
  }
  wake_.notify_all();
  work();
  std::exception_ptr failure;
  yield_until([this] { return busy_.load() == 0; });
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busy_ == 0; });
    job_ = nullptr;
    state_ = nullptr;
    failure = failure_;
    failure_ = nullptr;
  }
  if (failure) std::rethrow_exception(failure);
}

void WorkerPool::work() {
  for (;;) {
    std::size_t i;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (failure_ || next_ >= count_) return;
      i = next_++;
    }
    try {
      (*job_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (i < failed_index_) {
        failed_index_ = i;
        failure_ = std::current_exception();
      }
    }
  }
}

void WorkerPool::serve() {
  std::size_t seen = 0;
  for (;;) {
    const at::ThreadLocalState* state;
    yield_until([&] { return generation_.load() != seen; });
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      state = static_cast<const at::ThreadLocalState*>(state_);
    }
    {
      const at::ThreadLocalStateGuard guard(*state);
      work();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (--busy_ == 0) done_.notify_one();
  }
}

}  // namespace ml::runtime
