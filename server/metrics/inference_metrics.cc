#include "server/metrics/inference_metrics.h"

#include <chrono>
#include <vector>

#include "absl/strings/str_join.h"

namespace lorad::server {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

// Latency buckets in seconds, from 1 ms to 5 min.
const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
  return kBuckets;
}

// Inter-token latency buckets in seconds, 1 ms to 2.5 s.
const Histogram::BucketBoundaries& TokenBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06,
                                                       0.08,  0.1,    0.15,  0.25, 0.5,  1,    2.5};
  return kBuckets;
}

// Powers of two for counts (tokens, sequences, adapters per step).
Histogram::BucketBoundaries PowersOfTwo(int max) {
  Histogram::BucketBoundaries buckets;
  for (int b = 1; b <= max; b *= 2) buckets.push_back(b);
  return buckets;
}

prometheus::Gauge& Gauge(prometheus::Registry& registry, const char* name, const char* help) {
  return BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Histogram& Hist(prometheus::Registry& registry, const char* name, const char* help,
                            const Histogram::BucketBoundaries& buckets) {
  return BuildHistogram().Name(name).Help(help).Register(registry).Add({}, buckets);
}

prometheus::Counter& Counter(prometheus::Registry& registry, const char* name, const char* help) {
  return BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

}  // namespace

InferenceMetrics::InferenceMetrics(prometheus::Registry& registry, int max_lora, int max_queue)
    : waiting_(Gauge(registry, "lorad_requests_waiting", "Requests queued, not yet scheduled.")),
      running_(Gauge(registry, "lorad_requests_running", "Requests holding KV memory.")),
      kv_blocks_used_(Gauge(registry, "lorad_kv_cache_blocks_used", "KV cache blocks in use.")),
      kv_blocks_total_(Gauge(registry, "lorad_kv_cache_blocks", "KV cache blocks in total.")),
      vllm_waiting_(Gauge(registry, "vllm:num_requests_waiting",
                          "vLLM-compatible: requests waiting to be scheduled.")),
      vllm_running_(Gauge(registry, "vllm:num_requests_running",
                          "vLLM-compatible: requests running on the model.")),
      vllm_kv_usage_(Gauge(registry, "vllm:kv_cache_usage_perc",
                           "vLLM-compatible: fraction of KV cache blocks in use (0 to 1).")),
      adapters_active_(Gauge(registry, "lorad_adapters_active",
                             "Adapters the scheduler holds active (may admit requests).")),
      adapter_waiting_(Gauge(registry, "lorad_requests_waiting_for_adapter",
                             "Queued requests whose adapter is not active yet.")),
      adapter_loads_in_flight_(Gauge(registry, "lorad_adapter_loads_in_flight",
                                     "Adapter reads running on the loader threads.")),
      adapter_wait_(Hist(registry, "lorad_adapter_wait_seconds",
                         "Adapter requests: time from queued to admitted (waiting for the "
                         "adapter to be resident and active, and for a batch slot).",
                         LatencyBuckets())),
      ttft_(Hist(registry, "lorad_time_to_first_token_seconds",
                 "Time from submission to the first generated token.", LatencyBuckets())),
      inter_token_(Hist(registry, "lorad_inter_token_latency_seconds",
                        "Time between consecutive generated tokens of a request.", TokenBuckets())),
      e2e_(Hist(registry, "lorad_e2e_request_latency_seconds",
                "Time from submission to the end of a request.", LatencyBuckets())),
      queue_time_(Hist(registry, "lorad_request_queue_time_seconds",
                       "Time from submission to first scheduled.", LatencyBuckets())),
      step_time_(Hist(registry, "lorad_step_duration_seconds",
                      "Wall time of one forward step and sampling.", LatencyBuckets())),
      batch_tokens_(
          Hist(registry, "lorad_batch_tokens", "Tokens per forward step.", PowersOfTwo(8192))),
      batch_sequences_(Hist(registry, "lorad_batch_sequences", "Sequences per forward step.",
                            PowersOfTwo(1024))),
      batch_adapters_(Hist(registry, "lorad_batch_adapters",
                           "Distinct adapters per forward step (the base model counts as none).",
                           {0, 1, 2, 4, 8, 16, 32, 64, 128})),
      prompt_tokens_(
          Counter(registry, "lorad_prompt_tokens_total", "Prompt tokens of finished requests.")),
      generation_tokens_(Counter(registry, "lorad_generation_tokens_total", "Generated tokens.")),
      finished_(BuildCounter()
                    .Name("lorad_requests_finished_total")
                    .Help("Requests the engine finished, by outcome.")
                    .Register(registry)),
      lora_info_(BuildGauge()
                     .Name("vllm:lora_requests_info")
                     .Help("vLLM-compatible: running and waiting LoRA adapters (comma-separated "
                           "ids); the value is the Unix time of the last change.")
                     .Register(registry)),
      adapter_requests_(BuildCounter()
                            .Name("lorad_adapter_requests_total")
                            .Help("Finished requests per adapter (the base model is not listed).")
                            .Register(registry)),
      adapter_generation_tokens_(BuildCounter()
                                     .Name("lorad_adapter_generation_tokens_total")
                                     .Help("Tokens generated per adapter.")
                                     .Register(registry)),
      max_lora_(std::to_string(max_lora)) {
  Gauge(registry, "lorad_request_queue_limit",
        "Requests that may be queued or running at once (--max_queue); beyond it new requests "
        "get RESOURCE_EXHAUSTED.")
      .Set(max_queue);
  for (const char* outcome : {"stop", "length", "cancelled", "deadline", "error"}) {
    finished_.Add({{"outcome", outcome}});
  }
  absl::MutexLock lock(&mu_);
  PublishLoraInfo();
}

void InferenceMetrics::OnStep(const StepStats& step) {
  waiting_.Set(step.waiting);
  running_.Set(step.running);
  vllm_waiting_.Set(step.waiting);
  vllm_running_.Set(step.running);
  adapters_active_.Set(step.active_adapters);
  adapter_waiting_.Set(step.adapter_waiting);
  adapter_loads_in_flight_.Set(step.adapter_loads_in_flight);
  kv_blocks_used_.Set(static_cast<double>(step.kv_blocks_used));
  kv_blocks_total_.Set(static_cast<double>(step.kv_blocks_total));
  vllm_kv_usage_.Set(step.kv_blocks_total > 0 ? static_cast<double>(step.kv_blocks_used) /
                                                    static_cast<double>(step.kv_blocks_total)
                                              : 0.0);
  if (step.batch_tokens > 0) {
    step_time_.Observe(step.step_seconds);
    batch_tokens_.Observe(step.batch_tokens);
    batch_sequences_.Observe(step.sequences);
    batch_adapters_.Observe(step.distinct_adapters);
  }
}

void InferenceMetrics::OnToken(double inter_token_seconds) {
  inter_token_.Observe(inter_token_seconds);
}

void InferenceMetrics::OnRequestFinished(const RequestStats& request) {
  prompt_tokens_.Increment(request.prompt_tokens);
  generation_tokens_.Increment(request.completion_tokens);
  if (request.completion_tokens > 0) ttft_.Observe(request.ttft_seconds);
  queue_time_.Observe(request.queue_seconds);
  if (!request.adapter_id.empty()) adapter_wait_.Observe(request.adapter_wait_seconds);
  e2e_.Observe(request.e2e_seconds);
  finished_.Add({{"outcome", request.outcome}}).Increment();
  if (request.adapter_id.empty()) return;
  std::string series = "(other)";
  {
    absl::MutexLock lock(&mu_);
    if (adapter_series_.contains(request.adapter_id) ||
        adapter_series_.size() < static_cast<size_t>(kMaxAdapterSeries)) {
      adapter_series_.insert(request.adapter_id);
      series = request.adapter_id;
    }
  }
  adapter_requests_.Add({{"adapter", series}}).Increment();
  adapter_generation_tokens_.Add({{"adapter", series}}).Increment(request.completion_tokens);
}

void InferenceMetrics::RequestQueued(const std::string& adapter_id) {
  if (adapter_id.empty()) return;
  absl::MutexLock lock(&mu_);
  ++waiting_by_adapter_[adapter_id];
  PublishLoraInfo();
}

void InferenceMetrics::RequestStarted(const std::string& adapter_id) {
  if (adapter_id.empty()) return;
  absl::MutexLock lock(&mu_);
  if (--waiting_by_adapter_[adapter_id] <= 0) waiting_by_adapter_.erase(adapter_id);
  ++running_by_adapter_[adapter_id];
  PublishLoraInfo();
}

void InferenceMetrics::RequestEnded(const std::string& adapter_id, bool started) {
  if (adapter_id.empty()) return;
  absl::MutexLock lock(&mu_);
  std::map<std::string, int>& counts = started ? running_by_adapter_ : waiting_by_adapter_;
  if (--counts[adapter_id] <= 0) counts.erase(adapter_id);
  PublishLoraInfo();
}

void InferenceMetrics::PublishLoraInfo() {
  auto ids = [](const std::map<std::string, int>& counts) {
    std::vector<std::string> keys;
    for (const auto& [id, count] : counts) keys.push_back(id);
    return absl::StrJoin(keys, ",");
  };
  const prometheus::Labels labels = {{"running_lora_adapters", ids(running_by_adapter_)},
                                     {"waiting_lora_adapters", ids(waiting_by_adapter_)},
                                     {"max_lora", max_lora_}};
  prometheus::Gauge& gauge = lora_info_.Add(labels);
  if (lora_info_current_ != nullptr && lora_info_current_ != &gauge) {
    lora_info_.Remove(lora_info_current_);
  }
  lora_info_current_ = &gauge;
  gauge.Set(
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace lorad::server
