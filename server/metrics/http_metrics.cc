#include "server/metrics/http_metrics.h"

#include "absl/strings/match.h"

namespace lorad::server {

HttpMetrics::HttpMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("lorad_http_requests_total")
                    .Help("HTTP requests answered by the OpenAI-compatible front, by route and "
                          "status code.")
                    .Register(registry)) {}

void HttpMetrics::Observe(absl::string_view path, int status) {
  requests_.Add({{"route", RouteLabel(path)}, {"code", std::to_string(status)}}).Increment();
}

std::string HttpMetrics::RouteLabel(absl::string_view path) {
  for (absl::string_view route : {"/v1/completions", "/v1/chat/completions", "/v1/models",
                                  "/v1/load_lora_adapter", "/health", "/metrics"}) {
    if (path == route) return std::string(route);
  }
  if (absl::StartsWith(path, "/v1/models/") && path.size() > 11) return "/v1/models/{id}";
  return "other";
}

}  // namespace lorad::server
