// Confines adapter sources to the configured adapter root: a source is a relative directory
// path under the root; absolute paths, ".." components and symlinks that resolve outside the
// root are refused.
// Thread-safety: stateless functions (they read the file system).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace lorad::adapters {

// The canonical (realpath) form of `root`, which must be an existing directory.
// NOT_FOUND / INVALID_ARGUMENT (not a directory) naming it.
absl::StatusOr<std::string> CanonicalRoot(const std::string& root);

// The canonical directory of `source` under `canonical_root` (from CanonicalRoot).
// INVALID_ARGUMENT: empty, absolute, a ".." component, NUL bytes, or a path that resolves
// (through symlinks) outside the root; NOT_FOUND: no such directory; INVALID_ARGUMENT: not a
// directory. Messages quote `source`, never the resolved host path outside the root.
absl::StatusOr<std::string> ResolveAdapterSource(const std::string& canonical_root,
                                                 const std::string& source);

}  // namespace lorad::adapters
