// The one place where an absl::Status from the engine or adapters becomes a gRPC status.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace lorad::server {

// Maps `status` to the gRPC status with the same canonical code and the same message. Codes
// unknown to gRPC become INTERNAL. Thread-safe (pure).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace lorad::server
