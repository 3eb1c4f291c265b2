// Prometheus process_* metrics (the names the official client libraries export), read from
// /proc at scrape time so they cost nothing between scrapes. Linux only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace lorad::server {

// The fields of /proc/<pid>/stat that the collector uses, in the kernel's units.
struct ProcStat {
  uint64_t utime_ticks = 0;       // User CPU time, clock ticks.
  uint64_t stime_ticks = 0;       // System CPU time, clock ticks.
  uint64_t num_threads = 0;       // Threads in the process.
  uint64_t start_time_ticks = 0;  // Start time after boot, clock ticks.
  uint64_t vsize_bytes = 0;       // Virtual memory size.
  uint64_t rss_pages = 0;         // Resident set size, pages.
};

// Parses the text of /proc/<pid>/stat (the command name may contain spaces and parentheses).
// Returns nullopt if the text is malformed.
std::optional<ProcStat> ParseProcStat(absl::string_view text);

// Parses the "btime" (boot time, seconds since the epoch) line of /proc/stat.
std::optional<uint64_t> ParseBootTime(absl::string_view proc_stat_text);

// Collects process_cpu_seconds_total, process_start_time_seconds,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds and process_threads for this process. Thread-safe: Collect() only reads /proc.
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace lorad::server
