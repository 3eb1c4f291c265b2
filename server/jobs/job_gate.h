// The TrainGate of a running job: inference keeps priority over training, and the job can be
// cancelled or stopped (server shutdown) between two ops of a training step.
// Thread-safety: thread-safe. Pause() is called by the training thread; Cancel() and Stop() from
// any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <utility>

#include "absl/time/time.h"
#include "engine/finetune/train_gate.h"

namespace lorad::server {

// How the gate sees the serving side (an Engine in the daemon; fakes in tests).
struct ServingLoad {
  // True while inference requests are running or waiting.
  std::function<bool()> busy;
  // Blocks until inference is idle or `timeout` passes; true when idle.
  std::function<bool(absl::Duration)> wait_idle;
};

class JobGate final : public finetune::TrainGate {
 public:
  // `load` may have empty functions (never busy). Training waits at most `max_pause` per Pause()
  // call under sustained load, so it still progresses.
  JobGate(ServingLoad load, absl::Duration max_pause)
      : load_(std::move(load)), max_pause_(max_pause) {}

  // CANCELLED after Cancel(); UNAVAILABLE after Stop(); otherwise OK once serving is idle or
  // max_pause has passed.
  absl::Status Pause() override;

  void Cancel() { cancelled_.store(true, std::memory_order_release); }
  void Stop() { stopped_.store(true, std::memory_order_release); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  // Total time Pause() spent waiting for inference.
  absl::Duration paused() const {
    return absl::Nanoseconds(paused_ns_.load(std::memory_order_relaxed));
  }

 private:
  absl::Status Interrupted() const;

  const ServingLoad load_;
  const absl::Duration max_pause_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> stopped_{false};
  std::atomic<int64_t> paused_ns_{0};
};

}  // namespace lorad::server
