#include "server/jobs/job_gate.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace lorad::server {
namespace {

// Granularity of the wait, so that Cancel() / Stop() take effect quickly during a pause.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(20);

}  // namespace

absl::Status JobGate::Interrupted() const {
  if (cancelled()) return absl::CancelledError("the job was cancelled");
  if (stopped()) return absl::UnavailableError("training stopped: the server is shutting down");
  return absl::OkStatus();
}

absl::Status JobGate::Pause() {
  if (absl::Status status = Interrupted(); !status.ok()) return status;
  if (!load_.busy || !load_.busy()) return absl::OkStatus();
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + max_pause_;
  absl::Status status = absl::OkStatus();
  while (true) {
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    const absl::Duration slice = std::min(kWaitSlice, deadline - now);
    if (load_.wait_idle) {
      if (load_.wait_idle(slice)) break;
    } else {
      absl::SleepFor(slice);
      if (!load_.busy()) break;
    }
    status = Interrupted();
    if (!status.ok()) break;
  }
  paused_ns_.fetch_add(absl::ToInt64Nanoseconds(absl::Now() - start), std::memory_order_relaxed);
  return status;
}

}  // namespace lorad::server
