#include "engine/kernels/thread_pool.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>

#include "gtest/gtest.h"

namespace lorad::kernels {
namespace {

TEST(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 4, 7, 64, 1000, 4097}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> calls{0};
      pool.ParallelFor(n, [&](int64_t begin, int64_t end) {
        ASSERT_LT(begin, end);
        calls.fetch_add(1);
        for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
      EXPECT_LE(calls.load(), std::min<int64_t>(n, 4 * threads));
    }
  }
}

TEST(ThreadPoolTest, RepeatedCallsSeeResultsOfPreviousCalls) {
  ThreadPool pool(2);
  std::vector<int64_t> data(1000, 0);
  for (int round = 0; round < 2000; ++round) {
    pool.ParallelFor(static_cast<int64_t>(data.size()), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) data[i] += i;
    });
  }
  for (size_t i = 0; i < data.size(); ++i) ASSERT_EQ(data[i], 2000 * static_cast<int64_t>(i));
}

TEST(ThreadPoolTest, WakesAfterSleeping) {
  ThreadPool pool(2, /*spin_us=*/0);
  for (int round = 0; round < 20; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::atomic<int64_t> sum{0};
    pool.ParallelFor(100, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) sum.fetch_add(i);
    });
    ASSERT_EQ(sum.load(), 4950);
  }
}

TEST(ThreadPoolTest, TasksRunOnceEach) {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(37);
  pool.ParallelForTasks(37, [&](int64_t t) { hits[t].fetch_add(1); });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPoolTest, NestedCallRunsInline) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  pool.ParallelFor(4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      pool.ParallelFor(10, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
    }
  });
  EXPECT_EQ(total.load(), 40);
}

TEST(ThreadPoolTest, ConcurrentCallersAreSerialized) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c) {
    callers.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        pool.ParallelFor(16, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 3 * 200 * 16);
}

TEST(ThreadPoolTest, PerCallLatency) {
  ThreadPool pool(2);
  std::atomic<int64_t> sink{0};
  auto fn = [&](int64_t b, int64_t e) { sink.fetch_add(e - b, std::memory_order_relaxed); };
  for (int i = 0; i < 1000; ++i) pool.ParallelFor(2, fn);
  constexpr int kCalls = 20000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) pool.ParallelFor(2, fn);
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  std::printf("ThreadPool(2) ParallelFor latency: %.2f us/call\n", us / kCalls);
  EXPECT_EQ(sink.load(), 2 * (1000 + kCalls));
}

}  // namespace
}  // namespace lorad::kernels
