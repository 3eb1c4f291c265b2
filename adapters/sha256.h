// SHA-256 digests (OpenSSL) of byte strings and files, as lowercase hex.
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lorad::adapters {

// Hex SHA-256 of the concatenation of `parts`.
std::string Sha256Hex(const std::vector<absl::string_view>& parts);

// Hex SHA-256 of `text` followed by the contents of the file at `path` (memory-mapped).
// NOT_FOUND / INVALID_ARGUMENT from opening the file.
absl::StatusOr<std::string> Sha256HexWithFile(absl::string_view text, const std::string& path);

}  // namespace lorad::adapters
