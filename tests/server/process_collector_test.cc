#include "server/metrics/process_collector.h"

#include <set>

#include "gtest/gtest.h"

namespace lorad::server {
namespace {

TEST(ProcessCollectorTest, ParsesProcStatWithAwkwardCommandName) {
  // Fields 1..24 of /proc/<pid>/stat; the command name contains ") (" and spaces.
  const char* text =
      "1234 (lo rad) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 "
      "250 50 0 0 20 0 7 0 98765 123456789 4321 18446744073709551615\n";
  std::optional<ProcStat> stat = ParseProcStat(text);
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->utime_ticks, 250u);
  EXPECT_EQ(stat->stime_ticks, 50u);
  EXPECT_EQ(stat->num_threads, 7u);
  EXPECT_EQ(stat->start_time_ticks, 98765u);
  EXPECT_EQ(stat->vsize_bytes, 123456789u);
  EXPECT_EQ(stat->rss_pages, 4321u);
}

TEST(ProcessCollectorTest, RejectsTruncatedStat) {
  EXPECT_FALSE(ParseProcStat("1234 (lorad) S 1 2 3").has_value());
  EXPECT_FALSE(ParseProcStat("garbage").has_value());
}

TEST(ProcessCollectorTest, ParsesBootTime) {
  EXPECT_EQ(ParseBootTime("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"), 1700000000u);
  EXPECT_FALSE(ParseBootTime("cpu 1 2 3\n").has_value());
}

TEST(ProcessCollectorTest, CollectsTheStandardFamiliesForThisProcess) {
  std::set<std::string> names;
  double resident_bytes = 0;
  double open_fds = 0;
  for (const prometheus::MetricFamily& family : ProcessCollector().Collect()) {
    names.insert(family.name);
    ASSERT_EQ(family.metric.size(), 1u) << family.name;
    if (family.name == "process_resident_memory_bytes") {
      resident_bytes = family.metric[0].gauge.value;
    }
    if (family.name == "process_open_fds") open_fds = family.metric[0].gauge.value;
  }
  for (const char* expected :
       {"process_cpu_seconds_total", "process_start_time_seconds", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_open_fds", "process_max_fds", "process_threads"}) {
    EXPECT_TRUE(names.count(expected)) << expected;
  }
  EXPECT_GT(resident_bytes, 1 << 20);
  EXPECT_GE(open_fds, 3);  // stdin, stdout, stderr at least.
}

}  // namespace
}  // namespace lorad::server
