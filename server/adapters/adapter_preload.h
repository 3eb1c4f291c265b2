// The --preload_adapters list: "id=source" entries separated by commas.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lorad::server {

struct PreloadEntry {
  std::string adapter_id;
  std::string source;  // relative to the adapter root
};

// Parses `text` (empty: no entries). INVALID_ARGUMENT naming the bad entry. Thread-safe (pure).
absl::StatusOr<std::vector<PreloadEntry>> ParsePreloadList(absl::string_view text);

}  // namespace lorad::server
