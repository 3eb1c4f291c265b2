#include "server/job_files.h"

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

namespace lorad::server {
namespace {

constexpr char kCrockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr char kCheckpointPrefix[] = "step-";

// The last id's time and random parts, for monotonic ids within one millisecond.
struct UlidState {
  absl::Mutex mu;
  uint64_t last_ms ABSL_GUARDED_BY(mu) = 0;
  uint16_t random_hi ABSL_GUARDED_BY(mu) = 0;  // 16 of the 80 random bits
  uint64_t random_lo ABSL_GUARDED_BY(mu) = 0;  // the other 64
  std::mt19937_64 rng ABSL_GUARDED_BY(mu){std::random_device{}()};
};

bool ParseCheckpointName(absl::string_view name, int64_t* step) {
  if (!absl::ConsumePrefix(&name, kCheckpointPrefix) || name.size() < 8) return false;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
  }
  return absl::SimpleAtoi(name, step);
}

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

absl::StatusOr<std::string> ResolveDataFile(const std::string& data_root, const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("dataset.path is empty");
  if (path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("dataset.path contains a NUL byte");
  }
  if (path.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "dataset.path '", path, "' is absolute; give a file relative to the data root"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat("dataset.path '", path, "' contains '..'"));
    }
  }
  char buf[PATH_MAX];
  if (::realpath(data_root.c_str(), buf) == nullptr) {
    return absl::InternalError(absl::StrCat("data root: ", std::strerror(errno)));
  }
  const std::string root = buf;
  if (::realpath((root + "/" + path).c_str(), buf) == nullptr) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return absl::NotFoundError(
          absl::StrCat("dataset.path '", path, "' does not exist under the data root"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("dataset.path '", path, "': ", std::strerror(errno)));
  }
  const std::string real = buf;
  if (!absl::StartsWith(real, root + "/")) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset.path '", path, "' resolves outside the data root (symlink escape)"));
  }
  struct stat st;
  if (::stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset.path '", path, "' is not a regular file"));
  }
  return real;
}

absl::StatusOr<std::string> ReadFileLimited(const std::string& path, int64_t max_bytes,
                                            absl::string_view shown) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) return absl::NotFoundError(absl::StrCat(shown, ": ", error.message()));
  if (static_cast<int64_t>(size) > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(shown, " has ", size,
                                                   " bytes, over the server's limit of ", max_bytes,
                                                   " (--max_dataset_bytes)"));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(shown, ": cannot open"));
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

std::string CheckpointName(int64_t step) {
  return absl::StrFormat("%s%08d", kCheckpointPrefix, step);
}

std::vector<std::pair<int64_t, std::string>> ListCheckpoints(const std::string& checkpoints_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code error;
  std::filesystem::directory_iterator it(checkpoints_dir, error);
  if (error) return found;
  std::vector<std::filesystem::path> leftovers;
  for (const auto& entry : it) {
    int64_t step = 0;
    if (entry.is_directory(error) && ParseCheckpointName(entry.path().filename().string(), &step)) {
      found.emplace_back(step, entry.path().string());
    } else {
      leftovers.push_back(entry.path());
    }
  }
  for (const auto& path : leftovers) std::filesystem::remove_all(path, error);
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a > b; });
  return found;
}

void PruneCheckpoints(const std::string& checkpoints_dir, int keep) {
  std::vector<std::pair<int64_t, std::string>> found = ListCheckpoints(checkpoints_dir);
  std::error_code error;
  for (size_t i = static_cast<size_t>(std::max(keep, 0)); i < found.size(); ++i) {
    std::filesystem::remove_all(found[i].second, error);
  }
}

}  // namespace lorad::server
