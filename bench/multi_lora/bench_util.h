// Small pieces shared by the multi-LoRA benchmarks: a sink that records token arrival times,
// and percentiles.
#pragma once

#include <algorithm>
#include <future>
#include <vector>

#include "absl/time/clock.h"
#include "engine/generate_types.h"

namespace lorad::bench {

// Token arrival times of one stream; `done` carries the final status.
class TimingSink : public GenerateSink {
 public:
  void OnOutput(GenerateOutput out) override {
    const absl::Time now = absl::Now();
    for (size_t i = 0; i < out.token_ids.size(); ++i) times.push_back(now);
    if (out.finished) done.set_value(out.status);
  }
  std::vector<absl::Time> times;
  std::promise<absl::Status> done;
};

// The `p` quantile (0..1) of `v`, nearest rank; 0 for an empty `v`.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

}  // namespace lorad::bench
