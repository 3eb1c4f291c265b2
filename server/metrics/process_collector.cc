#include "server/metrics/process_collector.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "server/metrics/metric_families.h"

namespace lorad::server {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream file(path);
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily family = MetricFamilyOf(name, help, type);
  AddSample(family, value);
  return family;
}

double CountOpenFds() {
  std::error_code error;
  double count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error)) {
    ++count;
  }
  return count - 1;  // The iterator's own descriptor.
}

}  // namespace

std::optional<ProcStat> ParseProcStat(absl::string_view text) {
  // Fields after the ")" that closes the command name start at field 3 (state).
  const size_t close = text.rfind(')');
  if (close == absl::string_view::npos) return std::nullopt;
  std::vector<absl::string_view> fields =
      absl::StrSplit(text.substr(close + 1), ' ', absl::SkipWhitespace());
  auto field = [&fields](int number, uint64_t* out) {
    const size_t index = static_cast<size_t>(number - 3);
    return index < fields.size() && absl::SimpleAtoi(fields[index], out);
  };
  ProcStat stat;
  if (!field(14, &stat.utime_ticks) || !field(15, &stat.stime_ticks) ||
      !field(20, &stat.num_threads) || !field(22, &stat.start_time_ticks) ||
      !field(23, &stat.vsize_bytes) || !field(24, &stat.rss_pages)) {
    return std::nullopt;
  }
  return stat;
}

std::optional<uint64_t> ParseBootTime(absl::string_view proc_stat_text) {
  for (absl::string_view line : absl::StrSplit(proc_stat_text, '\n')) {
    uint64_t boot_time = 0;
    if (absl::ConsumePrefix(&line, "btime ") && absl::SimpleAtoi(line, &boot_time)) {
      return boot_time;
    }
  }
  return std::nullopt;
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  const double ticks_per_second = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page_bytes = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (std::optional<ProcStat> stat = ParseProcStat(ReadFile("/proc/self/stat"))) {
    families.push_back(
        Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
               MetricType::Counter, (stat->utime_ticks + stat->stime_ticks) / ticks_per_second));
    if (std::optional<uint64_t> boot_time = ParseBootTime(ReadFile("/proc/stat"))) {
      families.push_back(Family(
          "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
          MetricType::Gauge, *boot_time + stat->start_time_ticks / ticks_per_second));
    }
    families.push_back(Family("process_resident_memory_bytes", "Resident memory size in bytes.",
                              MetricType::Gauge, stat->rss_pages * page_bytes));
    families.push_back(Family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                              MetricType::Gauge, static_cast<double>(stat->vsize_bytes)));
    families.push_back(Family("process_threads", "Number of OS threads in the process.",
                              MetricType::Gauge, static_cast<double>(stat->num_threads)));
  }
  families.push_back(Family("process_open_fds", "Number of open file descriptors.",
                            MetricType::Gauge, CountOpenFds()));
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    families.push_back(Family("process_max_fds", "Maximum number of open file descriptors.",
                              MetricType::Gauge, static_cast<double>(limit.rlim_cur)));
  }
  return families;
}

}  // namespace lorad::server
