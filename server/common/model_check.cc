#include "server/common/model_check.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace lorad::server {
namespace {

constexpr char kGgufMagic[4] = {'G', 'G', 'U', 'F'};

absl::Status OpenError(const std::string& path, int error) {
  const std::string message = absl::StrCat("model ", path, ": ", std::strerror(error));
  if (error == ENOENT || error == ENOTDIR) return absl::NotFoundError(message);
  if (error == EACCES || error == EPERM) return absl::PermissionDeniedError(message);
  return absl::InvalidArgumentError(message);
}

// Reads the first 4 bytes of `path` and compares them with the GGUF magic.
absl::Status CheckGgufFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return OpenError(path, errno);
  char magic[4] = {};
  const size_t read = std::fread(magic, 1, sizeof(magic), file);
  std::fclose(file);
  if (read != sizeof(magic) || std::memcmp(magic, kGgufMagic, sizeof(magic)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model ", path, ": not a GGUF file (no \"GGUF\" magic) nor a Hugging Face directory"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckModelPath(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("model path is empty");
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (error) return OpenError(path, error.value());
  if (std::filesystem::is_directory(status)) {
    const std::string config = path + "/config.json";
    std::FILE* file = std::fopen(config.c_str(), "rb");
    if (file == nullptr) {
      const int open_error = errno;
      if (open_error == ENOENT) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model ", path, ": directory has no config.json (not a Hugging Face model directory)"));
      }
      return OpenError(config, open_error);
    }
    std::fclose(file);
    return absl::OkStatus();
  }
  return CheckGgufFile(path);
}

}  // namespace lorad::server
