#include "engine/base/confined_open.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lorad {
namespace {

// openat2(2); -1 with errno ENOSYS where the kernel (or a seccomp filter) lacks it.
int OpenAt2(int dir_fd, const char* path, uint64_t flags, uint64_t resolve) {
#ifdef SYS_openat2
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dir_fd, path, &how, sizeof(how)));
#else
  errno = ENOSYS;
  return -1;
#endif
}

// Walks `relative` one component at a time with O_NOFOLLOW.
int OpenNoFollow(int root_fd, const std::string& relative, int last_flags) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(relative, '/', absl::SkipEmpty())) {
    if (part != ".") parts.emplace_back(part);
  }
  int fd = ::dup(root_fd);
  if (fd < 0) return -1;
  for (size_t i = 0; i < parts.size(); ++i) {
    const bool last = i + 1 == parts.size();
    const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (last ? last_flags : O_DIRECTORY);
    const int next = ::openat(fd, parts[i].c_str(), flags);
    const int err = errno;
    ::close(fd);
    if (next < 0) {
      // A symlink component: O_NOFOLLOW gives ELOOP (last) or ENOTDIR (O_DIRECTORY).
      errno = err == ELOOP ? EXDEV : err;
      return -1;
    }
    fd = next;
  }
  return fd;
}

}  // namespace

absl::Status CheckRelativePath(absl::string_view relative, absl::string_view what) {
  if (relative.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (relative.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " contains a NUL byte"));
  }
  if (relative.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", relative, "' is absolute; give a path relative to the root"));
  }
  for (absl::string_view part : absl::StrSplit(relative, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(what, " '", relative, "' contains '..'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int> OpenBeneath(const std::string& root, const std::string& relative,
                                bool directory, absl::string_view what) {
  if (absl::Status s = CheckRelativePath(relative, what); !s.ok()) return s;
  const int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open the root of ", what, ": ", std::strerror(errno)));
  }
  // Symlinks are resolved first (realpath), so that one inside the root that names its target
  // by an absolute path still works; the open then takes the resolved path beneath the root,
  // and the kernel refuses it if anything was swapped for a way out in between.
  std::string beneath(relative);
  char real[PATH_MAX], real_root[PATH_MAX];
  if (::realpath(root.c_str(), real_root) != nullptr &&
      ::realpath(absl::StrCat(root, "/", relative).c_str(), real) != nullptr) {
    const std::string real_path = real, root_path = real_root;
    if (real_path == root_path) {
      beneath.assign(1, '.');
    } else if (absl::StartsWith(real_path, root_path + "/")) {
      beneath = real_path.substr(root_path.size() + 1);
    } else {
      ::close(root_fd);
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", relative, "' resolves outside the root (symlink escape)"));
    }
  }
  const int last_flags = directory ? O_DIRECTORY : 0;
  int fd = OpenAt2(root_fd, beneath.c_str(), O_RDONLY | O_CLOEXEC | last_flags,
                   RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
  if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
    fd = OpenNoFollow(root_fd, beneath, last_flags);
  }
  const int err = errno;
  ::close(root_fd);
  const std::string quoted = absl::StrCat(what, " '", relative, "'");
  if (fd < 0) {
    switch (err) {
      case ENOENT:
        return absl::NotFoundError(absl::StrCat(quoted, " does not exist"));
      case ENOTDIR:
        return absl::InvalidArgumentError(absl::StrCat(
            quoted, directory ? " is not a directory" : ": a component is not a directory"));
      case EXDEV:
      case ELOOP:
        return absl::InvalidArgumentError(
            absl::StrCat(quoted, " resolves outside the root (symlink escape)"));
      case EACCES:
      case EPERM:
        return absl::PermissionDeniedError(absl::StrCat(quoted, ": permission denied"));
      default:
        return absl::InternalError(absl::StrCat(quoted, ": ", std::strerror(err)));
    }
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || (!directory && !S_ISREG(st.st_mode))) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(quoted, " is not a regular file"));
  }
  return fd;
}

}  // namespace lorad
