// Helpers for tests that submit requests to a real Engine: a sink that collects one request's
// tokens and final status, and greedy sampling parameters.
#pragma once

#include <future>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "engine/generate_types.h"
#include "engine/sampling/sampling_params.h"

namespace lorad::testing {

// Thread-safe enough for one request: outputs arrive on the scheduler thread; read `ids`
// after `done` is ready.
class CollectSink : public GenerateSink {
 public:
  void OnOutput(GenerateOutput out) override {
    if (!out.token_ids.empty() && first_token == absl::InfinitePast()) first_token = absl::Now();
    ids.insert(ids.end(), out.token_ids.begin(), out.token_ids.end());
    if (out.finished) {
      finished = absl::Now();
      done.set_value(out.status);
    }
  }
  std::vector<int32_t> ids;
  absl::Time first_token = absl::InfinitePast();
  absl::Time finished = absl::InfinitePast();
  std::promise<absl::Status> done;
};

// Greedy decoding of exactly `max_new_tokens` tokens (EOS ignored).
inline SamplingParams Greedy(int32_t max_new_tokens) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.max_new_tokens = max_new_tokens;
  p.ignore_eos = true;
  return p;
}

}  // namespace lorad::testing
