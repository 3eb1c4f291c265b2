// LoradServer in-process on ephemeral ports with the tiny model: health while loading and
// after, UNIMPLEMENTED services, reflection, /metrics, draining.
#include "server/server.h"

#include <fstream>
#include <thread>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "lorad/v1/adapters.grpc.pb.h"
#include "lorad/v1/finetuning.grpc.pb.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "server/common/host_port.h"
#include "server/metrics/metrics.h"
#include "tests/fixtures/temp_dir.h"
#include "tests/fixtures/tiny_model.h"
#include "tests/server/http_get.h"
#include "tests/server/reflection_client.h"

namespace lorad::server {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using ::testing::IsSupersetOf;

// A GGUF header and nothing else: passes the cheap checks of Create(), fails to load.
// A directory private to this test process, removed at exit.
const std::string& TestDir() {
  static const lorad::testing::ScopedTempDir dir;
  return dir.path();
}

std::string FakeModel() {
  const std::string path = TestDir() + "/server_test_model.gguf";
  std::ofstream(path, std::ios::binary) << std::string("GGUF\x03\0\0\0", 8);
  return path;
}

const std::string& TinyModel() {
  static const std::string* path = [] {
    auto* p = new std::string(TestDir() + "/server_test_tiny.gguf");
    EXPECT_TRUE(lorad::testing::WriteTinyGguf(lorad::testing::TinyModelOptions(), *p).ok());
    return p;
  }();
  return *path;
}

ServerConfig TestConfig() {
  ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "127.0.0.1:0";
  config.http_listen = "127.0.0.1:0";  // not the default 8000, which other tests may hold
  config.model = TinyModel();
  config.threads = 1;
  config.kv_cache_mb = 16;
  config.data_dir = TestDir();
  return config;
}

int PortOf(const std::string& address) { return ParseHostPort(address)->port; }

HealthCheckResponse::ServingStatus Health(const std::shared_ptr<grpc::Channel>& channel,
                                          const std::string& service, grpc::Status* status) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  *status = grpc::health::v1::Health::NewStub(channel)->Check(&context, request, &response);
  return response.status();
}

// One server shared by the tests that do not stop it (stopping the metrics endpoint takes
// seconds, so each test starting its own would be slow).
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<LoradServer>> server = LoradServer::Create(TestConfig());
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_TRUE((*server)->Start().ok());
    ASSERT_TRUE((*server)->LoadModel().ok());
    server_ = server->release();
    channel_ = new std::shared_ptr<grpc::Channel>(
        grpc::CreateChannel(server_->listen_address(), grpc::InsecureChannelCredentials()));
  }

  static void TearDownTestSuite() {
    delete channel_;
    delete server_;
  }

  HealthCheckResponse::ServingStatus Health(const std::string& service, grpc::Status* status) {
    return server::Health(*channel_, service, status);
  }

  static LoradServer* server_;
  static std::shared_ptr<grpc::Channel>* channel_;
};

LoradServer* ServerTest::server_ = nullptr;
std::shared_ptr<grpc::Channel>* ServerTest::channel_ = nullptr;

TEST_F(ServerTest, BindsEphemeralPorts) {
  EXPECT_GT(PortOf(server_->listen_address()), 0);
  EXPECT_GT(PortOf(server_->metrics_address()), 0);
  EXPECT_TRUE(server_->serving());
}

