#include "server/common/signals.h"

#include <pthread.h>
#include <signal.h>

namespace lorad::server {
namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockShutdownSignals() {
  const sigset_t set = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForShutdownSignal() {
  const sigset_t set = ShutdownSignals();
  int signal_number = 0;
  if (sigwait(&set, &signal_number) != 0) return SIGTERM;  // Only EINVAL; cannot happen here.
  return signal_number;
}

}  // namespace lorad::server
