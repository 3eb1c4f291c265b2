// Opening files that clients name by a path relative to a root the operator configured (adapter
// sources under --adapter_root, dataset paths under --data_dir), so that the file opened is
// under the root at the moment it is opened. A check followed by an open by path would race: a
// directory swapped for a symlink in between could reach anywhere. Here the kernel resolves the
// path beneath a descriptor of the root (openat2 with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS):
// symlinks inside the root are followed (resolved first, then opened beneath the root by their
// resolved path), any that would leave it fail the open. Where openat2
// is unavailable (kernels before 5.6, seccomp filters) every component is opened with
// O_NOFOLLOW instead, which refuses all symlinks.
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lorad {

// The syntax every client-given relative path must have: not empty, no NUL byte, not absolute,
// no ".." component. INVALID_ARGUMENT quoting `what` ("dataset.path", "adapter source") and the
// path.
absl::Status CheckRelativePath(absl::string_view relative, absl::string_view what);

// A read-only descriptor (O_CLOEXEC; the caller closes it) of `relative` beneath `root`.
// `directory` opens a directory (O_DIRECTORY), else a regular file (anything else is
// INVALID_ARGUMENT). CheckRelativePath's errors; NOT_FOUND when it does not exist;
// INVALID_ARGUMENT when it resolves outside the root; PERMISSION_DENIED; INTERNAL otherwise.
// Messages quote `what` and `relative`, never a host path outside the root.
absl::StatusOr<int> OpenBeneath(const std::string& root, const std::string& relative,
                                bool directory, absl::string_view what);

}  // namespace lorad
