// Files of fine-tune jobs: sortable job ids, dataset paths confined to the data root, atomic
// file writes, and a job's checkpoint directories (<job dir>/checkpoints/step-NNNNNNNN).
// Thread-safety: NewJobId() is thread-safe; the rest are stateless (they touch the file system).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lorad::server {

// "job-" + a ULID (26 Crockford base32 characters: 48-bit Unix milliseconds, 80 random bits).
// Ids made later in this process compare greater (monotonic within a millisecond).
std::string NewJobId();

// The bytes of the regular file `path` relative to `data_root`, opened confined to the root
// (engine/base/confined_open.h: no symlink swap can reach outside it). INVALID_ARGUMENT (naming
// dataset.path): empty, absolute, a ".." component, NUL bytes, resolving outside the root, not a
// regular file, or more than `max_bytes`; NOT_FOUND when missing.
absl::StatusOr<std::string> ReadDataFile(const std::string& data_root, const std::string& path,
                                         int64_t max_bytes);

// The file's bytes; INVALID_ARGUMENT naming `shown` when bigger than `max_bytes`, NOT_FOUND
// when missing.
absl::StatusOr<std::string> ReadFileLimited(const std::string& path, int64_t max_bytes,
                                            absl::string_view shown);

// "step-00000050".
std::string CheckpointName(int64_t step);

// The checkpoints under `checkpoints_dir` (missing: none), newest first, as (step, full path).
// Entries that are not step-NNNNNNNN directories (a save interrupted by a crash) are removed.
std::vector<std::pair<int64_t, std::string>> ListCheckpoints(const std::string& checkpoints_dir);

// Removes all but the `keep` newest checkpoints.
void PruneCheckpoints(const std::string& checkpoints_dir, int keep);

}  // namespace lorad::server
