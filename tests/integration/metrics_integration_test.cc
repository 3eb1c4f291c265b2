// /metrics of a real lorad after some traffic: a strict Prometheus text-format parse, and the
// families of the inference path, the RPC counters and the vLLM-compatible gauges.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "tests/integration/inference_client.h"
#include "tests/integration/lorad_process.h"
#include "tests/server/http_get.h"
#include "tests/server/prom_text.h"

namespace lorad::testing {
namespace {

TEST(MetricsIntegrationTest, ExpositionParsesAndHasTheFamilies) {
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad({}, &lorad));
  {
    auto stub = v1::Inference::NewStub(lorad.Channel());
    v1::GenerateResponse response;
    ASSERT_TRUE(RunUnary(*stub, GreedyRequest("metrics", 5), &response).ok());
    ASSERT_TRUE(RunStream(*stub, GreedyRequest("metrics", 5)).status.ok());
    EXPECT_FALSE(RunUnary(*stub, GreedyRequest("", 5), &response).ok());
  }
  absl::StatusOr<HttpResponse> http = HttpGet(lorad.metrics_port, "/metrics");
  ASSERT_TRUE(http.ok()) << http.status();
  ASSERT_EQ(http->status, 200);
  absl::StatusOr<std::map<std::string, PromFamily>> families = ParsePromText(http->body);
  ASSERT_TRUE(families.ok()) << families.status();

  const std::map<std::string, std::string> expected = {
      {"lorad_grpc_requests_total", "counter"},
      {"lorad_requests_waiting", "gauge"},
      {"lorad_requests_running", "gauge"},
      {"lorad_time_to_first_token_seconds", "histogram"},
      {"lorad_inter_token_latency_seconds", "histogram"},
      {"lorad_e2e_request_latency_seconds", "histogram"},
      {"lorad_request_queue_time_seconds", "histogram"},
      {"lorad_prompt_tokens_total", "counter"},
      {"lorad_generation_tokens_total", "counter"},
      {"lorad_requests_finished_total", "counter"},
      {"lorad_batch_tokens", "histogram"},
      {"lorad_batch_sequences", "histogram"},
      {"lorad_batch_adapters", "histogram"},
      {"lorad_kv_cache_blocks_used", "gauge"},
      {"lorad_kv_cache_blocks", "gauge"},
      {"vllm:num_requests_waiting", "gauge"},
      {"vllm:num_requests_running", "gauge"},
      {"vllm:kv_cache_usage_perc", "gauge"},
      {"vllm:lora_requests_info", "gauge"},
      {"process_cpu_seconds_total", "counter"},
      {"lorad_build_info", "gauge"},
  };
  for (const auto& [name, type] : expected) {
    auto it = families->find(name);
    ASSERT_NE(it, families->end()) << name << " missing from\n" << http->body;
    EXPECT_EQ(it->second.type, type) << name;
    EXPECT_FALSE(it->second.samples.empty()) << name;
  }
  auto sample = [&](const std::string& family, const std::string& name,
                    const std::map<std::string, std::string>& labels) -> double {
    for (const PromSample& s : families->at(family).samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    ADD_FAILURE() << "no " << name << " with the labels in " << family;
    return -1;
  };
  EXPECT_EQ(sample("lorad_grpc_requests_total", "lorad_grpc_requests_total",
                   {{"method", "lorad.v1.Inference/Generate"}, {"code", "OK"}}),
            1);
  EXPECT_EQ(sample("lorad_grpc_requests_total", "lorad_grpc_requests_total",
                   {{"method", "lorad.v1.Inference/Generate"}, {"code", "INVALID_ARGUMENT"}}),
            1);
  EXPECT_EQ(sample("lorad_grpc_requests_total", "lorad_grpc_requests_total",
                   {{"method", "lorad.v1.Inference/GenerateStream"}, {"code", "OK"}}),
            1);
  EXPECT_EQ(sample("lorad_generation_tokens_total", "lorad_generation_tokens_total", {}), 10);
  EXPECT_EQ(
      sample("lorad_e2e_request_latency_seconds", "lorad_e2e_request_latency_seconds_count", {}),
      2);
  EXPECT_GT(sample("lorad_kv_cache_blocks", "lorad_kv_cache_blocks", {}), 0);
  const PromSample& info = families->at("vllm:lora_requests_info").samples.at(0);
  EXPECT_TRUE(info.labels.contains("running_lora_adapters"));
  EXPECT_TRUE(info.labels.contains("waiting_lora_adapters"));
  EXPECT_TRUE(info.labels.contains("max_lora"));
  EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad));
}

}  // namespace
}  // namespace lorad::testing
