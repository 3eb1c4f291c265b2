// Shutdown signals without signal handlers: SIGTERM and SIGINT are blocked in every thread and
// taken synchronously with sigwait(), so no work ever runs in signal context.
#pragma once

namespace lorad::server {

// Blocks SIGTERM and SIGINT in the calling thread. Threads created afterwards inherit the mask,
// so call this first thing in main(), before any library starts a thread.
void BlockShutdownSignals();

// Waits until SIGTERM or SIGINT is delivered to the process; returns the signal number.
// Requires BlockShutdownSignals() to have run before any thread was created.
int WaitForShutdownSignal();

}  // namespace lorad::server
