// The process's own memory: its resident set as the kernel counts it, and giving freed heap
// pages back to the system. A fine-tune job allocates and frees hundreds of MB of activations
// and gradients; glibc keeps freed chunks in its arenas (and, after large frees, raises its
// mmap threshold so later large blocks come from the arenas too), so without a trim the
// daemon's RSS stays at the job's peak after the job ends.
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace lorad {

// Resident set size in bytes (/proc/self/statm); 0 if it cannot be read.
int64_t ResidentBytes();
// The same for process `pid` (/proc/<pid>/statm), e.g. a daemon a test or a soak watches.
int64_t ResidentBytesOf(int pid);
// Open file descriptors of process `pid` (entries of /proc/<pid>/fd); -1 if unreadable.
int OpenDescriptorCount(int pid);
// Peak resident set size in bytes since the process started (VmHWM); 0 if unknown.
int64_t PeakResidentBytes();
// Returns free heap memory of every malloc arena to the system (glibc malloc_trim). Takes
// milliseconds on a large heap: call it when a large workload ends, not per request.
void ReleaseFreeHeapMemory();

}  // namespace lorad
