#include "server/parse_error_interceptor.h"

#include <string>

#include "absl/strings/match.h"

namespace lorad::server {
namespace {

class ParseErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      // lorad's own UNIMPLEMENTED answers always carry a message.
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         "request could not be parsed (string fields must be valid UTF-8)"));
      }
    }
    methods->Proceed();
  }
};

}  // namespace

grpc::experimental::Interceptor* ParseErrorInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const char* method = info->method();
  if (method == nullptr || !absl::StartsWith(method, "/lorad.v1.")) return nullptr;
  return new ParseErrorInterceptor;
}

}  // namespace lorad::server
