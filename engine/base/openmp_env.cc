#include "engine/base/openmp_env.h"

#include <unistd.h>

#include <cstdlib>

namespace lorad {

void ReexecWithPassiveOpenMpWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);
  // execv failed: carry on with libgomp's default (spinning) policy.
}

}  // namespace lorad
