// InferenceMetrics: the StatsSink families and the vLLM-compatible gauges, checked through a
// strict parse of the text exposition.
#include "server/metrics/inference_metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"
#include "tests/server/prom_text.h"

namespace lorad::server {
namespace {

std::map<std::string, testing::PromFamily> Scrape(prometheus::Registry& registry) {
  const std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  absl::StatusOr<std::map<std::string, testing::PromFamily>> families =
      testing::ParsePromText(text);
  EXPECT_TRUE(families.ok()) << families.status() << "\n" << text;
  return families.ok() ? *families : std::map<std::string, testing::PromFamily>();
}

double Value(const testing::PromFamily& family, const std::string& sample_name) {
  for (const testing::PromSample& sample : family.samples) {
    if (sample.name == sample_name) return sample.value;
  }
  ADD_FAILURE() << "no sample " << sample_name;
  return -1;
}

TEST(InferenceMetricsTest, StepAndRequestStatsReachTheirFamilies) {
  prometheus::Registry registry;
  InferenceMetrics metrics(registry, 8, 32);
  StepStats step;
  step.batch_tokens = 12;
  step.sequences = 3;
  step.distinct_adapters = 2;
  step.running = 3;
  step.waiting = 4;
  step.kv_blocks_used = 25;
  step.kv_blocks_total = 100;
  step.step_seconds = 0.01;
  metrics.OnStep(step);
  metrics.OnToken(0.02);
  RequestStats request;
  request.prompt_tokens = 5;
  request.completion_tokens = 7;
  request.ttft_seconds = 0.1;
  request.e2e_seconds = 0.5;
  request.outcome = "length";
  metrics.OnRequestFinished(request);

  auto families = Scrape(registry);
  EXPECT_EQ(Value(families["vllm:num_requests_waiting"], "vllm:num_requests_waiting"), 4);
  EXPECT_EQ(Value(families["vllm:num_requests_running"], "vllm:num_requests_running"), 3);
  EXPECT_DOUBLE_EQ(Value(families["vllm:kv_cache_usage_perc"], "vllm:kv_cache_usage_perc"), 0.25);
  EXPECT_EQ(Value(families["lorad_kv_cache_blocks_used"], "lorad_kv_cache_blocks_used"), 25);
  EXPECT_EQ(Value(families["lorad_prompt_tokens_total"], "lorad_prompt_tokens_total"), 5);
  EXPECT_EQ(Value(families["lorad_generation_tokens_total"], "lorad_generation_tokens_total"), 7);
  EXPECT_EQ(Value(families["lorad_time_to_first_token_seconds"],
                  "lorad_time_to_first_token_seconds_count"),
            1);
  EXPECT_EQ(Value(families["lorad_inter_token_latency_seconds"],
                  "lorad_inter_token_latency_seconds_count"),
            1);
  EXPECT_EQ(Value(families["lorad_batch_adapters"], "lorad_batch_adapters_sum"), 2);
  EXPECT_EQ(families["lorad_e2e_request_latency_seconds"].type, "histogram");
  EXPECT_EQ(Value(families["lorad_request_queue_limit"], "lorad_request_queue_limit"), 32);
  // A base-model request has no per-adapter series.
  EXPECT_TRUE(families["lorad_adapter_requests_total"].samples.empty());
}

double AdapterSample(const testing::PromFamily& family, const std::string& adapter) {
  for (const testing::PromSample& sample : family.samples) {
    if (sample.labels.at("adapter") == adapter) return sample.value;
  }
  return -1;
}

TEST(InferenceMetricsTest, PerAdapterTrafficIsCountedUpToTheSeriesCapThenFolded) {
  prometheus::Registry registry;
  InferenceMetrics metrics(registry, 4, 32);
  RequestStats request;
  request.completion_tokens = 3;
  for (int i = 0; i < InferenceMetrics::kMaxAdapterSeries + 5; ++i) {
    request.adapter_id = "a" + std::to_string(i);
    metrics.OnRequestFinished(request);
  }
  request.adapter_id = "a0";  // already has its series: still counted under its own id
  metrics.OnRequestFinished(request);
  auto families = Scrape(registry);
  const testing::PromFamily& requests = families["lorad_adapter_requests_total"];
  EXPECT_EQ(requests.samples.size(), InferenceMetrics::kMaxAdapterSeries + 1u);
  EXPECT_EQ(AdapterSample(requests, "a0"), 2);
  EXPECT_EQ(AdapterSample(requests, "a1"), 1);
  EXPECT_EQ(AdapterSample(requests, "(other)"), 5);
  EXPECT_EQ(AdapterSample(families["lorad_adapter_generation_tokens_total"], "a0"), 6);
  EXPECT_EQ(AdapterSample(families["lorad_adapter_generation_tokens_total"], "(other)"), 15);
}

TEST(InferenceMetricsTest, LoraRequestsInfoListsWaitingAndRunningAdapters) {
  prometheus::Registry registry;
  InferenceMetrics metrics(registry, 4, 32);
  metrics.RequestQueued("b");
  metrics.RequestQueued("a");
  metrics.RequestQueued("");  // The base model is not an adapter.
  metrics.RequestStarted("a");
  auto families = Scrape(registry);
  const testing::PromFamily& info = families["vllm:lora_requests_info"];
  ASSERT_EQ(info.samples.size(), 1u);
  EXPECT_EQ(info.samples[0].labels.at("running_lora_adapters"), "a");
  EXPECT_EQ(info.samples[0].labels.at("waiting_lora_adapters"), "b");
  EXPECT_EQ(info.samples[0].labels.at("max_lora"), "4");
  EXPECT_GT(info.samples[0].value, 1e9);  // A Unix time.

  metrics.RequestEnded("a", /*started=*/true);
  metrics.RequestEnded("b", /*started=*/false);
  families = Scrape(registry);
  ASSERT_EQ(families["vllm:lora_requests_info"].samples.size(), 1u);
  EXPECT_EQ(families["vllm:lora_requests_info"].samples[0].labels.at("running_lora_adapters"), "");
  EXPECT_EQ(families["vllm:lora_requests_info"].samples[0].labels.at("waiting_lora_adapters"), "");
}

// What the Gateway API Inference Extension's endpoint picker reads (its model-server protocol,
// docs/proposals/003-model-server-protocol): TotalQueuedRequests, TotalRunningRequests and
// KVCacheUtilization as gauges under vLLM's names, and the LoRA affinity gauge
// vllm:lora_requests_info with exactly the labels running_lora_adapters, waiting_lora_adapters
// and max_lora (comma-separated ids) whose value is a Unix time.
TEST(InferenceMetricsTest, GatewayApiInferenceExtensionReadsItsGauges) {
  prometheus::Registry registry;
  InferenceMetrics metrics(registry, 4, 32);
  StepStats step;
  step.waiting = 2;
  step.running = 1;
  step.kv_blocks_used = 3;
  step.kv_blocks_total = 4;
  metrics.OnStep(step);
  metrics.RequestQueued("x");
  metrics.RequestQueued("y");
  metrics.RequestStarted("y");
  auto families = Scrape(registry);
  for (const char* name : {"vllm:num_requests_waiting", "vllm:num_requests_running",
                           "vllm:kv_cache_usage_perc", "vllm:lora_requests_info"}) {
    ASSERT_TRUE(families.contains(name)) << name;
    EXPECT_EQ(families[name].type, "gauge") << name;
    ASSERT_EQ(families[name].samples.size(), 1u) << name;
  }
  EXPECT_EQ(families["vllm:num_requests_waiting"].samples[0].labels.size(), 0u);
  EXPECT_DOUBLE_EQ(families["vllm:kv_cache_usage_perc"].samples[0].value, 0.75);  // 0..1
  const auto& info = families["vllm:lora_requests_info"].samples[0].labels;
  EXPECT_EQ(info.size(), 3u);
  EXPECT_EQ(info.at("running_lora_adapters"), "y");
  EXPECT_EQ(info.at("waiting_lora_adapters"), "x");
  EXPECT_EQ(info.at("max_lora"), "4");
}

TEST(PromTextTest, RejectsMalformedExpositions) {
  EXPECT_FALSE(testing::ParsePromText("foo 1\n").ok());  // No # TYPE.
  EXPECT_FALSE(testing::ParsePromText("# TYPE foo gauge\nfoo{a=\"x} 1\n").ok());
  EXPECT_FALSE(testing::ParsePromText("# TYPE foo gauge\nfoo one\n").ok());
  EXPECT_FALSE(testing::ParsePromText("# TYPE h histogram\nh_sum 1\nh_count 1\n").ok());
  EXPECT_TRUE(
      testing::ParsePromText("# HELP foo x y\n# TYPE foo gauge\nfoo{a=\"\\\"\"} 1.5\n").ok());
}

}  // namespace
}  // namespace lorad::server
