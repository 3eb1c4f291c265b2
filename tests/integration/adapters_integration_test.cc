// The Adapters service of a real lorad on the tiny model and tiny PEFT adapters: load, get,
// list, unload, preload from config; generation per adapter (concurrent streams over several
// adapters equal their unary results); bad sources and malformed directories; adapter-cache
// metrics; loractl adapters.
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lorad/v1/adapters.grpc.pb.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "tests/fixtures/tiny_adapter.h"
#include "tests/integration/inference_client.h"
#include "tests/integration/lorad_process.h"
#include "tests/server/http_get.h"

namespace lorad::testing {
namespace {

using ::testing::HasSubstr;

// An adapter root with tiny adapters "good" and "other" (different seeds), a malformed
// directory "broken", and an unrelated directory outside it.
std::string MakeAdapterRoot() {
  const std::string root = TestDir() + "/lorad_adapter_root";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root + "/broken");
  TinyAdapterOptions options;
  options.b_stddev = 0.5f;
  options.target_modules = {"q_proj", "v_proj", "o_proj", "down_proj"};
  EXPECT_TRUE(WriteTinyPeftAdapter(TinyModelOptions(), options, root + "/good").ok());
  options.seed = 99;
  EXPECT_TRUE(WriteTinyPeftAdapter(TinyModelOptions(), options, root + "/other").ok());
  std::filesystem::copy_file(root + "/good/adapter_model.safetensors",
                             root + "/broken/adapter_model.safetensors");
  std::ofstream(root + "/broken/adapter_config.json") << "{ not json";
  return root;
}

class AdaptersIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    lorad_ = new RunningLorad;
    ASSERT_NO_FATAL_FAILURE(
        StartLorad({"--adapter_root=" + MakeAdapterRoot(), "--preload_adapters=pre=good"}, lorad_));
  }
  static void TearDownTestSuite() {
    EXPECT_NO_FATAL_FAILURE(StopLorad(lorad_));
    delete lorad_;
  }
  void SetUp() override {
    ASSERT_NE(lorad_, nullptr);
    channel_ = lorad_->Channel();
    adapters_ = v1::Adapters::NewStub(channel_);
    inference_ = v1::Inference::NewStub(channel_);
  }

  grpc::Status Load(const std::string& id, const std::string& source, v1::AdapterInfo* info) {
    grpc::ClientContext context;
    v1::LoadAdapterRequest request;
    request.set_adapter_id(id);
    request.set_source(source);
    v1::LoadAdapterResponse response;
    grpc::Status status = adapters_->LoadAdapter(&context, request, &response);
    if (info != nullptr) *info = response.adapter();
    return status;
  }

  static RunningLorad* lorad_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Adapters::Stub> adapters_;
  std::unique_ptr<v1::Inference::Stub> inference_;
};
RunningLorad* AdaptersIntegrationTest::lorad_ = nullptr;

