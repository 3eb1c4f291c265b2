#include "server/common/host_port.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lorad::server {

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  HostPort result;
  absl::string_view port_text;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", address, "\": expected [ipv6]:port"));
    }
    result.host = std::string(address.substr(1, close - 1));
    port_text = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", address, "\": expected host:port"));
    }
    result.host = std::string(address.substr(0, colon));
    port_text = address.substr(colon + 1);
    if (result.host.find(':') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", address, "\": write IPv6 hosts as [addr]:port"));
    }
  }
  if (result.host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("address \"", address, "\": empty host"));
  }
  if (!absl::SimpleAtoi(port_text, &result.port) || result.port < 0 || result.port > 65535 ||
      port_text.empty() || port_text[0] == '+' || port_text[0] == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address, "\": port must be 0..65535"));
  }
  return result;
}

std::string FormatHostPort(absl::string_view host, int port) {
  if (host.find(':') != absl::string_view::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

}  // namespace lorad::server
