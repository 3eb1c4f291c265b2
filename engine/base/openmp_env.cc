#include "engine/base/openmp_env.h"

#include <unistd.h>

#include <cstdlib>

namespace lorad {

void ReexecWithPassiveOpenMpWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  // The resolved path, not "/proc/self/exe", so that the process keeps its name ("lorad").
  char path[4096];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return;
  path[n] = '\0';
  execv(path, argv);
  // execv failed: carry on with libgomp's default (spinning) policy.
}

}  // namespace lorad
