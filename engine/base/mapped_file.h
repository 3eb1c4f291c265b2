// Read-only memory mapping of a whole file. The GGUF and safetensors readers view tensors in
// place through it, so weights are paged in by the OS and never copied.
// Under AddressSanitizer (the sanitizer and fuzz builds) the file is instead read into a heap
// buffer of exactly its size, so that a parser reading past the end is caught: a mapping's last
// page is readable beyond the file's end.
// Thread-safety: immutable after Open(); data() may be read from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace lorad {

class MappedFile {
 public:
  // Maps `path` read-only (MAP_PRIVATE). Errors name the path: NOT_FOUND when it does not
  // exist, INVALID_ARGUMENT when it is not a regular file, INTERNAL for other OS failures.
  // An empty file maps to size() == 0 and data() == nullptr.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  // Maps the file open on `fd`, which it takes over (closed on return, mapped or not). `path`
  // names it in messages and path(). Errors as Open's.
  static absl::StatusOr<std::unique_ptr<MappedFile>> FromDescriptor(int fd,
                                                                    const std::string& path);

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  static absl::StatusOr<std::unique_ptr<MappedFile>> ReadIntoHeap(int fd, const std::string& path,
                                                                  size_t size);

  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

}  // namespace lorad
