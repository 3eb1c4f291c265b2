// The adapter-affinity header: clients send the adapter id they ask for as gRPC metadata or an
// HTTP header named kAffinityHeader, so that a router in front of several replicas (HAProxy's
// `balance hdr(x-lorad-adapter)`, nginx's `hash $http_x_lorad_adapter consistent`) can send each
// adapter's traffic to the replica that has it resident. The header is optional; when present it
// must name the adapter the body asks for ("" or absent = no claim), so that a router and the
// daemon never act on different adapters.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lorad::server {

inline constexpr char kAffinityHeader[] = "x-lorad-adapter";

// OK when `header` is absent or empty, or equals `adapter_id` ("" = the base model, which a
// header cannot name). INVALID_ARGUMENT naming both values otherwise.
absl::Status CheckAffinityHeader(std::optional<absl::string_view> header,
                                 const std::string& adapter_id);

}  // namespace lorad::server
