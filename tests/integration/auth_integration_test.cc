// Auth on a real lorad: a table of (token, RPC) -> code for the two roles, health and /metrics
// needing a token unless --open_health / --open_metrics; and loractl's --token.
#include <fstream>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "lorad/v1/adapters.grpc.pb.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "tests/integration/inference_client.h"
#include "tests/integration/lorad_process.h"

namespace lorad::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// GET /metrics on the --metrics_listen port, with `token` as a bearer token unless empty.
httplib::Result ScrapeMetrics(int port, const std::string& token) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
  return client.Get("/metrics", headers);
}

std::string TokensFile() {
  const std::string path = TestDir() + "/lorad_auth_tokens";
  std::ofstream(path) << "# test tokens\ninf-token inference\nadmin-token admin\n";
  return path;
}

struct AuthCase {
  const char* name;
  const char* metadata;  // value of "authorization"; null: none
  bool admin_rpc;        // Adapters.ListAdapters instead of Inference.Generate
  grpc::StatusCode code;
  const char* message_part;
};

class AuthTest : public ::testing::TestWithParam<AuthCase> {
 protected:
  static void SetUpTestSuite() {
    lorad_ = new RunningLorad;
    ASSERT_NO_FATAL_FAILURE(StartLorad(
        {"--auth_tokens_file=" + TokensFile(), "--open_health=true", "--open_metrics=true"},
        lorad_));
  }
  static void TearDownTestSuite() {
    EXPECT_NO_FATAL_FAILURE(StopLorad(lorad_));
    delete lorad_;
  }
  static RunningLorad* lorad_;
};
RunningLorad* AuthTest::lorad_ = nullptr;

TEST_P(AuthTest, AnswersWithTheExpectedCode) {
  ASSERT_NE(lorad_, nullptr);
  const AuthCase& c = GetParam();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  if (c.metadata != nullptr) context.AddMetadata("authorization", c.metadata);
  grpc::Status status;
  if (c.admin_rpc) {
    v1::ListAdaptersResponse response;
    status = v1::Adapters::NewStub(lorad_->Channel())
                 ->ListAdapters(&context, v1::ListAdaptersRequest(), &response);
  } else {
    v1::GenerateResponse response;
    status = v1::Inference::NewStub(lorad_->Channel())
                 ->Generate(&context, GreedyRequest("hi", 2), &response);
  }
  EXPECT_EQ(status.error_code(), c.code) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(c.message_part));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AuthTest,
    ::testing::Values(
        AuthCase{"NoToken", nullptr, false, grpc::StatusCode::UNAUTHENTICATED, "missing"},
        AuthCase{"NotBearer", "Basic abc", false, grpc::StatusCode::UNAUTHENTICATED, "Bearer"},
        AuthCase{"WrongToken", "Bearer nope", false, grpc::StatusCode::UNAUTHENTICATED,
                 "invalid token"},
        AuthCase{"InferenceToken", "Bearer inf-token", false, grpc::StatusCode::OK, ""},
        AuthCase{"AdminTokenCanInfer", "Bearer admin-token", false, grpc::StatusCode::OK, ""},
        AuthCase{"AdminRpcNoToken", nullptr, true, grpc::StatusCode::UNAUTHENTICATED, "missing"},
        AuthCase{"AdminRpcWrongRole", "Bearer inf-token", true, grpc::StatusCode::PERMISSION_DENIED,
                 "role admin"},
        AuthCase{"AdminRpcAdminToken", "Bearer admin-token", true, grpc::StatusCode::OK, ""}),
    [](const ::testing::TestParamInfo<AuthCase>& info) { return info.param.name; });

TEST_F(AuthTest, HealthStaysOpenAndLoractlSendsItsToken) {
  ASSERT_NE(lorad_, nullptr);
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_TRUE(grpc::health::v1::Health::NewStub(lorad_->Channel())
                  ->Check(&context, grpc::health::v1::HealthCheckRequest(), &response)
                  .ok());
  const std::string addr = "--addr=" + lorad_->grpc_address;
  absl::StatusOr<RunResult> result =
      RunToCompletion(kLoractl, {"tokenize", addr, "--token=inf-token", "hi"}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  result = RunToCompletion(kLoractl, {"tokenize", addr, "--token=bad", "hi"}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->stderr_text, HasSubstr("loractl: tokenize: UNAUTHENTICATED: invalid token"));
  httplib::Result scrape = ScrapeMetrics(lorad_->metrics_port, "");  // --open_metrics
  ASSERT_TRUE(scrape) << httplib::to_string(scrape.error());
  EXPECT_EQ(scrape->status, 200);
  EXPECT_THAT(scrape->body, HasSubstr("lorad_build_info"));
}

TEST(AuthHealthTest, HealthAndMetricsNeedATokenUnlessConfiguredOpen) {
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad({"--auth_tokens_file=" + TokensFile()}, &lorad));
  const std::string addr = "--addr=" + lorad.grpc_address;
  absl::StatusOr<RunResult> result = RunToCompletion(kLoractl, {"health", addr}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->stderr_text, HasSubstr("loractl: health: UNAUTHENTICATED"));
  result = RunToCompletion(kLoractl, {"health", addr, "--token=inf-token"}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_EQ(result->stdout_text, "SERVING\n");

  // /metrics on --metrics_listen: a token of any role, else 401 and nothing exposed.
  httplib::Result scrape = ScrapeMetrics(lorad.metrics_port, "");
  ASSERT_TRUE(scrape) << httplib::to_string(scrape.error());
  EXPECT_EQ(scrape->status, 401);
  EXPECT_EQ(scrape->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_THAT(scrape->body, Not(HasSubstr("lorad_")));
  scrape = ScrapeMetrics(lorad.metrics_port, "wrong");
  ASSERT_TRUE(scrape);
  EXPECT_EQ(scrape->status, 401);
  for (const char* token : {"inf-token", "admin-token"}) {
    scrape = ScrapeMetrics(lorad.metrics_port, token);
    ASSERT_TRUE(scrape);
    EXPECT_EQ(scrape->status, 200) << token;
    EXPECT_THAT(scrape->body, HasSubstr("lorad_build_info"));
  }
  EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad));
}

TEST(TlsTest, ServesTlsWithCertAndKeyAndLoractlDialsWithCa) {
  const std::string dir = TestDir();
  const std::string cert = dir + "/lorad_tls_cert.pem";
  const std::string key = dir + "/lorad_tls_key.pem";
  absl::StatusOr<RunResult> made = RunToCompletion(
      "/usr/bin/openssl",
      {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
       "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert},
      60000);
  if (!made.ok() || made->exit_code != 0) GTEST_SKIP() << "openssl cannot make a test cert";
  RunningLorad lorad;
  ASSERT_NO_FATAL_FAILURE(StartLorad({"--tls_cert=" + cert, "--tls_key=" + key}, &lorad));
  const std::string addr = "--addr=" + lorad.grpc_address;
  absl::StatusOr<RunResult> result =
      RunToCompletion(kLoractl, {"tokenize", addr, "--tls_ca=" + cert, "hi"}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  // A plaintext client cannot talk to the TLS port.
  result = RunToCompletion(kLoractl, {"tokenize", addr, "--timeout_s=3", "hi"}, 20000);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_NO_FATAL_FAILURE(StopLorad(&lorad));
}

}  // namespace
}  // namespace lorad::testing
