#include "tests/integration/lorad_process.h"

#include <signal.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"
#include "tests/fixtures/tiny_model.h"

namespace lorad::testing {
namespace {

using ::testing::StartsWith;

constexpr int kStartTimeoutMs = 30000;

}  // namespace

const std::string& TestDir() {
  static const ScopedTempDir dir;
  return dir.path();
}

const std::string& TinyModelPath() {
  static const std::string* path = [] {
    auto* p = new std::string(TestDir() + "/tiny.gguf");
    TinyModelOptions options;
    options.seed = 1;
    const absl::Status status = WriteTinyGguf(options, *p);
    EXPECT_TRUE(status.ok()) << status;
    return p;
  }();
  return *path;
}

std::shared_ptr<grpc::Channel> RunningLorad::Channel() const {
  return grpc::CreateChannel(grpc_address, grpc::InsecureChannelCredentials());
}

void StartLorad(const std::vector<std::string>& extra_args, RunningLorad* lorad) {
  std::vector<std::string> args = {"--listen=127.0.0.1:0",
                                   "--metrics_listen=127.0.0.1:0",
                                   "--http_listen=127.0.0.1:0",
                                   "--data_dir=" + TestDir(),
                                   "--threads=1",
                                   "--kv_cache_mb=64"};
  bool has_model = false;
  for (const std::string& arg : extra_args) has_model |= absl::StartsWith(arg, "--model");
  if (!has_model) args.push_back("--model=" + TinyModelPath());
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

  line = lorad->process->ReadStdoutLine(kStartTimeoutMs);
  ASSERT_TRUE(line.has_value());
  ASSERT_THAT(*line, StartsWith("lorad http on http"));  // http:// or https://
  parts = absl::StrSplit(*line, absl::ByAnyChar(":/"));
  // "lorad http on http(s)", "", "", "127.0.0.1", "PORT", "v1"
  ASSERT_EQ(parts.size(), 6u) << *line;
  ASSERT_TRUE(absl::SimpleAtoi(parts[4], &lorad->http_port)) << *line;

  line = lorad->process->ReadStdoutLine(kStartTimeoutMs);
  ASSERT_TRUE(line.has_value()) << "model did not load; stderr: "
                                << lorad->process->ReadAllStderr();
  ASSERT_EQ(*line, "lorad ready");
}

void StopLorad(RunningLorad* lorad) {
  ASSERT_NE(lorad->process, nullptr) << "lorad was not started";
  lorad->process->Signal(SIGTERM);
  absl::StatusOr<int> code = lorad->process->Wait(15000);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << lorad->process->ReadAllStderr();
}

}  // namespace lorad::testing
