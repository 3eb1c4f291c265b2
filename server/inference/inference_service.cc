#include "server/inference/inference_service.h"

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/common/finished_reactors.h"
#include "server/common/status_to_grpc.h"
#include "server/inference/generate_stream_reactor.h"
#include "server/inference/generate_unary_reactor.h"

namespace lorad::server {

InferenceService::InferenceService(const RequestDefaults& defaults, const Authorizer* auth,
                                   InferenceMetrics* metrics)
    : auth_(auth) {
  env_.defaults = defaults;
  env_.metrics = metrics;
}

void InferenceService::SetEngine(Engine* engine) {
  env_.engine = engine;
  ready_.store(&env_, std::memory_order_release);
}

grpc::ServerUnaryReactor* InferenceService::Generate(grpc::CallbackServerContext* context,
                                                     const lorad::v1::GenerateRequest* request,
                                                     lorad::v1::GenerateResponse* response) {
  const GenerateEnv* env = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kInference, ready_, &env); !status.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(status);
    return reactor;
  }
  return StartGenerateUnary(*env, context, *request, response);
}

grpc::ServerWriteReactor<lorad::v1::GenerateResponse>* InferenceService::GenerateStream(
    grpc::CallbackServerContext* context, const lorad::v1::GenerateRequest* request) {
  const GenerateEnv* env = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kInference, ready_, &env); !status.ok()) {
    return new FinishedWriteReactor<lorad::v1::GenerateResponse>(status);
  }
  return StartGenerateStream(*env, context, *request);
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const lorad::v1::TokenizeRequest* request,
                                                     lorad::v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const GenerateEnv* env = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kInference, ready_, &env); !status.ok()) {
    reactor->Finish(status);
    return reactor;
  }
  // Tokenizing is fast (no model call), so it runs on the gRPC thread.
  absl::StatusOr<std::vector<int32_t>> ids = env->engine->Tokenize(request->text());
  if (!ids.ok()) {
    reactor->Finish(
        ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("text: ", ids.status().message()))));
    return reactor;
  }
  for (int32_t id : *ids) {
    response->add_token_ids(static_cast<uint32_t>(id));
    response->add_tokens(env->engine->tokenizer().TokenPiece(id));
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace lorad::server
