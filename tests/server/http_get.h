// A minimal blocking HTTP/1.0 GET for tests (scraping /metrics without a client library).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace lorad::testing {

struct HttpResponse {
  // Status code from the status line, e.g. 200.
  int status = 0;
  // Everything after the blank line that ends the headers.
  std::string body;
};

// GETs http://127.0.0.1:<port><path>; fails after `timeout_s` without an answer.
absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path, int timeout_s = 5);

}  // namespace lorad::testing
