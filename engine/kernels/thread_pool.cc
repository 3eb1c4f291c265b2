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

// Chunks per thread and call: threads claim chunks dynamically, so a thread that is slow or
// descheduled (shared cores) holds up at most one small chunk.
constexpr int kChunksPerThread = 4;

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
    generation_.fetch_add(1);  // never equals a job id a worker still waits on
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::RunChunk(int index) {
  const int64_t begin = n_ * index / active_;
  const int64_t end = n_ * (index + 1) / active_;
  if (begin < end) (*fn_)(begin, end);
}

void ThreadPool::RunChunks(uint32_t job) {
  uint64_t v = claim_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(v >> 32) != job) return;  // a later job: ours is complete
    // The chunk count travels in the claim word: active_ may already belong to the next job.
    const int active = static_cast<int>((v >> 16) & 0xffff);
    const int chunk = static_cast<int>(v & 0xffff);
    if (chunk >= active) return;
    if (claim_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) {
      RunChunk(chunk);
      done_.fetch_add(1, std::memory_order_acq_rel);
      v = claim_.load(std::memory_order_acquire);
    }
  }
}

void ThreadPool::WorkerLoop(int /*index*/) {
  tls_inside_pool = true;
  uint32_t seen = 0;
  for (;;) {
    // Spin for a while: the next call usually comes within microseconds.
    uint32_t gen = generation_.load(std::memory_order_acquire);
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
    RunChunks(gen);
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
  active_ = static_cast<int>(
      std::min<int64_t>({n, int64_t{num_threads_} * kChunksPerThread, int64_t{0xffff}}));
  done_.store(0, std::memory_order_relaxed);
  const uint32_t job = ++job_;
  claim_.store(static_cast<uint64_t>(job) << 32 | static_cast<uint64_t>(active_) << 16,
               std::memory_order_release);
  generation_.store(job);  // seq_cst: pairs with sleepers_ below (Dekker-style)
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  RunChunks(job);
  for (int iter = 1; done_.load(std::memory_order_acquire) != active_; ++iter) {
    LORAD_CPU_RELAX();
    if ((iter & 1023) == 0) std::this_thread::yield();  // the chunk's owner was descheduled
  }
  tls_inside_pool = false;
}

void ThreadPool::ParallelForTasks(int64_t n_tasks, const std::function<void(int64_t)>& fn) {
  ParallelFor(n_tasks, [&fn](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) fn(t);
  });
}

}  // namespace lorad::kernels
