// Fine-tune job metrics, read from the job manager's JobStats at scrape time: jobs by state,
// trained tokens, and the running job's loss, eval loss, throughput and step.
#pragma once

#include <memory>
#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/jobs/job_stats.h"

namespace lorad::server {

// Keeps the stats alive while registered.
class JobMetricsCollector final : public prometheus::Collectable {
 public:
  explicit JobMetricsCollector(std::shared_ptr<const JobStats> stats) : stats_(std::move(stats)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const std::shared_ptr<const JobStats> stats_;
};

}  // namespace lorad::server
