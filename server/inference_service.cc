#include "server/inference_service.h"

#include "server/unimplemented.h"

namespace lorad::server {
namespace {
constexpr char kPlannedIn[] = "issue 5, Inference service";
}  // namespace

grpc::ServerUnaryReactor* InferenceService::Generate(grpc::CallbackServerContext* context,
                                                     const lorad::v1::GenerateRequest* request,
                                                     lorad::v1::GenerateResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.Inference/Generate", kPlannedIn);
}

grpc::ServerWriteReactor<lorad::v1::GenerateResponse>* InferenceService::GenerateStream(
    grpc::CallbackServerContext* context, const lorad::v1::GenerateRequest* request) {
  return FinishUnimplementedStream<lorad::v1::GenerateResponse>("lorad.v1.Inference/GenerateStream",
                                                                kPlannedIn);
}

grpc::ServerUnaryReactor* InferenceService::Tokenize(grpc::CallbackServerContext* context,
                                                     const lorad::v1::TokenizeRequest* request,
                                                     lorad::v1::TokenizeResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.Inference/Tokenize", kPlannedIn);
}

}  // namespace lorad::server
