#include "server/common/affinity.h"

#include "absl/strings/str_cat.h"

namespace lorad::server {

absl::Status CheckAffinityHeader(std::optional<absl::string_view> header,
                                 const std::string& adapter_id) {
  if (!header.has_value() || header->empty() || *header == adapter_id) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(kAffinityHeader, " is \"", *header, "\" but the request asks for ",
                   adapter_id.empty() ? std::string("the base model")
                                      : absl::StrCat("adapter \"", adapter_id, "\""),
                   "; send the header with the request's own adapter id, or leave it out"));
}

}  // namespace lorad::server
