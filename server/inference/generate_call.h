// What the Generate and GenerateStream reactors share: turning a gRPC request into an engine
// request (request id, deadline, defaults) and an engine's final event into the RPC status.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "grpcpp/grpcpp.h"
#include "lorad/v1/inference.pb.h"
#include "server/inference/proto_convert.h"

namespace lorad::server {

class InferenceMetrics;

// Everything a generate reactor needs; owned by InferenceService, outlives every RPC.
struct GenerateEnv {
  Engine* engine = nullptr;
  InferenceMetrics* metrics = nullptr;  // may be null
  RequestDefaults defaults;
};

// Assigns ids "srv-<n>" to requests that come without one. Thread-safe.
std::string NextRequestId();

// The engine request for `request` on `context`: converted, with a request id, and the
// client's deadline (if any) as the engine deadline. INVALID_ARGUMENT on a bad request, or when
// the x-lorad-adapter metadata names another adapter than the request (server/common/affinity.h).
absl::StatusOr<GenerateRequest> PrepareGenerate(const grpc::CallbackServerContext& context,
                                                const v1::GenerateRequest& request,
                                                const RequestDefaults& defaults);

// The RPC status for a request whose final event is `last`: the engine's error, CANCELLED for a
// cancelled request, OK otherwise.
grpc::Status FinalStatus(const GenerateOutput& last);

}  // namespace lorad::server
