// Counts every RPC the server answers, by method and status code, in one place: a server
// interceptor that sees each call's final status (lorad services, health and reflection alike).
#pragma once

#include <memory>

#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace lorad::server {

// Creates one interceptor per call. Thread-safe; `registry` must outlive it.
class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(prometheus::Registry& registry);
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  prometheus::Family<prometheus::Counter>& requests_;
};

}  // namespace lorad::server
