// JobGate: passes at once when serving is idle, waits while it is busy (at most max_pause per
// call), and ends a pause early for cancellation or shutdown.
#include "server/jobs/job_gate.h"

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace lorad::server {
namespace {

ServingLoad FakeLoad(std::atomic<bool>* busy) {
  ServingLoad load;
  load.busy = [busy] { return busy->load(); };
  load.wait_idle = [busy](absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (busy->load() && absl::Now() < end) absl::SleepFor(absl::Milliseconds(1));
    return !busy->load();
  };
  return load;
}

TEST(JobGateTest, IdlePassesAtOnce) {
  std::atomic<bool> busy{false};
  JobGate gate(FakeLoad(&busy), absl::Seconds(5));
  const absl::Time start = absl::Now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(gate.Pause().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  JobGate no_load(ServingLoad{}, absl::Seconds(5));
  EXPECT_TRUE(no_load.Pause().ok());
}

TEST(JobGateTest, BusyWaitsAtMostMaxPause) {
  std::atomic<bool> busy{true};
  JobGate gate(FakeLoad(&busy), absl::Milliseconds(100));
  const absl::Time start = absl::Now();
  EXPECT_TRUE(gate.Pause().ok());
  const absl::Duration waited = absl::Now() - start;
  EXPECT_GE(waited, absl::Milliseconds(95));
  EXPECT_LT(waited, absl::Seconds(2));
  EXPECT_GE(gate.paused(), absl::Milliseconds(95));
}

TEST(JobGateTest, ResumesWhenServingGoesIdle) {
  std::atomic<bool> busy{true};
  JobGate gate(FakeLoad(&busy), absl::Seconds(30));
  std::thread release([&] {
    absl::SleepFor(absl::Milliseconds(50));
    busy = false;
  });
  const absl::Time start = absl::Now();
  EXPECT_TRUE(gate.Pause().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  release.join();
}

TEST(JobGateTest, CancelAndStopInterruptAPause) {
  std::atomic<bool> busy{true};
  JobGate gate(FakeLoad(&busy), absl::Seconds(30));
  std::thread cancel([&] {
    absl::SleepFor(absl::Milliseconds(50));
    gate.Cancel();
  });
  const absl::Time start = absl::Now();
  EXPECT_EQ(gate.Pause().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  cancel.join();
  EXPECT_EQ(gate.Pause().code(), absl::StatusCode::kCancelled);

  busy = false;
  JobGate stopping(FakeLoad(&busy), absl::Seconds(30));
  stopping.Stop();
  EXPECT_EQ(stopping.Pause().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(stopping.stopped());
  EXPECT_FALSE(stopping.cancelled());
}

}  // namespace
}  // namespace lorad::server
