// How the engine reports to metrics without knowing about Prometheus: the server implements
// StatsSink; the default does nothing. Methods are called from the scheduler thread and must
// return quickly.
#pragma once

#include <cstdint>
#include <string>

namespace lorad {

// One forward step, or (batch_tokens == 0) an idle report: no step ran, only the occupancy
// fields (running, waiting, KV, adapters) are set; sent when they change without a step
// (a cancel, a deadline, an adapter load), so that gauges never keep stale values.
struct StepStats {
  int32_t batch_tokens = 0;  // tokens in the forward pass (prefill + decode)
  int32_t prefill_tokens = 0;
  int32_t decode_tokens = 0;
  int32_t sequences = 0;          // sequences in the batch
  int32_t distinct_adapters = 0;  // adapters in the batch (base counts as none)
  int32_t running = 0;            // sequences holding KV memory after the step
  int32_t waiting = 0;            // queued requests not yet admitted
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_total = 0;
  int32_t active_adapters = 0;          // adapters the scheduler holds (may admit)
  int32_t adapter_waiting = 0;          // waiting requests whose adapter is not active yet
  int32_t adapter_loads_in_flight = 0;  // adapter reads running on the loader threads
  double step_seconds = 0.0;            // wall time of the forward and sampling
};

struct RequestStats {
  std::string adapter_id;  // "" for the base model
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  double queue_seconds = 0.0;  // submit -> first scheduled
  double ttft_seconds = 0.0;   // submit -> first token
  double e2e_seconds = 0.0;    // submit -> finished
  // Adapter requests only: reaching the scheduler -> admitted (waiting for the adapter to be
  // resident and active, and for a batch slot); 0 for the base model.
  double adapter_wait_seconds = 0.0;
  const char* outcome = "stop";  // "stop", "length", "cancelled", "deadline", "error"
};

class StatsSink {
 public:
  virtual ~StatsSink() = default;
  virtual void OnStep(const StepStats& /*step*/) {}
  virtual void OnToken(double /*inter_token_seconds*/) {}
  virtual void OnRequestFinished(const RequestStats& /*request*/) {}
};

}  // namespace lorad
