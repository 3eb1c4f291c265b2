// gRPC's callback server answers a request it cannot parse (for instance a proto3 string field
// with invalid UTF-8) with a bare UNIMPLEMENTED and no message. This interceptor rewrites that
// status on lorad.v1 methods that exist into INVALID_ARGUMENT saying what was wrong. A call to a
// method that does not exist keeps UNIMPLEMENTED and gains a message naming the method. (A request
// over --max_request_bytes is refused by gRPC's transport with RESOURCE_EXHAUSTED before any
// interceptor runs.)
#pragma once

#include <string_view>

#include "grpcpp/support/server_interceptor.h"

namespace lorad::server {

// True when `path` ("/package.Service/Method") names a method of a service compiled into this
// binary (looked up in protobuf's generated descriptor pool).
bool IsKnownGrpcMethod(std::string_view path);

// Thread-safe; stateless.
class ParseErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace lorad::server
