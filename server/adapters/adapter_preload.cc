#include "server/adapters/adapter_preload.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lorad::server {

absl::StatusOr<std::vector<PreloadEntry>> ParsePreloadList(absl::string_view text) {
  std::vector<PreloadEntry> entries;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    const size_t eq = item.find('=');
    if (eq == absl::string_view::npos || eq == 0 || eq + 1 == item.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--preload_adapters: \"", item, "\" is not id=source"));
    }
    entries.push_back({std::string(item.substr(0, eq)), std::string(item.substr(eq + 1))});
  }
  return entries;
}

}  // namespace lorad::server
