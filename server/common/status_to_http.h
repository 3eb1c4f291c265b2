// The one place where an absl::Status from the engine, adapters or request parsing becomes an
// HTTP status and an OpenAI error object ({"error": {"message", "type", "param", "code"}}).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace lorad::server {

// 400 INVALID_ARGUMENT / OUT_OF_RANGE / FAILED_PRECONDITION, 401 UNAUTHENTICATED,
// 403 PERMISSION_DENIED, 404 NOT_FOUND, 409 ALREADY_EXISTS, 413 for a body over the limit (the
// caller says so), 429 RESOURCE_EXHAUSTED, 499 CANCELLED, 503 UNAVAILABLE, 504
// DEADLINE_EXCEEDED, 500 otherwise. Thread-safe (pure).
int HttpStatusOf(absl::StatusCode code);

// The OpenAI error body for `status`; `param` names the offending request field ("" for none).
std::string OpenAiErrorJson(const absl::Status& status, const std::string& param = "");

}  // namespace lorad::server
