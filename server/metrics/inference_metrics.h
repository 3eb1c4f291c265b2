// Prometheus families of the inference path: the engine's StatsSink (steps, tokens, request
// latencies, KV blocks), per-adapter activity for vLLM's lora_requests_info, and the
// vLLM-compatible gauges that the Gateway API Inference Extension reads. No request ids.
// Per-adapter labels: the comma-joined adapter lists of vllm:lora_requests_info, and the adapter
// label of lorad_adapter_requests_total / lorad_adapter_generation_tokens_total (per-adapter
// traffic), which holds at most kMaxAdapterSeries distinct ids; requests for adapters beyond those
// count under adapter="(other)", so that an unbounded set of adapters cannot grow the exposition
// without end.
#pragma once

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "engine/stats_sink.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace lorad::server {

// Thread-safe. StatsSink methods run on the engine's scheduler thread and only update
// metrics; the Request* methods are called by the Generate reactors.
class InferenceMetrics final : public StatsSink {
 public:
  static constexpr int kMaxAdapterSeries = 1000;

  // Registers the families in `registry`, which must outlive this object. `max_lora` is the
  // max_lora label of vllm:lora_requests_info (adapters one batch may use); `max_queue` is
  // exported as lorad_request_queue_limit (requests queued or running before refusals).
  InferenceMetrics(prometheus::Registry& registry, int max_lora, int max_queue);

  // StatsSink:
  void OnStep(const StepStats& step) override;
  void OnToken(double inter_token_seconds) override;
  void OnRequestFinished(const RequestStats& request) override;

  // A request for `adapter_id` ("" = base) was submitted / produced its first event / ended.
  void RequestQueued(const std::string& adapter_id);
  void RequestStarted(const std::string& adapter_id);
  void RequestEnded(const std::string& adapter_id, bool started);

 private:
  // Re-publishes vllm:lora_requests_info from waiting_/running_.
  void PublishLoraInfo() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  prometheus::Gauge& waiting_;
  prometheus::Gauge& running_;
  prometheus::Gauge& kv_blocks_used_;
  prometheus::Gauge& kv_blocks_total_;
  prometheus::Gauge& vllm_waiting_;
  prometheus::Gauge& vllm_running_;
  prometheus::Gauge& vllm_kv_usage_;
  prometheus::Gauge& adapters_active_;
  prometheus::Gauge& adapter_waiting_;
  prometheus::Gauge& adapter_loads_in_flight_;
  prometheus::Histogram& adapter_wait_;
  prometheus::Histogram& ttft_;
  prometheus::Histogram& inter_token_;
  prometheus::Histogram& e2e_;
  prometheus::Histogram& queue_time_;
  prometheus::Histogram& step_time_;
  prometheus::Histogram& batch_tokens_;
  prometheus::Histogram& batch_sequences_;
  prometheus::Histogram& batch_adapters_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& generation_tokens_;
  prometheus::Family<prometheus::Counter>& finished_;
  prometheus::Family<prometheus::Gauge>& lora_info_;
  prometheus::Family<prometheus::Counter>& adapter_requests_;
  prometheus::Family<prometheus::Counter>& adapter_generation_tokens_;
  const std::string max_lora_;

  absl::Mutex mu_;
  // Requests per adapter id ("" = base, not listed) not yet started / started.
  std::map<std::string, int> waiting_by_adapter_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> running_by_adapter_ ABSL_GUARDED_BY(mu_);
  prometheus::Gauge* lora_info_current_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Adapter ids with their own per-adapter series (at most kMaxAdapterSeries).
  absl::flat_hash_set<std::string> adapter_series_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::server
