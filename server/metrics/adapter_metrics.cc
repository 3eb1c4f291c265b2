#include "server/metrics/adapter_metrics.h"

#include <string>
#include <utility>

#include "server/metrics/metric_families.h"

namespace lorad::server {

std::vector<prometheus::MetricFamily> AdapterMetricsCollector::Collect() const {
  using prometheus::MetricType;
  const adapters::AdapterStore::Stats stats = store_->GetStats();
  std::vector<prometheus::MetricFamily> families;
  auto counter = [&](const char* name, const char* help, double value) {
    families.push_back(MetricFamilyOf(name, help, MetricType::Counter));
    AddSample(families.back(), value);
  };
  counter("lorad_adapter_cache_hits_total", "Adapter acquisitions served from memory.",
          static_cast<double>(stats.hits));
  counter("lorad_adapter_cache_misses_total", "Adapter acquisitions that had to load from disk.",
          static_cast<double>(stats.misses));
  counter("lorad_adapter_cache_evictions_total", "Resident adapters dropped to the disk tier.",
          static_cast<double>(stats.evictions));
  counter("lorad_adapter_load_failures_total", "Adapter loads that failed.",
          static_cast<double>(stats.load_failures));
  counter("lorad_adapter_load_no_room_total",
          "Adapter loads deferred: no room until adapters in use are released.",
          static_cast<double>(stats.no_room));
  counter("lorad_adapter_digest_reuses_total",
          "Reloads of unchanged adapter files that reused the digest instead of hashing.",
          static_cast<double>(stats.digest_reuses));

  // Loads come from the disk tier into host memory (the only load path of a CPU build).
  families.push_back(MetricFamilyOf("lorad_adapter_loads_total",
                                    "Successful adapter loads, by tier.", MetricType::Counter));
  AddSample(families.back(), static_cast<double>(stats.loads), {{"tier", "host"}});
  families.push_back(MetricFamilyOf("lorad_adapter_load_seconds_total",
                                    "Total wall time of successful adapter loads, by tier.",
                                    MetricType::Counter));
  AddSample(families.back(), stats.load_seconds, {{"tier", "host"}});

  families.push_back(
      MetricFamilyOf("lorad_adapters_registered", "Registered adapters.", MetricType::Gauge));
  AddSample(families.back(), static_cast<double>(stats.registered));
  families.push_back(
      MetricFamilyOf("lorad_adapters_resident", "Adapters in memory, by tier.", MetricType::Gauge));
  AddSample(families.back(), static_cast<double>(stats.resident), {{"tier", "host"}});
  AddSample(families.back(), static_cast<double>(stats.registered - stats.resident),
            {{"tier", "disk"}});
  families.push_back(
      MetricFamilyOf("lorad_adapter_bytes", "Adapter A/B bytes, by tier.", MetricType::Gauge));
  AddSample(families.back(), static_cast<double>(stats.device_bytes), {{"tier", "device"}});
  AddSample(families.back(), static_cast<double>(stats.host_bytes), {{"tier", "host"}});
  AddSample(families.back(), static_cast<double>(stats.disk_bytes), {{"tier", "disk"}});
  AddSample(families.back(), static_cast<double>(stats.retired_bytes), {{"tier", "retired"}});
  families.push_back(MetricFamilyOf("lorad_adapter_pinned_bytes",
                                    "The pinned part of the host tier's adapter bytes.",
                                    MetricType::Gauge));
  AddSample(families.back(), static_cast<double>(stats.pinned_bytes));
  return families;
}

}  // namespace lorad::server
