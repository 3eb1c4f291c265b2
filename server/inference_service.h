// lorad.v1.Inference over the gRPC callback API. Generation, streaming and tokenization arrive
// with issue 5 (they need the engine of issue 3); until then every RPC is UNIMPLEMENTED.
#pragma once

#include "lorad/v1/inference.grpc.pb.h"

namespace lorad::server {

// Thread-safe: handlers share no mutable state.
class InferenceService final : public lorad::v1::Inference::CallbackService {
 public:
  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const lorad::v1::GenerateRequest* request,
                                     lorad::v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<lorad::v1::GenerateResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const lorad::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const lorad::v1::TokenizeRequest* request,
                                     lorad::v1::TokenizeResponse* response) override;
};

}  // namespace lorad::server
