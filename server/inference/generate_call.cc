#include "server/inference/generate_call.h"

#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/common/affinity.h"
#include "server/common/status_to_grpc.h"

namespace lorad::server {

std::string NextRequestId() {
  static std::atomic<uint64_t> next{0};
  return absl::StrCat("srv-", next.fetch_add(1, std::memory_order_relaxed) + 1);
}

absl::StatusOr<GenerateRequest> PrepareGenerate(const grpc::CallbackServerContext& context,
                                                const v1::GenerateRequest& request,
                                                const RequestDefaults& defaults) {
  absl::StatusOr<GenerateRequest> out = ToEngineRequest(request, defaults);
  if (!out.ok()) return out.status();
  std::optional<absl::string_view> affinity;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find(kAffinityHeader); it != metadata.end()) {
    affinity = absl::string_view(it->second.data(), it->second.size());
  }
  if (absl::Status s = CheckAffinityHeader(affinity, out->adapter_id); !s.ok()) return s;
  if (out->request_id.empty()) out->request_id = NextRequestId();
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    out->deadline = absl::FromChrono(deadline);
  }
  return out;
}

grpc::Status FinalStatus(const GenerateOutput& last) {
  if (!last.status.ok()) return ToGrpcStatus(last.status);
  if (last.finish_reason == FinishReason::kCancelled) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled");
  }
  return grpc::Status::OK;
}

}  // namespace lorad::server
