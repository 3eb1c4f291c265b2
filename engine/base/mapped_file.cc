#include "engine/base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lorad {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kReadIntoHeap = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kReadIntoHeap = true;
#else
constexpr bool kReadIntoHeap = false;
#endif
#else
constexpr bool kReadIntoHeap = false;
#endif

absl::Status ErrnoError(int err, const std::string& what, const std::string& path) {
  const std::string msg = absl::StrCat(what, " '", path, "': ", std::strerror(err));
  if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  return absl::InternalError(msg);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot open", path);
  return FromDescriptor(fd, path);
}

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::FromDescriptor(int fd,
                                                                       const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError(err, "cannot stat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (kReadIntoHeap) return ReadIntoHeap(fd, path, size);
  void* addr = nullptr;
  if (size > 0) {
    addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return ErrnoError(err, "cannot mmap", path);
    }
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return std::unique_ptr<MappedFile>(new MappedFile(path, static_cast<const uint8_t*>(addr), size));
}

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::ReadIntoHeap(int fd,
                                                                     const std::string& path,
                                                                     size_t size) {
  uint8_t* buffer = size > 0 ? new uint8_t[size] : nullptr;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, buffer + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      delete[] buffer;
      ::close(fd);
      return ErrnoError(err, "cannot read", path);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return std::unique_ptr<MappedFile>(new MappedFile(path, buffer, size));
}

MappedFile::~MappedFile() {
  if (data_ == nullptr) return;
  if (kReadIntoHeap) {
    delete[] data_;
  } else {
    ::munmap(const_cast<uint8_t*>(data_), size_);
  }
}

}  // namespace lorad
