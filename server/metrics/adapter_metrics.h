// Adapter cache metrics, read from AdapterStore::GetStats() at scrape time: hits, misses,
// evictions, loads and load time, resident adapters and bytes by tier.
#pragma once

#include <memory>
#include <vector>

#include "adapters/adapter_store.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace lorad::server {

// Thread-safe (the store is). Keeps the store alive while registered.
class AdapterMetricsCollector final : public prometheus::Collectable {
 public:
  explicit AdapterMetricsCollector(std::shared_ptr<const adapters::AdapterStore> store)
      : store_(std::move(store)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const std::shared_ptr<const adapters::AdapterStore> store_;
};

}  // namespace lorad::server
