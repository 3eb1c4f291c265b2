// A small fork-join pool for the CPU kernels: ParallelFor splits [0, n) into a few contiguous
// chunks per thread that the caller thread and the workers claim dynamically. Workers spin briefly
// between calls and then sleep on a condition variable, so back-to-back calls (hundreds per decoded
// token) cost a few microseconds each.
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

  // Calls fn(begin, end) on disjoint contiguous ranges covering [0, n) exactly once (at most
  // min(n, 4 * num_threads()) ranges, in any order, on any of the threads); returns when all
  // have finished. n <= 0: no call.
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

  // Claims the next unclaimed chunk of job `job` until none is left; runs each claimed chunk.
  void RunChunks(uint32_t job);

  // The current job; written by the caller before it is published through `claim_`, stable
  // while any of its chunks is unfinished.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int active_ = 0;  // chunks of the current job
  uint32_t job_ = 0;

  // (job << 32) | next unclaimed chunk. Any thread, the caller included, may run any chunk,
  // so a descheduled worker never stalls a call: the caller runs its chunk instead.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int> done_{0};             // finished chunks of the current job
  std::atomic<uint32_t> generation_{0};  // wakes workers: the latest job id
  std::atomic<int> sleepers_{0};         // workers blocked on cv_
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> stop_flag_{false};
};

}  // namespace lorad::kernels