TEST_F(AdaptersIntegrationTest, LoadGetListUnload) {
  v1::AdapterInfo info;
  grpc::Status status = Load("a1", "good", &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(info.adapter_id(), "a1");
  EXPECT_EQ(info.rank(), 4u);
  EXPECT_EQ(info.alpha(), 8.0f);
  EXPECT_EQ(info.tier(), v1::RESIDENCY_TIER_HOST);
  EXPECT_EQ(info.digest().size(), 64u);
  EXPECT_GE(info.version(), 1u);
  EXPECT_GT(info.bytes(), 0u);
  EXPECT_THAT(info.target_modules(), ::testing::Contains("q_proj"));

  {
    grpc::ClientContext context;
    v1::ListAdaptersResponse list;
    ASSERT_TRUE(adapters_->ListAdapters(&context, v1::ListAdaptersRequest(), &list).ok());
    std::vector<std::string> ids;
    for (const v1::AdapterInfo& a : list.adapters()) ids.push_back(a.adapter_id());
    EXPECT_THAT(ids, ::testing::IsSupersetOf({"a1", "pre"}));
  }
  {
    grpc::ClientContext context;
    v1::GetAdapterRequest request;
    request.set_adapter_id("a1");
    v1::GetAdapterResponse response;
    ASSERT_TRUE(adapters_->GetAdapter(&context, request, &response).ok());
    EXPECT_EQ(response.adapter().digest(), info.digest());
  }
  v1::GenerateRequest request = GreedyRequest("hello", 4);
  request.set_adapter_id("a1");
  v1::GenerateResponse response;
  ASSERT_TRUE(RunUnary(*inference_, request, &response).ok());
  {
    grpc::ClientContext context;
    v1::UnloadAdapterRequest unload;
    unload.set_adapter_id("a1");
    v1::UnloadAdapterResponse unloaded;
    ASSERT_TRUE(adapters_->UnloadAdapter(&context, unload, &unloaded).ok());
  }
  status = RunUnary(*inference_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  grpc::ClientContext context;
  v1::GetAdapterRequest get;
  get.set_adapter_id("a1");
  v1::GetAdapterResponse got;
  EXPECT_EQ(adapters_->GetAdapter(&context, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AdaptersIntegrationTest, ConcurrentStreamsOverSeveralAdaptersEqualUnary) {
  ASSERT_TRUE(Load("s1", "good", nullptr).ok());
  ASSERT_TRUE(Load("s2", "other", nullptr).ok());
  const std::vector<std::string> adapter_ids = {"", "s1", "s2", "pre", "", "s1"};
  std::vector<v1::GenerateResponse> unary(adapter_ids.size());
  for (size_t i = 0; i < adapter_ids.size(); ++i) {
    v1::GenerateRequest request = GreedyRequest("once upon", 16);
    request.set_adapter_id(adapter_ids[i]);
    grpc::Status status = RunUnary(*inference_, request, &unary[i]);
    ASSERT_TRUE(status.ok()) << adapter_ids[i] << ": " << status.error_message();
  }
  // The adapters change the model: s1 and s2 differ from the base and from each other.
  EXPECT_NE(unary[0].text(), unary[1].text());
  EXPECT_NE(unary[1].text(), unary[2].text());
  EXPECT_EQ(unary[1].text(), unary[3].text());  // "pre" is the same files as s1.
  std::vector<StreamResult> streams(adapter_ids.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < adapter_ids.size(); ++i) {
    threads.emplace_back([&, i] {
      v1::GenerateRequest request = GreedyRequest("once upon", 16);
      request.set_adapter_id(adapter_ids[i]);
      streams[i] = RunStream(*inference_, request);
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (size_t i = 0; i < adapter_ids.size(); ++i) {
    ASSERT_TRUE(streams[i].status.ok()) << streams[i].status.error_message();
    EXPECT_EQ(streams[i].text, unary[i].text()) << "adapter '" << adapter_ids[i] << "'";
  }
}

struct BadLoadCase {
  const char* name;
  const char* adapter_id;
  const char* source;
  grpc::StatusCode code;
  const char* message_part;
};

class BadLoadTest : public AdaptersIntegrationTest,
                    public ::testing::WithParamInterface<BadLoadCase> {};

TEST_P(BadLoadTest, GetsItsCodeAndTheServerStaysUp) {
  const BadLoadCase& c = GetParam();
  grpc::Status status = Load(c.adapter_id, c.source, nullptr);
  EXPECT_EQ(status.error_code(), c.code) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(c.message_part));
  v1::GenerateResponse response;
  EXPECT_TRUE(RunUnary(*inference_, GreedyRequest("up", 2), &response).ok());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadLoadTest,
    ::testing::Values(
        BadLoadCase{"DotDot", "x", "../good", grpc::StatusCode::INVALID_ARGUMENT, ".."},
        BadLoadCase{"Absolute", "x", "/etc", grpc::StatusCode::INVALID_ARGUMENT, "/etc"},
        BadLoadCase{"Missing", "x", "nope", grpc::StatusCode::NOT_FOUND, "nope"},
        BadLoadCase{"Malformed", "x", "broken", grpc::StatusCode::INVALID_ARGUMENT,
                    "adapter_config.json"},
        BadLoadCase{"EmptyId", "", "good", grpc::StatusCode::INVALID_ARGUMENT, "adapter_id"}),
    [](const ::testing::TestParamInfo<BadLoadCase>& info) { return info.param.name; });

TEST_F(AdaptersIntegrationTest, UnloadLetsRunningRequestsFinish) {
  ASSERT_TRUE(Load("busy", "good", nullptr).ok());
  grpc::ClientContext context;
  v1::GenerateRequest request = GreedyRequest("long", 1500);
  request.set_adapter_id("busy");
  auto reader = inference_->GenerateStream(&context, request);
  v1::GenerateResponse message;
  ASSERT_TRUE(reader->Read(&message));
  size_t tokens = message.token_ids_size();
  {
    grpc::ClientContext unload_context;
    v1::UnloadAdapterRequest unload;
    unload.set_adapter_id("busy");
    v1::UnloadAdapterResponse unloaded;
    ASSERT_TRUE(adapters_->UnloadAdapter(&unload_context, unload, &unloaded).ok());
  }
  while (reader->Read(&message)) tokens += message.token_ids_size();
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, 1500u);
  v1::GenerateResponse response;
  EXPECT_EQ(RunUnary(*inference_, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AdaptersIntegrationTest, UnknownAdapterIsNotFound) {
  v1::GenerateRequest request = GreedyRequest("hi", 2);
  request.set_adapter_id("never-loaded");
  v1::GenerateResponse response;
  grpc::Status status = RunUnary(*inference_, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("never-loaded"));
}

TEST_F(AdaptersIntegrationTest, CacheMetricsAndLoractl) {
  const std::string addr = "--addr=" + lorad_->grpc_address;
  absl::StatusOr<RunResult> result =
      RunToCompletion(kLoractl, {"adapters", "load", "cli", "good", "--pin", addr}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_THAT(result->stdout_text, HasSubstr("pinned: true"));
  result = RunToCompletion(kLoractl, {"adapters", "list", addr}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result->stdout_text, HasSubstr("cli\thost\t4\t8\t"));
  result = RunToCompletion(kLoractl, {"adapters", "get", "nope", addr}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->stderr_text, HasSubstr("loractl: adapters get: NOT_FOUND"));
  result = RunToCompletion(kLoractl, {"adapters", "unload", "cli", addr}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;

  absl::StatusOr<HttpResponse> http = HttpGet(lorad_->metrics_port, "/metrics");
  ASSERT_TRUE(http.ok());
  for (const char* family :
       {"lorad_adapter_cache_hits_total", "lorad_adapter_cache_misses_total",
        "lorad_adapter_cache_evictions_total", "lorad_adapter_loads_total{tier=\"host\"}",
        "lorad_adapter_load_seconds_total", "lorad_adapters_resident{tier=\"host\"}",
        "lorad_adapter_bytes{tier=\"host\"}"}) {
    EXPECT_THAT(http->body, HasSubstr(family));
  }
}

}  // namespace
}  // namespace lorad::testing
