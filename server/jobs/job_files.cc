#include "server/jobs/job_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/base/confined_open.h"
#include "engine/base/status_macros.h"

namespace lorad::server {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

// The last id's time and random parts, for monotonic ids within one millisecond.
struct UlidState {
  absl::Mutex mu;
  uint64_t last_ms ABSL_GUARDED_BY(mu) = 0;
  uint16_t random_hi ABSL_GUARDED_BY(mu) = 0;  // 16 of the 80 random bits
  uint64_t random_lo ABSL_GUARDED_BY(mu) = 0;  // the other 64
  std::mt19937_64 rng ABSL_GUARDED_BY(mu){std::random_device{}()};
};

}  // namespace

std::string NewJobId() {
  static UlidState* state = new UlidState;
  uint64_t ms;
  uint16_t hi;
  uint64_t lo;
  {
    absl::MutexLock lock(&state->mu);
    ms = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
    if (ms <= state->last_ms) {
      ms = state->last_ms;
      if (++state->random_lo == 0) ++state->random_hi;
    } else {
      state->last_ms = ms;
      state->random_hi = static_cast<uint16_t>(state->rng());
      state->random_lo = state->rng();
    }
    hi = state->random_hi;
    lo = state->random_lo;
  }
  // 128 bits: ms (48) | hi (16) | lo (64); 26 base32 digits, the first holding 3 bits.
  unsigned __int128 value = (static_cast<unsigned __int128>(ms & ((uint64_t{1} << 48) - 1)) << 80) |
                            (static_cast<unsigned __int128>(hi) << 64) | lo;
  std::string text(26, '0');
  for (int i = 25; i >= 0; --i) {
    text[i] = kCrockford[static_cast<int>(value & 31)];
    value >>= 5;
  }
  return "job-" + text;
}

namespace {

// Reads the open file `fd` (closed on return) of at most `max_bytes`.
absl::StatusOr<std::string> ReadDescriptorLimited(int fd, int64_t max_bytes,
                                                  absl::string_view shown) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat(shown, ": ", std::strerror(err)));
  }
  if (st.st_size > max_bytes) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(shown, " has ", st.st_size,
                                                   " bytes, over the server's limit of ", max_bytes,
                                                   " (--max_dataset_bytes)"));
  }
  std::string out;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat(shown, ": ", std::strerror(err)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(out.size()) > max_bytes) {  // grew while being read
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat(shown, " is over the server's limit of ",
                                                     max_bytes, " bytes (--max_dataset_bytes)"));
    }
  }
  ::close(fd);
  return out;
}

}  // namespace

absl::StatusOr<std::string> ReadDataFile(const std::string& data_root, const std::string& path,
                                         int64_t max_bytes) {
  LORAD_ASSIGN_OR_RETURN(int fd, OpenBeneath(data_root, path, /*directory=*/false, "dataset.path"));
  return ReadDescriptorLimited(fd, max_bytes, absl::StrCat("dataset.path '", path, "'"));
}

absl::StatusOr<std::string> ReadFileLimited(const std::string& path, int64_t max_bytes,
                                            absl::string_view shown) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat(shown, ": cannot open: ", std::strerror(errno)));
  }
  return ReadDescriptorLimited(fd, max_bytes, shown);
}

}  // namespace lorad::server
