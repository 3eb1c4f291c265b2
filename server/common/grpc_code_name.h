// Canonical names of gRPC status codes ("RESOURCE_EXHAUSTED"), for metric labels.
#pragma once

#include "grpcpp/support/status.h"

namespace lorad::server {

// The code's canonical upper-case name; "UNKNOWN" for values outside the enum. Thread-safe.
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace lorad::server
