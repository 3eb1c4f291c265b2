#include "server/inference/generate_unary_reactor.h"

#include <memory>
#include <string>
#include <utility>

#include "server/common/status_to_grpc.h"
#include "server/metrics/inference_metrics.h"

namespace lorad::server {
namespace {

// Lifetime: gRPC owns it from the handler's return until OnDone(). Finish() is called exactly
// once: by the handler on a submit error, or by the sink on the engine's final event; the
// sink never touches the reactor after that.
class UnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  UnaryReactor(const GenerateEnv& env, std::string request_id)
      : env_(env), request_id_(std::move(request_id)) {}

  void OnCancel() override { env_.engine->Cancel(request_id_); }
  void OnDone() override { delete this; }

 private:
  const GenerateEnv& env_;
  const std::string request_id_;
};

// Accumulates the events of one request. Called on the scheduler thread only.
class UnarySink final : public GenerateSink {
 public:
  UnarySink(const GenerateEnv& env, const std::string& request_id, std::string adapter_id,
            UnaryReactor* reactor, v1::GenerateResponse* response)
      : env_(env), adapter_id_(std::move(adapter_id)), reactor_(reactor), response_(response) {
    accumulated_.set_request_id(request_id);
  }

  void OnOutput(GenerateOutput output) override {
    if (!started_ && (output.finished || !output.token_ids.empty())) {
      started_ = true;
      if (env_.metrics != nullptr) env_.metrics->RequestStarted(adapter_id_);
    }
    AppendDelta(output, &accumulated_);
    if (!output.finished) return;
    if (env_.metrics != nullptr) env_.metrics->RequestEnded(adapter_id_, started_);
    const grpc::Status status = FinalStatus(output);
    if (status.ok()) {
      SetFinish(output, &accumulated_);
      *response_ = std::move(accumulated_);
    }
    reactor_->Finish(status);
  }

 private:
  const GenerateEnv& env_;
  const std::string adapter_id_;
  UnaryReactor* const reactor_;
  v1::GenerateResponse* const response_;  // Owned by gRPC; valid until OnDone().
  v1::GenerateResponse accumulated_;
  bool started_ = false;
};

}  // namespace

grpc::ServerUnaryReactor* StartGenerateUnary(const GenerateEnv& env,
                                             grpc::CallbackServerContext* context,
                                             const v1::GenerateRequest& request,
                                             v1::GenerateResponse* response) {
  absl::StatusOr<GenerateRequest> engine_request = PrepareGenerate(*context, request, env.defaults);
  if (!engine_request.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(engine_request.status()));
    return reactor;
  }
  const std::string adapter_id = engine_request->adapter_id;
  auto* reactor = new UnaryReactor(env, engine_request->request_id);
  auto sink =
      std::make_shared<UnarySink>(env, engine_request->request_id, adapter_id, reactor, response);
  if (env.metrics != nullptr) env.metrics->RequestQueued(adapter_id);
  // The sink may finish the RPC on the scheduler thread before Submit() returns.
  const std::string request_id = engine_request->request_id;
  absl::Status submitted = env.engine->Submit(*std::move(engine_request), std::move(sink));
  if (!submitted.ok()) {
    if (env.metrics != nullptr) env.metrics->RequestEnded(adapter_id, /*started=*/false);
    reactor->Finish(ToGrpcStatus(submitted));
  } else if (context->IsCancelled()) {
    env.engine->Cancel(request_id);  // Cancelled before the request was known to the engine.
  }
  return reactor;
}

}  // namespace lorad::server
