// `loractl health [--service=NAME]`: asks grpc.health.v1.Health/Check and prints the status.
// Exit 0 only when the answer is SERVING.
#include <cstdio>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tools/loractl_commands.h"

namespace lorad::loractl {

int RunHealth(const Invocation& invocation) {
  using grpc::health::v1::HealthCheckResponse;
  grpc::ClientContext context;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Dial(invocation);
  if (!channel.ok()) {
    std::fprintf(stderr, "loractl: health: %s\n", std::string(channel.status().message()).c_str());
    return kExitUsage;
  }
  if (absl::Status status = PrepareContext(invocation, &context); !status.ok()) {
    std::fprintf(stderr, "loractl: health: %s\n", std::string(status.message()).c_str());
    return kExitUsage;
  }
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(invocation.Flag("service", ""));
  HealthCheckResponse response;
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  const grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return ReportRpcError("health", status);
  std::printf("%s\n", HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
  return response.status() == HealthCheckResponse::SERVING ? kExitOk : kExitFailed;
}

}  // namespace lorad::loractl
