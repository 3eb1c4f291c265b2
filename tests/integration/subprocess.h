// A child process for integration tests: spawn with arguments (stdin is /dev/null), read its stdout
// line by line with a timeout, collect its stderr, send it signals, and wait for its exit code.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::testing {

// Not thread-safe; one test thread owns it. The destructor SIGKILLs a child still running.
class Subprocess {
 public:
  // Starts `path` with `args` (argv[1..]); stdout and stderr are piped to this process.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(const std::string& path,
                                                           const std::vector<std::string>& args);
  ~Subprocess();

  // The next line of stdout without its newline; nullopt on EOF or after `timeout_ms`.
  std::optional<std::string> ReadStdoutLine(int timeout_ms);

  // Sends `signal_number` to the child.
  void Signal(int signal_number);

  // Waits up to `timeout_ms` for the child to exit; returns its exit code, or -signal if a
  // signal killed it. DEADLINE_EXCEEDED if it is still running.
  absl::StatusOr<int> Wait(int timeout_ms);

  // All of stderr (call after Wait()).
  std::string ReadAllStderr();

  pid_t pid() const { return pid_; }

 private:
  Subprocess(pid_t pid, int stdout_fd, int stderr_fd);

  pid_t pid_;
  int stdout_fd_;
  int stderr_fd_;
  std::string stdout_buffer_;
  bool exited_ = false;
};

// Runs `path` with `args` to completion (at most `timeout_ms`); returns exit code and output.
struct RunResult {
  int exit_code = -1;
  std::string stdout_text;
  std::string stderr_text;
};
absl::StatusOr<RunResult> RunToCompletion(const std::string& path,
                                          const std::vector<std::string>& args, int timeout_ms);

}  // namespace lorad::testing
