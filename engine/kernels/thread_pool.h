// A small fork-join pool for the CPU kernels: ParallelFor splits [0, n) into one contiguous
// chunk per thread, the caller thread runs the first chunk. Workers spin briefly between calls
// and then sleep on a condition variable, so back-to-back calls (hundreds per decoded token)
// cost a few microseconds each.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"

namespace lorad::kernels {

// Thread-safe: concurrent ParallelFor calls from different threads are serialized. A call
// made from inside a running `fn` (nested) runs inline on the calling thread.
class ThreadPool {
 public:
  // `num_threads` counts the caller thread: ThreadPool(1) starts no worker threads.
  // Values below 1 are treated as 1. Workers spin for up to `spin_us` microseconds waiting
  // for the next call before sleeping.
  explicit ThreadPool(int num_threads, int spin_us = 100);
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Calls fn(begin, end) on disjoint contiguous ranges covering [0, n) exactly once, using
  // at most min(n, num_threads()) threads; returns when all have finished. n <= 0: no call.
  void ParallelFor(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

  // Calls fn(task) once for every task in [0, n_tasks), spread over the threads.
  void ParallelForTasks(int64_t n_tasks, const std::function<void(int64_t task)>& fn);

 private:
  void WorkerLoop(int index);
  void RunChunk(int index);

  const int num_threads_;
  const int spin_us_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serializes callers

  // The current job; written by the caller before `generation_` is bumped.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int active_ = 0;  // threads taking part in the current job (incl. the caller)

  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};   // workers still running the current job
  std::atomic<int> sleepers_{0};  // workers blocked on cv_
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stop_flag_{false};
};

}  // namespace lorad::kernels
