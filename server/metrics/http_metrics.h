// Counts every HTTP request the OpenAI-compatible front answers, by route and status code
// (lorad_http_requests_total), the HTTP counterpart of lorad_grpc_requests_total. The route label
// is one of a fixed set, so that arbitrary request paths cannot grow the exposition.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace lorad::server {

// Thread-safe; `registry` must outlive it.
class HttpMetrics {
 public:
  explicit HttpMetrics(prometheus::Registry& registry);
  // One answered request: its path (query string excluded) and HTTP status.
  void Observe(absl::string_view path, int status);

  // The route label of `path`: "/v1/completions", "/v1/chat/completions", "/v1/models",
  // "/v1/models/{id}", "/v1/load_lora_adapter", "/health", "/metrics", else "other".
  static std::string RouteLabel(absl::string_view path);

 private:
  prometheus::Family<prometheus::Counter>& requests_;
};

}  // namespace lorad::server
