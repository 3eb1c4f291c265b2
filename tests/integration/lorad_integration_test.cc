// Starts the real `lorad` binary on ephemeral ports and checks it from the outside: health over
// gRPC, /metrics over HTTP, loractl, signals, and the exit-2 startup errors.
#include <signal.h>

#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/subprocess.h"
#include "tests/server/http_get.h"

namespace lorad::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kLorad[] = LORAD_BINARY;
constexpr char kLoractl[] = LORACTL_BINARY;
constexpr int kStartTimeoutMs = 20000;

std::string FakeModel() {
  const std::string path = ::testing::TempDir() + "/integration_model.gguf";
  std::ofstream(path, std::ios::binary) << std::string("GGUF\x03\0\0\0", 8);
  return path;
}

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// A lorad started on 127.0.0.1:0 for gRPC and metrics, with the bound addresses it printed.
struct RunningLorad {
  std::unique_ptr<Subprocess> process;
  std::string grpc_address;  // "127.0.0.1:NNNNN"
  int metrics_port = 0;
};

// Starts lorad and reads its "lorad listening on" and "lorad metrics on" lines.
void StartLorad(const std::vector<std::string>& extra_args, RunningLorad* lorad) {
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
                                   "--model=" + FakeModel(), "--data_dir=" + ::testing::TempDir()};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<Subprocess>> process = Subprocess::Start(kLorad, args);
  ASSERT_TRUE(process.ok()) << process.status();
  lorad->process = std::move(*process);

  std::optional<std::string> line = lorad->process->ReadStdoutLine(kStartTimeoutMs);
  ASSERT_TRUE(line.has_value()) << "no startup line; stderr: " << lorad->process->ReadAllStderr();
  ASSERT_THAT(*line, StartsWith("lorad listening on 127.0.0.1:"));
  lorad->grpc_address = line->substr(std::string("lorad listening on ").size());

  line = lorad->process->ReadStdoutLine(kStartTimeoutMs);
  ASSERT_TRUE(line.has_value());
  ASSERT_THAT(*line, StartsWith("lorad metrics on http://127.0.0.1:"));
  std::vector<std::string> parts = absl::StrSplit(*line, absl::ByAnyChar(":/"));
  // "lorad metrics on http", "", "", "127.0.0.1", "PORT", "metrics"
  ASSERT_EQ(parts.size(), 6u) << *line;
  ASSERT_TRUE(absl::SimpleAtoi(parts[4], &lorad->metrics_port)) << *line;
}

grpc::Status CheckHealth(const std::string& address,
                         grpc::health::v1::HealthCheckResponse* response) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return grpc::health::v1::Health::NewStub(channel)->Check(
      &context, grpc::health::v1::HealthCheckRequest(), response);
}

TEST(LoradIntegrationTest, ServesHealthAndMetricsAndExitsZeroOnSigterm) {
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad({}, &lorad));

  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = CheckHealth(lorad.grpc_address, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  absl::StatusOr<HttpResponse> metrics = HttpGet(lorad.metrics_port, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("process_resident_memory_bytes "));
  EXPECT_THAT(metrics->body, HasSubstr("process_cpu_seconds_total "));
  EXPECT_THAT(metrics->body, HasSubstr("lorad_build_info{"));

  lorad.process->Signal(SIGTERM);
  absl::StatusOr<int> code = lorad.process->Wait(10000);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_THAT(lorad.process->ReadAllStderr(), HasSubstr("draining"));
}

TEST(LoradIntegrationTest, SigintAlsoExitsZero) {
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad({"--grace_period_s=1"}, &lorad));
  lorad.process->Signal(SIGINT);
  absl::StatusOr<int> code = lorad.process->Wait(10000);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

TEST(LoradIntegrationTest, LoractlHealthReportsServing) {
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad({}, &lorad));
  absl::StatusOr<RunResult> result =
      RunToCompletion(kLoractl, {"health", "--addr=" + lorad.grpc_address}, 20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_EQ(result->stdout_text, "SERVING\n");

  lorad.process->Signal(SIGTERM);
  ASSERT_TRUE(lorad.process->Wait(10000).ok());
  result =
      RunToCompletion(kLoractl, {"--addr", lorad.grpc_address, "health", "--timeout_s=2"}, 20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->stderr_text, HasSubstr("loractl: health: UNAVAILABLE"));
}

TEST(LoradIntegrationTest, ConfigFileIsReadAndFlagsOverrideIt) {
  const std::string config = ::testing::TempDir() + "/lorad_integration.conf";
  std::ofstream(config) << "listen = 127.0.0.1:1\nmodel = " << FakeModel() << "\n";
  RunningLorad lorad;
  // --listen=127.0.0.1:0 from StartLorad overrides the file's port 1 (which would fail to bind).
  ASSERT_NO_FATAL_FAILURE(StartLorad({"--config=" + config}, &lorad));
  lorad.process->Signal(SIGTERM);
  EXPECT_EQ(*lorad.process->Wait(10000), 0);
}

struct StartupErrorCase {
  const char* name;
  std::vector<std::string> args;
  const char* message_part;
};

class StartupErrorTest : public ::testing::TestWithParam<StartupErrorCase> {};

TEST_P(StartupErrorTest, ExitsTwoWithOneLineOnStderr) {
  absl::StatusOr<RunResult> result = RunToCompletion(kLorad, GetParam().args, 20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(CountLines(result->stderr_text), 1) << result->stderr_text;
  EXPECT_THAT(result->stderr_text, StartsWith("lorad: "));
  EXPECT_THAT(result->stderr_text, HasSubstr(GetParam().message_part));
  EXPECT_EQ(result->stdout_text, "");
}

INSTANTIATE_TEST_SUITE_P(
    Cases, StartupErrorTest,
    ::testing::Values(
        StartupErrorCase{"BadFlag", {"--no_such_flag=1"}, "unknown flag --no_such_flag"},
        StartupErrorCase{"BadValue", {"--grace_period_s=soon"}, "--grace_period_s=soon"},
        StartupErrorCase{
            "MissingModel",
            {"--model=/nonexistent/model.gguf", "--listen=127.0.0.1:0", "--metrics_listen="},
            "/nonexistent/model.gguf"},
        StartupErrorCase{"NotAModel",
                         {"--model=/proc/self/status", "--listen=127.0.0.1:0", "--metrics_listen="},
                         "not a GGUF file"}),
    [](const ::testing::TestParamInfo<StartupErrorCase>& info) { return info.param.name; });

TEST(LoradIntegrationTest, PortInUseExitsTwo) {
  RunningLorad first;
  ASSERT_NO_FATAL_FAILURE(StartLorad({}, &first));
  absl::StatusOr<RunResult> result = RunToCompletion(
      kLorad, {"--listen=" + first.grpc_address, "--metrics_listen=", "--model=" + FakeModel()},
      20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(CountLines(result->stderr_text), 1) << result->stderr_text;
  EXPECT_THAT(result->stderr_text, HasSubstr("address in use"));

  result = RunToCompletion(kLorad,
                           {"--listen=127.0.0.1:0", "--model=" + FakeModel(),
                            "--metrics_listen=127.0.0.1:" + std::to_string(first.metrics_port)},
                           20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(CountLines(result->stderr_text), 1) << result->stderr_text;
  EXPECT_THAT(result->stderr_text, HasSubstr("metrics address"));
}

}  // namespace
}  // namespace lorad::testing
