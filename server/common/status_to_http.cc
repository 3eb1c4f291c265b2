#include "server/common/status_to_http.h"

#include "nlohmann/json.hpp"

namespace lorad::server {
namespace {

// OpenAI's error `type` for an HTTP status.
const char* ErrorType(int http_status) {
  switch (http_status) {
    case 400:
    case 413:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    case 503:
      return "service_unavailable";
    default:
      return "server_error";
  }
}

}  // namespace

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string OpenAiErrorJson(const absl::Status& status, const std::string& param) {
  const int http = HttpStatusOf(status.code());
  nlohmann::json error = {{"message", std::string(status.message())},
                          {"type", ErrorType(http)},
                          {"param", param.empty() ? nlohmann::json() : nlohmann::json(param)},
                          {"code", absl::StatusCodeToString(status.code())}};
  return nlohmann::json{{"error", error}}.dump();
}

}  // namespace lorad::server
