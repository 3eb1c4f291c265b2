// Files of fine-tune jobs: sortable job ids, dataset paths confined to the data root, atomic
// file writes (checkpoint directories: engine/finetune/checkpoint_records.h).
// Thread-safety: NewJobId() is thread-safe; the rest are stateless (they touch the file system).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lorad::server {

// Files in a job's directory, <data_dir>/jobs/<job_id>: the training set and the validation set
// (when the request gave one) as received.
inline constexpr char kJobDatasetFile[] = "dataset.jsonl";
inline constexpr char kJobValidationFile[] = "validation.jsonl";

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

}  // namespace lorad::server
