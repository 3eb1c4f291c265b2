// Building prometheus::MetricFamily values for collectors that compute their samples at scrape
// time (adapter cache, fine-tune jobs, process).
// Thread-safety: stateless functions.
#pragma once

#include <string>
#include <vector>

#include "prometheus/metric_family.h"

namespace lorad::server {

// An empty family.
prometheus::MetricFamily MetricFamilyOf(std::string name, std::string help,
                                        prometheus::MetricType type);

// Appends a sample with `labels` to `family`: a counter or a gauge value, as the family's type
// says.
void AddSample(prometheus::MetricFamily& family, double value,
               std::vector<prometheus::ClientMetric::Label> labels = {});

}  // namespace lorad::server
