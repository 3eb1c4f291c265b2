// Crash-safe file replacement: write a temporary file next to the target, fsync it, rename it
// over the target, fsync the directory. Readers see the old file or the new one, never a part.
// Thread-safety: safe to call concurrently for different paths.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace lorad {

// Writes the concatenation of `chunks` to `path` atomically. The temporary file
// ("<path>.tmp.XXXXXX") is removed on failure. Errors name the path (INTERNAL, NOT_FOUND when
// the directory does not exist, PERMISSION_DENIED).
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::vector<std::string_view>& chunks);

// fsyncs directory `dir` ("" = the current one), after a rename inside it. Best effort: errors
// are ignored (some file systems refuse fsync on directories).
void SyncDirectory(const std::string& dir);

}  // namespace lorad
