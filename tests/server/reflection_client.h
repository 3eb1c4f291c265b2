// Lists a server's services through grpc.reflection.v1alpha without a generated stub: Debian's
// gRPC ships the reflection service (with its descriptors in the generated pool) but not its
// headers, so requests and responses are DynamicMessages sent over a generic stub.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace lorad::testing {

// The full names of the services `channel`'s server exposes, as reflection lists them.
absl::StatusOr<std::vector<std::string>> ListServicesByReflection(
    const std::shared_ptr<grpc::Channel>& channel);

}  // namespace lorad::testing
