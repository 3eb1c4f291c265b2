#include "adapters/source_path.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/base/confined_open.h"

namespace lorad::adapters {
namespace {

absl::StatusOr<std::string> RealPath(const std::string& path, const std::string& shown) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat("adapter source '", shown, "' does not exist"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("adapter source '", shown, "': ", std::strerror(errno)));
  }
  return std::string(buf);
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

absl::StatusOr<std::string> CanonicalRoot(const std::string& root) {
  if (root.empty()) return absl::InvalidArgumentError("adapter root is not set");
  char buf[PATH_MAX];
  if (::realpath(root.c_str(), buf) == nullptr) {
    return absl::NotFoundError(absl::StrCat("adapter root '", root, "': ", std::strerror(errno)));
  }
  if (!IsDirectory(buf)) {
    return absl::InvalidArgumentError(absl::StrCat("adapter root '", root, "' is not a directory"));
  }
  return std::string(buf);
}

absl::StatusOr<std::string> ResolveAdapterSource(const std::string& canonical_root,
                                                 const std::string& source) {
  if (absl::Status s = CheckRelativePath(source, "adapter source"); !s.ok()) return s;
  absl::StatusOr<std::string> real = RealPath(canonical_root + "/" + source, source);
  if (!real.ok()) return real.status();
  if (*real != canonical_root && !absl::StartsWith(*real, canonical_root + "/")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "adapter source '", source, "' resolves outside the adapter root (symlink escape)"));
  }
  if (!IsDirectory(*real)) {
    return absl::InvalidArgumentError(
        absl::StrCat("adapter source '", source, "' is not a directory"));
  }
  return *real;
}

}  // namespace lorad::adapters
