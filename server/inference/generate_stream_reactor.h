// The reactor of Inference.GenerateStream: each engine event becomes one GenerateResponse. The
// engine's sink (scheduler thread) only appends to a small queue; the reactor writes one
// message at a time from it (Write/OnWriteDone), so the sink never blocks on the network.
#pragma once

#include "grpcpp/grpcpp.h"
#include "lorad/v1/inference.pb.h"
#include "server/inference/generate_call.h"

namespace lorad::server {

// Starts GenerateStream for `request`; the returned reactor deletes itself in OnDone().
// `env` must outlive the RPC.
grpc::ServerWriteReactor<v1::GenerateResponse>* StartGenerateStream(
    const GenerateEnv& env, grpc::CallbackServerContext* context,
    const v1::GenerateRequest& request);

}  // namespace lorad::server
