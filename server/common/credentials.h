// The gRPC server's transport credentials: TLS from a PEM cert/key pair, or insecure.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/security/server_credentials.h"
#include "server/common/config.h"

namespace lorad::server {

// TLS credentials when config.tls_cert and config.tls_key are set (files read now), else
// insecure ones. INVALID_ARGUMENT naming the flag when a file cannot be read or is not PEM.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerConfig& config);

}  // namespace lorad::server
