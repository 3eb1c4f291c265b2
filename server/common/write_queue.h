// The one queue behind every streaming reply lorad writes: gRPC's GenerateStream and WatchJob
// (through QueuedWriteReactor) and the HTTP front's Server-Sent Events. Messages are queued
// from any thread and handed to one writer at a time, in order, followed by the end of the
// stream.
//
// Contract:
//   - Push(message, end) queues `message` (dropped once the stream is broken) and, when `end` is
//     set, the end of the stream; once the end is queued, later calls are ignored.
//   - Break(): the writer cannot deliver any more (a write failed, the client went away). Queued
//     messages are dropped and later ones are not queued; an end is still queued and delivered.
//   - Abort(end): Break(), and queue `end` unless an end is already queued.
//   - Delivery. Exactly one writer holds the turn at a time, and only it calls Next(), which
//     hands out the queued messages in order, then the end exactly once.
//       - A pushed writer (kPushed, gRPC's reactors) holds the turn only while a write is under
//         way. Push, Abort and Release return true when the caller has just taken the turn; it
//         then calls Next() and writes what it got, and calls Next() again after each write. A
//         Next() with nothing to hand out gives the turn back.
//       - A pulling writer (kPulling, an HTTP worker thread) holds the turn for good and waits in
//         WaitNext(); Push, Abort and Release then always return false.
//   - With `held`, nothing is handed out until Release(): the owner finishes its own set-up first
//     (e.g. records its watch id before a write could fail).
// Thread-safety: every method may be called from any thread.
#pragma once

#include <deque>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace lorad::server {

template <typename Message, typename End>
class WriteQueue {
 public:
  enum class Writer { kPushed, kPulling };

  // What Next() hands out: a message, or the end, or (neither set) nothing yet.
  struct Step {
    std::optional<Message> message;
    std::optional<End> end;
  };

  explicit WriteQueue(Writer writer, bool held = false)
      : pulling_(writer == Writer::kPulling), held_(held), turn_taken_(pulling_) {}

  [[nodiscard]] bool Push(std::optional<Message> message, std::optional<End> end) {
    absl::MutexLock lock(&mu_);
    if (end_.has_value()) return false;
    if (message.has_value() && !broken_) pending_.push_back(*std::move(message));
    if (end.has_value()) end_ = std::move(end);
    return TakeTurn();
  }

  [[nodiscard]] bool Abort(End end) {
    absl::MutexLock lock(&mu_);
    broken_ = true;
    pending_.clear();
    if (!end_.has_value()) end_ = std::move(end);
    return TakeTurn();
  }

  [[nodiscard]] bool Release() {
    absl::MutexLock lock(&mu_);
    held_ = false;
    return TakeTurn();
  }

  void Break() {
    absl::MutexLock lock(&mu_);
    broken_ = true;
    pending_.clear();
  }

  bool broken() const {
    absl::MutexLock lock(&mu_);
    return broken_;
  }

  // By the holder of the turn. An empty Step gives a pushed writer's turn back.
  Step Next() {
    absl::MutexLock lock(&mu_);
    return NextLocked();
  }

  // By a pulling writer: Next(), waiting up to `timeout` for something to hand out.
  Step WaitNext(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return HasWork(); };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    return NextLocked();
  }

 private:
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !held_ && !ended_ && (!pending_.empty() || end_.has_value());
  }

  // Takes the turn for the caller if it is free and there is something to hand out.
  bool TakeTurn() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (turn_taken_ || !HasWork()) return false;
    turn_taken_ = true;
    return true;
  }

  Step NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Step step;
    if (held_ || ended_) {
      if (held_ && !pulling_) turn_taken_ = false;
      return step;
    }
    if (!pending_.empty()) {
      step.message = std::move(pending_.front());
      pending_.pop_front();
    } else if (end_.has_value()) {
      step.end = end_;
      ended_ = true;
    } else if (!pulling_) {
      turn_taken_ = false;
    }
    return step;
  }

  const bool pulling_;
  mutable absl::Mutex mu_;
  std::deque<Message> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<End> end_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_);
  bool turn_taken_ ABSL_GUARDED_BY(mu_);
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // drop messages
  bool ended_ ABSL_GUARDED_BY(mu_) = false;   // the end has been handed out
};

}  // namespace lorad::server