TEST_F(ServerTest, HealthIsServingForServerAndEachService) {
  for (const char* service :
       {"", "lorad.v1.Inference", "lorad.v1.Adapters", "lorad.v1.FineTuning"}) {
    grpc::Status status;
    EXPECT_EQ(Health(service, &status), HealthCheckResponse::SERVING) << service;
    EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
  }
  grpc::Status status;
  Health("no.such.Service", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, GeneratesWithTheLoadedModel) {
  grpc::ClientContext context;
  lorad::v1::GenerateRequest request;
  request.set_prompt("hello");
  request.mutable_sampling()->set_max_new_tokens(3);
  request.mutable_sampling()->set_ignore_eos(true);
  lorad::v1::GenerateResponse response;
  const grpc::Status status =
      lorad::v1::Inference::NewStub(*channel_)->Generate(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.token_ids_size(), 3);
  EXPECT_EQ(response.finish_reason(), lorad::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(response.usage().completion_tokens(), 3u);
}

TEST_F(ServerTest, AdaptersAndFineTuningAreWired) {
  {
    grpc::ClientContext context;
    lorad::v1::ListAdaptersResponse response;
    const grpc::Status status = lorad::v1::Adapters::NewStub(*channel_)->ListAdapters(
        &context, lorad::v1::ListAdaptersRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();  // The adapter store is wired.
  }
  {
    grpc::ClientContext context;
    lorad::v1::CreateJobResponse response;
    const grpc::Status status = lorad::v1::FineTuning::NewStub(*channel_)->CreateJob(
        &context, lorad::v1::CreateJobRequest(), &response);
    // The job manager validates the request: an empty one names the missing adapter id.
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("adapter_id"));
  }
}

TEST_F(ServerTest, WatchingAnUnknownJobIsNotFound) {
  grpc::ClientContext context;
  lorad::v1::WatchJobRequest request;
  request.set_job_id("job-nonexistent");
  auto reader = lorad::v1::FineTuning::NewStub(*channel_)->WatchJob(&context, request);
  lorad::v1::JobEvent event;
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, ReflectionListsAllServices) {
  absl::StatusOr<std::vector<std::string>> services =
      lorad::testing::ListServicesByReflection(*channel_);
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services,
              IsSupersetOf({"lorad.v1.Inference", "lorad.v1.Adapters", "lorad.v1.FineTuning",
                            "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}));
}

TEST_F(ServerTest, MetricsEndpointServesProcessAndBuildInfo) {
  absl::StatusOr<lorad::testing::HttpResponse> response =
      lorad::testing::HttpGet(PortOf(server_->metrics_address()), "/metrics");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  for (const char* expected :
       {"# TYPE process_cpu_seconds_total counter", "process_start_time_seconds ",
        "process_resident_memory_bytes ", "process_open_fds ", "# TYPE lorad_build_info gauge",
        "lorad_build_info{compiler=\"", "version=\"0.1.0\"} 1"}) {
    EXPECT_THAT(response->body, HasSubstr(expected));
  }
  EXPECT_EQ(server_->metrics().TextExposition().find("lorad_build_info") != std::string::npos,
            true);
}

TEST(ServerLoadTest, NotServingUntilTheModelHasLoaded) {
  ServerConfig config = TestConfig();
  config.metrics_listen = "";
  absl::StatusOr<std::unique_ptr<LoradServer>> server = LoradServer::Create(config);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  auto channel =
      grpc::CreateChannel((*server)->listen_address(), grpc::InsecureChannelCredentials());
  grpc::Status status;
  EXPECT_EQ(Health(channel, "", &status), HealthCheckResponse::NOT_SERVING);
  {
    grpc::ClientContext context;
    lorad::v1::GenerateRequest request;
    request.set_prompt("hello");
    lorad::v1::GenerateResponse response;
    const grpc::Status generate =
        lorad::v1::Inference::NewStub(channel)->Generate(&context, request, &response);
    EXPECT_EQ(generate.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(generate.error_message(), HasSubstr("loading"));
  }
  ASSERT_TRUE((*server)->LoadModel().ok());
  EXPECT_EQ(Health(channel, "", &status), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(channel, "lorad.v1.Inference", &status), HealthCheckResponse::SERVING);
  channel.reset();
  (*server)->Shutdown(absl::ZeroDuration());
}

TEST(ServerLoadTest, ModelThatDoesNotLoadIsAnErrorNamingIt) {
  ServerConfig config = TestConfig();
  config.metrics_listen = "";
  config.model = FakeModel();
  absl::StatusOr<std::unique_ptr<LoradServer>> server = LoradServer::Create(config);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  const absl::Status loaded = (*server)->LoadModel();
  EXPECT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.message()), HasSubstr(config.model));
  EXPECT_FALSE((*server)->serving());
}

TEST(ServerShutdownTest, ReportsNotServingToWatchersThenStops) {
  absl::StatusOr<std::unique_ptr<LoradServer>> server = LoradServer::Create(TestConfig());
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  ASSERT_TRUE((*server)->LoadModel().ok());
  auto channel =
      grpc::CreateChannel((*server)->listen_address(), grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  HealthCheckRequest request;
  auto watch = grpc::health::v1::Health::NewStub(channel)->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  std::thread shutdown([&server] { (*server)->Shutdown(absl::Seconds(2)); });
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  context.TryCancel();
  shutdown.join();
  (*server)->Wait();
  EXPECT_FALSE((*server)->serving());

  grpc::Status status;
  Health(channel, "", &status);
  EXPECT_FALSE(status.ok());
  EXPECT_FALSE(lorad::testing::HttpGet(PortOf((*server)->metrics_address()), "/metrics", 1).ok());
}

TEST(ServerCreateTest, RejectsMissingAndNonGgufModels) {
  ServerConfig config = TestConfig();
  config.model = TestDir() + "/missing.gguf";
  EXPECT_EQ(LoradServer::Create(config).status().code(), absl::StatusCode::kNotFound);
  config.model = TestDir() + "/not_a_model.txt";
  std::ofstream(config.model) << "hello";
  EXPECT_EQ(LoradServer::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ServerCreateTest, MetricsCanBeDisabled) {
  ServerConfig config = TestConfig();
  config.metrics_listen = "";
  auto server = LoradServer::Create(config);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start().ok());
  EXPECT_EQ((*server)->metrics_address(), "");
  (*server)->Shutdown(absl::ZeroDuration());
}

TEST(ServerCreateTest, PortInUseIsUnavailable) {
  auto first = LoradServer::Create(TestConfig());
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->Start().ok());

  ServerConfig same_grpc = TestConfig();
  same_grpc.listen = (*first)->listen_address();
  auto second = LoradServer::Create(same_grpc);
  ASSERT_TRUE(second.ok());
  absl::Status status = (*second)->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), HasSubstr(same_grpc.listen));

  ServerConfig same_metrics = TestConfig();
  same_metrics.metrics_listen = (*first)->metrics_address();
  auto third = LoradServer::Create(same_metrics);
  ASSERT_TRUE(third.ok());
  status = (*third)->Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(status.message()), HasSubstr("--metrics_listen"));
  (*first)->Shutdown(absl::ZeroDuration());
}

}  // namespace
}  // namespace lorad::server
