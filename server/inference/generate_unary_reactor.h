// The reactor of Inference.Generate: submits the request and returns at once; the engine's
// events accumulate on the scheduler thread and the last one finishes the RPC. No gRPC thread
// waits for generation.
#pragma once

#include "grpcpp/grpcpp.h"
#include "lorad/v1/inference.pb.h"
#include "server/inference/generate_call.h"

namespace lorad::server {

// Starts Generate for `request`; the returned reactor deletes itself in OnDone().
// `env` must outlive the RPC.
grpc::ServerUnaryReactor* StartGenerateUnary(const GenerateEnv& env,
                                             grpc::CallbackServerContext* context,
                                             const v1::GenerateRequest& request,
                                             v1::GenerateResponse* response);

}  // namespace lorad::server
