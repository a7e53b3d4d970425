// A fixed set of threads that compute independent units of work side by side: the task chunks
// of a meta-step, the episodes of an evaluation, the tasks of `adapt --all-new`. The threads
// live as long as the pool, so a meta-step costs two hand-overs, not thread start-ups, and each
// thread's allocator arena and torch state stay warm. A waiting thread yields its core
// (sched_yield) for up to 1 ms, so the next unit or the end of a run is seen at once, then
// sleeps on a condition variable. It never busy-waits without yielding: a spinning waiter
// steals the core that the thread it waits for needs on a loaded machine (libgomp's spinning
// workers were measured at 5-7 meta-iterations/s under a load of 4, against 150 alone).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ml::runtime {

class WorkerPool {
 public:
  // `workers` threads compute (at least 1): the caller of run() and workers - 1 of the pool's.
  explicit WorkerPool(int workers);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  int workers() const { return static_cast<int>(threads_.size()) + 1; }

  // Calls job(i) once for each i in [0, count) and returns when all calls have returned. Units
  // are handed out in index order to whichever worker is free, so a slow core takes fewer; a
  // result that must not depend on the worker count goes into a slot per index. Every worker
  // runs with the caller's torch thread-local state (grad mode, profiler). When calls throw,
  // no further unit starts and the exception of the lowest index is rethrown: the one a plain
  // loop would have stopped at. Not reentrant: job must not call run() of the same pool.
  void run(std::size_t count, const std::function<void(std::size_t)>& job);

 private:
  void serve();
  void work();

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::atomic<std::size_t> generation_{0};  // bumped for every run(): a worker joins each once
  bool stopping_ = false;
  // The run in progress (guarded by mutex_).
  const std::function<void(std::size_t)>* job_ = nullptr;
  const void* state_ = nullptr;  // the caller's at::ThreadLocalState
  std::size_t count_ = 0, next_ = 0;
  std::atomic<int> busy_{0};  // pool threads still inside the current run
  std::size_t failed_index_ = 0;
  std::exception_ptr failure_;
};

}  // namespace ml::runtime
