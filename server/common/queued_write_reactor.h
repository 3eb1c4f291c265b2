// lorad's server-streaming RPCs (GenerateStream, WatchJob) on the one WriteQueue: messages are
// queued from any thread and written one at a time; the stream finishes with a status once the
// queue has drained, or at once (queue dropped) after Abort().
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

#include <optional>
#include <utility>

#include "grpcpp/grpcpp.h"
#include "server/common/write_queue.h"

namespace lorad::server {

template <typename Message>
class QueuedWriteReactor : public grpc::ServerWriteReactor<Message> {
 public:
  explicit QueuedWriteReactor(bool held = false) : queue_(Queue::Writer::kPushed, held) {}

  void Push(std::optional<Message> message, std::optional<grpc::Status> final_status) {
    if (queue_.Push(std::move(message), std::move(final_status))) Advance();
  }

  // Drops the queue and ends the stream with `status` (unless an end is already queued) as soon
  // as no write is in progress.
  void Abort(grpc::Status status) {
    if (queue_.Abort(std::move(status))) Advance();
  }

  // Lets writes start (see `held`).
  void Release() {
    if (queue_.Release()) Advance();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      queue_.Break();
      OnBroken();
    }
    Advance();  // this reaction holds the write turn
  }

  void OnCancel() override {
    queue_.Break();
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
  using Queue = WriteQueue<Message, grpc::Status>;

  // By the holder of the write turn: starts the next write, or finishes, or gives the turn up.
  void Advance() {
    typename Queue::Step step = queue_.Next();
    if (step.end.has_value()) {
      this->Finish(*step.end);
    } else if (step.message.has_value()) {
      current_ = *std::move(step.message);
      this->StartWrite(&current_);
    }
  }

  Queue queue_;
  Message current_;  // the message being written (by the holder of the write turn)
};

}  // namespace lorad::server
