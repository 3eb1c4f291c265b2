// lorad.v1.Inference over the gRPC callback API: Generate (unary), GenerateStream (server
// streaming) and Tokenize. Handlers check auth, validate, submit to the engine and return; no
// gRPC thread waits for generation. Until the model has loaded, RPCs answer UNAVAILABLE.
#pragma once

#include <atomic>

#include "engine/engine.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "server/common/auth.h"
#include "server/inference/generate_call.h"

namespace lorad::server {

class InferenceMetrics;

// Thread-safe. SetEngine() is called once, when the model has loaded.
class InferenceService final : public lorad::v1::Inference::CallbackService {
 public:
  // `auth` (null: no auth) and `metrics` (may be null) must outlive the service.
  InferenceService(const RequestDefaults& defaults, const Authorizer* auth,
                   InferenceMetrics* metrics);

  // Starts serving with `engine`, which must outlive every RPC. Call once.
  void SetEngine(Engine* engine);

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const lorad::v1::GenerateRequest* request,
                                     lorad::v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<lorad::v1::GenerateResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const lorad::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const lorad::v1::TokenizeRequest* request,
                                     lorad::v1::TokenizeResponse* response) override;

 private:
  const Authorizer* const auth_;
  GenerateEnv env_;  // Written once by SetEngine() before ready_ is set, then immutable.
  std::atomic<const GenerateEnv*> ready_{nullptr};  // &env_ once SetEngine() has run
};

}  // namespace lorad::server
