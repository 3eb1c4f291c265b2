#include "server/metrics/rpc_metrics_interceptor.h"

#include <string>

#include "absl/strings/match.h"
#include "server/common/grpc_code_name.h"

namespace lorad::server {
namespace {

// Bounded label values: only the methods lorad serves are named.
std::string MethodLabel(const char* method) {
  const std::string name = method == nullptr ? "" : method;
  if (absl::StartsWith(name, "/lorad.v1.") || absl::StartsWith(name, "/grpc.health.v1.") ||
      absl::StartsWith(name, "/grpc.reflection.")) {
    return name.substr(1);
  }
  return "other";
}

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(prometheus::Family<prometheus::Counter>& requests, std::string method)
      : requests_(requests), method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      requests_
          .Add({{"method", method_}, {"code", GrpcCodeName(methods->GetSendStatus().error_code())}})
          .Increment();
    }
    methods->Proceed();
  }

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  const std::string method_;
};

}  // namespace

RpcMetricsInterceptorFactory::RpcMetricsInterceptorFactory(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("lorad_grpc_requests_total")
                    .Help("RPCs answered, by method and gRPC status code.")
                    .Register(registry)) {}

grpc::experimental::Interceptor* RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcMetricsInterceptor(requests_, MethodLabel(info->method()));
}

}  // namespace lorad::server
