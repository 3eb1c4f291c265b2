// The one queued writer of lorad's server-streaming RPCs (GenerateStream, WatchJob): messages
// are queued from any thread and written one at a time; the stream finishes with a status once
// the queue has drained, or at once (queue dropped) after Abort().
//
// Contract:
//   - Push(message, final_status) queues `message` (dropped once the stream is broken) and, when
//     `final_status` is set, the end of the stream; calls after the end is queued are ignored.
//   - A failed write or the client's cancel marks the stream broken (queued messages dropped) and
//     calls OnBroken(): the subclass stops its producer and later Push()es a final status, or
//     Abort()s.
//   - With `held` (the constructor's argument) nothing is written until Release(): the subclass
//     finishes its own set-up first (e.g. records its watch id before a write could fail).
//   - Finish() is called exactly once; no write starts after it. OnDone() calls OnStreamDone()
//     and deletes the reactor.
// Thread-safety: Push, Abort and Release from any thread; gRPC calls the reactions.
#pragma once

#include <deque>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"

namespace lorad::server {

template <typename Message>
class QueuedWriteReactor : public grpc::ServerWriteReactor<Message> {
 public:
  explicit QueuedWriteReactor(bool held = false) : held_(held) {}

  void Push(std::optional<Message> message, std::optional<grpc::Status> final_status) {
    {
      absl::MutexLock lock(&mu_);
      if (final_status_.has_value()) return;
      if (message.has_value() && !broken_) pending_.push_back(*std::move(message));
      if (final_status.has_value()) final_status_ = std::move(final_status);
      if (!Claim()) return;
    }
    Advance();
  }

  // Drops the queue and ends the stream with `status` (unless an end is already queued) as soon
  // as no write is in progress.
  void Abort(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      pending_.clear();
      if (!final_status_.has_value()) final_status_ = std::move(status);
      if (!Claim()) return;
    }
    Advance();
  }

  // Lets writes start (see `held`).
  void Release() {
    {
      absl::MutexLock lock(&mu_);
      held_ = false;
      if (!Claim()) return;
    }
    Advance();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      {
        absl::MutexLock lock(&mu_);
        broken_ = true;
        pending_.clear();
      }
      OnBroken();
    }
    Advance();  // this reaction holds busy_
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
      pending_.clear();
    }
    OnBroken();
  }

  void OnDone() override {
    OnStreamDone();
    delete this;
  }

 protected:
  // The stream cannot deliver any more (a write failed, or the client cancelled).
  virtual void OnBroken() = 0;
  // gRPC is done with the stream; the reactor is deleted right after.
  virtual void OnStreamDone() {}

 private:
  // Takes the right to write or finish, if it is free and there is something to do.
  bool Claim() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (busy_ || held_ || finished_) return false;
    if (pending_.empty() && !final_status_.has_value()) return false;
    busy_ = true;
    return true;
  }

  // By the holder of busy_: starts the next write, or finishes, or gives busy_ up.
  void Advance() {
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (pending_.empty()) {
        if (!final_status_.has_value()) {
          busy_ = false;
          return;
        }
        finish = final_status_;
        finished_ = true;
      } else {
        current_ = std::move(pending_.front());
        pending_.pop_front();
      }
    }
    if (finish.has_value()) {
      this->Finish(*finish);
    } else {
      this->StartWrite(&current_);
    }
  }

  absl::Mutex mu_;
  std::deque<Message> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;      // a write or Finish() is in progress
  bool broken_ ABSL_GUARDED_BY(mu_) = false;    // drop further messages
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish() was called
  Message current_;                             // the message being written (busy_ holder)
};

}  // namespace lorad::server
