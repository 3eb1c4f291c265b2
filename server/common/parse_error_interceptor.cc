#include "server/common/parse_error_interceptor.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace lorad::server {
namespace {

// Replaces the bare UNIMPLEMENTED (no message) that gRPC itself sends with `replacement`.
// lorad's own UNIMPLEMENTED answers always carry a message and pass unchanged.
class BareUnimplementedRewriter final : public grpc::experimental::Interceptor {
 public:
  explicit BareUnimplementedRewriter(grpc::Status replacement)
      : replacement_(std::move(replacement)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(replacement_);
      }
    }
    methods->Proceed();
  }

 private:
  const grpc::Status replacement_;
};

}  // namespace

bool IsKnownGrpcMethod(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == path.size()) return false;
  const std::string_view service_name = path.substr(0, slash);
  const std::string_view method_name = path.substr(slash + 1);
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(service_name));
  return service != nullptr && service->FindMethodByName(std::string(method_name)) != nullptr;
}

grpc::experimental::Interceptor* ParseErrorInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const char* method = info->method();
  if (method == nullptr) return nullptr;
  if (!IsKnownGrpcMethod(method)) {
    // A method no service has.
    return new BareUnimplementedRewriter(
        grpc::Status(grpc::StatusCode::UNIMPLEMENTED, absl::StrCat("unknown method ", method)));
  }
  if (!absl::StartsWith(method, "/lorad.v1.")) return nullptr;
  // A lorad method whose request did not parse.
  return new BareUnimplementedRewriter(
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                   "request could not be parsed (string fields must be valid UTF-8)"));
}

}  // namespace lorad::server
