#include "engine/kernels/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LORAD_CPU_RELAX() _mm_pause()
#else
#define LORAD_CPU_RELAX() std::this_thread::yield()
#endif

namespace lorad::kernels {
namespace {

thread_local bool tls_inside_pool = false;

}  // namespace

ThreadPool::ThreadPool(int num_threads, int spin_us)
    : num_threads_(std::max(1, num_threads)), spin_us_(std::max(0, spin_us)) {
  workers_.reserve(num_threads_ - 1);
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    stop_flag_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunChunk(int index) {
  const int64_t begin = n_ * index / active_;
  const int64_t end = n_ * (index + 1) / active_;
  if (begin < end) (*fn_)(begin, end);
}

void ThreadPool::WorkerLoop(int index) {
  tls_inside_pool = true;
  uint64_t seen = 0;
  for (;;) {
    // Spin for a while: the next call usually comes within microseconds.
    uint64_t gen = generation_.load(std::memory_order_acquire);
    if (gen == seen) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
      for (int iter = 1; gen == seen; ++iter) {
        LORAD_CPU_RELAX();
        gen = generation_.load(std::memory_order_acquire);
        if ((iter & 63) == 0 && std::chrono::steady_clock::now() > deadline) break;
      }
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      sleepers_.fetch_add(1);
      cv_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
      sleepers_.fetch_sub(1);
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_flag_.load(std::memory_order_acquire)) return;
    if (index < active_) {
      RunChunk(index);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (num_threads_ == 1 || n == 1 || tls_inside_pool) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  tls_inside_pool = true;
  fn_ = &fn;
  n_ = n;
  active_ = static_cast<int>(std::min<int64_t>(n, num_threads_));
  // Every worker wakes for every job (those with index >= active_ just acknowledge it).
  pending_.store(num_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1);  // seq_cst: pairs with sleepers_ below (Dekker-style)
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  RunChunk(0);
  for (int iter = 1; pending_.load(std::memory_order_acquire) != 0; ++iter) {
    LORAD_CPU_RELAX();
    if ((iter & 1023) == 0) std::this_thread::yield();  // a worker may be descheduled
  }
  tls_inside_pool = false;
}

void ThreadPool::ParallelForTasks(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  ParallelFor(n_tasks, [&fn](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) fn(t);
  });
}

}  // namespace lorad::kernels
