// Starts the real `lorad` binary on ephemeral ports and checks it from the outside: health over
// gRPC, /metrics over HTTP, loractl, signals, and the exit-2 startup errors.
#include <signal.h>

#include <condition_variable>
#include <fstream>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/lorad_process.h"
#include "tests/server/http_get.h"

namespace lorad::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
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

// Calls `method` with an empty request body through a generic stub.
grpc::Status CallRaw(const std::string& address, const std::string& method) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty_body("");
  grpc::ByteBuffer request(&empty_body, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    done_cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  done_cv.wait(lock, [&] { return done; });
  return status;
}

TEST(LoradIntegrationTest, UnknownMethodsGetUnimplementedAndKnownOnesStillServe) {
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad({}, &lorad));
  for (const char* method : {"/lorad.v1.Inference/NoSuchMethod", "/lorad.v1.NoSuchService/Generate",
                             "/other.pkg.Service/Call"}) {
    const grpc::Status status = CallRaw(lorad.grpc_address, method);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
    EXPECT_THAT(status.error_message(), HasSubstr(method));
  }
  // An empty Tokenize request parses: it is answered by the service, not by the interceptor.
  const grpc::Status known = CallRaw(lorad.grpc_address, "/lorad.v1.Inference/Tokenize");
  EXPECT_NE(known.error_code(), grpc::StatusCode::UNIMPLEMENTED) << known.error_message();
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_TRUE(CheckHealth(lorad.grpc_address, &response).ok());
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
  const std::string config = TestDir() + "/lorad_integration.conf";
  std::ofstream(config) << "listen = 127.0.0.1:1\nmodel = " << TinyModelPath() << "\n";
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
        StartupErrorCase{"MissingModel",
                         {"--model=/nonexistent/model.gguf", "--listen=127.0.0.1:0",
                          "--metrics_listen=", "--http_listen="},
                         "/nonexistent/model.gguf"},
        StartupErrorCase{"NotAModel",
                         {"--model=/proc/self/status", "--listen=127.0.0.1:0",
                          "--metrics_listen=", "--http_listen="},
                         "not a GGUF file"}),
    [](const ::testing::TestParamInfo<StartupErrorCase>& info) { return info.param.name; });

TEST(LoradIntegrationTest, ModelThatFailsToLoadExitsTwoWithOneLine) {
  const std::string path = TestDir() + "/integration_header_only.gguf";
  std::ofstream(path, std::ios::binary) << std::string("GGUF\x03\0\0\0", 8);
  absl::StatusOr<RunResult> result = RunToCompletion(
      kLorad, {"--listen=127.0.0.1:0", "--metrics_listen=", "--http_listen=", "--model=" + path},
      20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(CountLines(result->stderr_text), 1) << result->stderr_text;
  EXPECT_THAT(result->stderr_text, StartsWith("lorad: model " + path + ": "));
}

TEST(LoradIntegrationTest, LoractlGenerateAndTokenize) {
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad({"--max_new_tokens=16"}, &lorad));
  const std::string addr = "--addr=" + lorad.grpc_address;
  absl::StatusOr<RunResult> result = RunToCompletion(
      kLoractl,
      {"generate", addr, "--max_new_tokens=6", "--ignore_eos", "--usage", "--temperature=0",
       "--stop=never-matches", "--stop=nor-this", "hello", "world"},
      20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_THAT(result->stderr_text, HasSubstr("finish_reason=FINISH_REASON_LENGTH"));
  EXPECT_THAT(result->stderr_text, HasSubstr("completion_tokens=6"));

  // --chat with the prompt on stdin is not testable through RunToCompletion's closed stdin, so
  // an empty stdin checks the error path instead: empty prompt -> exit 1 with the code name.
  result = RunToCompletion(kLoractl, {"generate", addr}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->stderr_text,
              HasSubstr("loractl: generate: INVALID_ARGUMENT: prompt is empty"));

  result =
      RunToCompletion(kLoractl, {"generate", addr, "--chat", "hi", "--max_new_tokens=99"}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->stderr_text, HasSubstr("INVALID_ARGUMENT: sampling.max_new_tokens"));

  result = RunToCompletion(kLoractl, {"generate", addr, "--temperature=warm", "x"}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->stderr_text, HasSubstr("--temperature=warm"));

  result = RunToCompletion(kLoractl, {"tokenize", addr, "hello"}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_THAT(result->stdout_text, ::testing::MatchesRegex("[0-9]+( [0-9]+)*\n"));
  EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad));
}

TEST(LoradIntegrationTest, PortInUseExitsTwo) {
  RunningLorad first;
  ASSERT_NO_FATAL_FAILURE(StartLorad({}, &first));
  absl::StatusOr<RunResult> result =
      RunToCompletion(kLorad,
                      {"--listen=" + first.grpc_address,
                       "--metrics_listen=", "--http_listen=", "--model=" + TinyModelPath()},
                      20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(CountLines(result->stderr_text), 1) << result->stderr_text;
  EXPECT_THAT(result->stderr_text, HasSubstr("address in use"));

  result = RunToCompletion(
      kLorad,
      {"--listen=127.0.0.1:0", "--model=" + TinyModelPath(),
       "--metrics_listen=127.0.0.1:" + std::to_string(first.metrics_port), "--http_listen="},
      20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(CountLines(result->stderr_text), 1) << result->stderr_text;
  EXPECT_THAT(result->stderr_text, HasSubstr("--metrics_listen"));

  result = RunToCompletion(
      kLorad,
      {"--listen=127.0.0.1:0", "--model=" + TinyModelPath(),
       "--metrics_listen=", "--http_listen=127.0.0.1:" + std::to_string(first.http_port)},
      20000);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_EQ(CountLines(result->stderr_text), 1) << result->stderr_text;
  EXPECT_THAT(result->stderr_text, HasSubstr("--http_listen"));
}

}  // namespace
}  // namespace lorad::testing
