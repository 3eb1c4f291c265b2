#include "server/inference/generate_stream_reactor.h"

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/common/finished_reactors.h"
#include "server/common/queued_write_reactor.h"
#include "server/common/status_to_grpc.h"
#include "server/metrics/inference_metrics.h"

namespace lorad::server {
namespace {

// Lifetime: gRPC owns it from the handler's return until OnDone(). The sink holds a plain
// pointer to it and uses it only until it has queued the final status; Finish() is called
// only after that, so OnDone() (and the delete) cannot come before the sink's last use.
// Thread-safety: Push() runs on the scheduler thread, the reactions on gRPC threads
// (QueuedWriteReactor).
class StreamReactor final : public QueuedWriteReactor<v1::GenerateResponse> {
 public:
  StreamReactor(const GenerateEnv& env, std::string request_id)
      : env_(env), request_id_(std::move(request_id)) {}

 private:
  // The client is gone: stop generating; the engine's final event ends the RPC.
  void OnBroken() override { env_.engine->Cancel(request_id_); }

  const GenerateEnv& env_;
  const std::string request_id_;
};

// Turns engine events into stream messages. Called on the scheduler thread only.
class StreamSink final : public GenerateSink {
 public:
  StreamSink(const GenerateEnv& env, std::string request_id, std::string adapter_id,
             StreamReactor* reactor)
      : env_(env),
        request_id_(std::move(request_id)),
        adapter_id_(std::move(adapter_id)),
        reactor_(reactor) {}

  void OnOutput(GenerateOutput output) override {
    if (!started_ && (output.finished || !output.token_ids.empty())) {
      started_ = true;
      if (env_.metrics != nullptr) env_.metrics->RequestStarted(adapter_id_);
    }
    if (!output.finished) {
      reactor_->Push(Message(output), std::nullopt);
      return;
    }
    if (env_.metrics != nullptr) env_.metrics->RequestEnded(adapter_id_, started_);
    std::optional<v1::GenerateResponse> last;
    if (output.status.ok()) {
      last = Message(output);
      SetFinish(output, &*last);
    }
    reactor_->Push(std::move(last), FinalStatus(output));
  }

 private:
  v1::GenerateResponse Message(const GenerateOutput& output) const {
    v1::GenerateResponse message;
    message.set_request_id(request_id_);
    AppendDelta(output, &message);
    return message;
  }

  const GenerateEnv& env_;
  const std::string request_id_;
  const std::string adapter_id_;
  StreamReactor* const reactor_;
  bool started_ = false;
};

}  // namespace

grpc::ServerWriteReactor<v1::GenerateResponse>* StartGenerateStream(
    const GenerateEnv& env, grpc::CallbackServerContext* context,
    const v1::GenerateRequest& request) {
  absl::StatusOr<GenerateRequest> engine_request = PrepareGenerate(*context, request, env.defaults);
  if (!engine_request.ok()) {
    return new FinishedWriteReactor<v1::GenerateResponse>(ToGrpcStatus(engine_request.status()));
  }
  const std::string request_id = engine_request->request_id;
  const std::string adapter_id = engine_request->adapter_id;
  auto* reactor = new StreamReactor(env, request_id);
  auto sink = std::make_shared<StreamSink>(env, request_id, adapter_id, reactor);
  if (env.metrics != nullptr) env.metrics->RequestQueued(adapter_id);
  absl::Status submitted = env.engine->Submit(*std::move(engine_request), std::move(sink));
  if (!submitted.ok()) {
    if (env.metrics != nullptr) env.metrics->RequestEnded(adapter_id, /*started=*/false);
    reactor->Push(std::nullopt, ToGrpcStatus(submitted));
  } else if (context->IsCancelled()) {
    env.engine->Cancel(request_id);  // Cancelled before the request was known to the engine.
  }
  return reactor;
}

}  // namespace lorad::server
