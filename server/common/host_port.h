// Parsing of "host:port" listen addresses, shared by the gRPC and metrics endpoints.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lorad::server {

// A listen address split into its parts.
struct HostPort {
  // Host name or IP; IPv6 literals without brackets.
  std::string host;
  // 0..65535; 0 asks the OS for a free port.
  int port = 0;
};

// Parses "host:port" or "[v6addr]:port". INVALID_ARGUMENT if malformed.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// Formats host and port back to "host:port" ("[v6addr]:port" when the host contains ':').
std::string FormatHostPort(absl::string_view host, int port);

}  // namespace lorad::server
