#include "engine/base/process_memory.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

namespace lorad {

namespace {

int64_t ResidentBytesFrom(const std::string& statm) {
  FILE* f = std::fopen(statm.c_str(), "r");
  if (f == nullptr) return 0;
  long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<int64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

int64_t ResidentBytes() { return ResidentBytesFrom("/proc/self/statm"); }

int64_t ResidentBytesOf(int pid) {
  return ResidentBytesFrom("/proc/" + std::to_string(pid) + "/statm");
}

int OpenDescriptorCount(int pid) {
  std::error_code error;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", error);
  if (error) return -1;
  int count = 0;
  for (; it != std::filesystem::directory_iterator(); it.increment(error)) {
    if (error) return -1;
    ++count;
  }
  return count;
}

int64_t PeakResidentBytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  int64_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    long long v = 0;
    if (std::strncmp(line, "VmHWM:", 6) == 0 && std::sscanf(line + 6, "%lld", &v) == 1) kib = v;
  }
  std::fclose(f);
  return kib * 1024;
}

void ReleaseFreeHeapMemory() { ::malloc_trim(0); }

}  // namespace lorad
