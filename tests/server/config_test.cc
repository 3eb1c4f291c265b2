#include "server/common/config.h"

#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace lorad::server {
namespace {

using ::testing::HasSubstr;

std::string WriteTempFile(const std::string& name, const std::string& contents) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << contents;
  return path;
}

absl::Status ParseError(const std::vector<std::string>& args) {
  return ParseCommandLine(args).status();
}

TEST(ConfigTest, DefaultsWithoutArguments) {
  absl::StatusOr<CommandLine> parsed = ParseCommandLine({});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.listen, "127.0.0.1:50051");
  EXPECT_EQ(parsed->config.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(parsed->config.data_dir, "./data");
  EXPECT_EQ(parsed->config.grace_period_s, 8);
  EXPECT_EQ(parsed->config.threads, 0);
  EXPECT_FALSE(parsed->help);
  EXPECT_EQ(ResolvedModelPath(parsed->config), "./data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

TEST(ConfigTest, FlagsInBothForms) {
  absl::StatusOr<CommandLine> parsed = ParseCommandLine(
      {"--listen=0.0.0.0:1234", "--model", "/m.gguf", "--metrics_listen=", "--grace_period_s=3",
       "--threads", "4", "--data_dir=/d"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.listen, "0.0.0.0:1234");
  EXPECT_EQ(parsed->config.model, "/m.gguf");
  EXPECT_EQ(parsed->config.metrics_listen, "");
  EXPECT_EQ(parsed->config.grace_period_s, 3);
  EXPECT_EQ(parsed->config.threads, 4);
  EXPECT_EQ(ResolvedModelPath(parsed->config), "/m.gguf");
}

TEST(ConfigTest, HelpAndVersion) {
  EXPECT_TRUE(ParseCommandLine({"--help"})->help);
  EXPECT_TRUE(ParseCommandLine({"--version"})->version);
  EXPECT_TRUE(ParseCommandLine({"--check_config"})->check_config);
  EXPECT_FALSE(ParseCommandLine({"--check_config", "--threads=-1"}).ok());
  EXPECT_THAT(UsageText(), HasSubstr("--metrics_listen"));
  EXPECT_THAT(UsageText(), HasSubstr("--check_config"));
}

// The example config the systemd unit installs (deploy/systemd/lorad.conf) is valid as shipped,
// with the unit's --data_dir after it.
TEST(ConfigTest, TheSystemdExampleConfigIsValid) {
  const char* source = std::getenv("LORAD_SOURCE_DIR");
  ASSERT_NE(source, nullptr);
  absl::StatusOr<CommandLine> parsed =
      ParseCommandLine({std::string("--config=") + source + "/deploy/systemd/lorad.conf",
                        "--data_dir=/var/lib/lorad"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.listen, "0.0.0.0:50051");
  EXPECT_EQ(parsed->config.http_listen, "0.0.0.0:8000");
  EXPECT_EQ(parsed->config.metrics_listen, "0.0.0.0:9464");
  EXPECT_EQ(parsed->config.grace_period_s, 8);
  EXPECT_EQ(ResolvedModelPath(parsed->config),
            "/var/lib/lorad/models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

struct BadArgsCase {
  std::vector<std::string> args;
  const char* message_part;
};

class BadArgsTest : public ::testing::TestWithParam<BadArgsCase> {};

TEST_P(BadArgsTest, IsInvalidArgumentNamingTheProblem) {
  const absl::Status status = ParseError(GetParam().args);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().message_part));
  EXPECT_EQ(std::string(status.message()).find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadArgsTest,
    ::testing::Values(BadArgsCase{{"--bogus=1"}, "unknown flag --bogus"},
                      BadArgsCase{{"--bogus"}, "unknown flag --bogus"},
                      BadArgsCase{{"serve"}, "unexpected argument \"serve\""},
                      BadArgsCase{{"--model"}, "--model: missing value"},
                      BadArgsCase{{"--threads=-1"}, "--threads=-1"},
                      BadArgsCase{{"--threads=many"}, "--threads=many"},
                      BadArgsCase{{"--grace_period_s=abc"}, "--grace_period_s=abc"},
                      BadArgsCase{{"--grace_period_s=99999"}, "--grace_period_s"},
                      BadArgsCase{{"--listen=localhost"}, "--listen"},
                      BadArgsCase{{"--listen=host:70000"}, "port must be 0..65535"},
                      BadArgsCase{{"--listen=:50051"}, "empty host"},
                      BadArgsCase{{"--listen=::1:5"}, "[addr]:port"},
                      BadArgsCase{{"--metrics_listen=nope"}, "--metrics_listen"},
                      BadArgsCase{{"--data_dir="}, "--data_dir"},
                      BadArgsCase{{"--config=/nonexistent/lorad.conf"}, "cannot open"}));

TEST(ConfigTest, JsonFileThenFlagsOverride) {
  const std::string path = WriteTempFile(
      "lorad.json", R"({"listen": "127.0.0.1:7000", "grace_period_s": 2, "model": "/a.gguf"})");
  absl::StatusOr<CommandLine> parsed =
      ParseCommandLine({"--config=" + path, "--listen=127.0.0.1:7001"});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.listen, "127.0.0.1:7001");  // Flag wins, whatever the order.
  EXPECT_EQ(parsed->config.grace_period_s, 2);
  EXPECT_EQ(parsed->config.model, "/a.gguf");
}

TEST(ConfigTest, FlagBeforeConfigStillOverridesIt) {
  const std::string path = WriteTempFile("order.json", R"({"threads": 2})");
  absl::StatusOr<CommandLine> parsed = ParseCommandLine({"--threads=5", "--config", path});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->config.threads, 5);
}

TEST(ConfigTest, KeyValueText) {
  ServerConfig config;
  ASSERT_TRUE(ApplyConfigText("# lorad\nlisten = 127.0.0.1:1\n\nmodel = \"/x y.gguf\"  # quoted\n"
                              "metrics_listen =\n",
                              "f", &config)
                  .ok());
  EXPECT_EQ(config.listen, "127.0.0.1:1");
  EXPECT_EQ(config.model, "/x y.gguf");
  EXPECT_EQ(config.metrics_listen, "");
}

TEST(ConfigTest, ConfigTextErrorsNameFileAndLine) {
  ServerConfig config;
  absl::Status status = ApplyConfigText("listen = a:1\nnope = 3\n", "lorad.conf", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("lorad.conf:2: unknown key \"nope\""));

  status = ApplyConfigText("just words\n", "c", &config);
  EXPECT_THAT(std::string(status.message()), HasSubstr("c:1: expected key = value"));

  status = ApplyConfigText("threads = x\n", "c", &config);
  EXPECT_THAT(std::string(status.message()), HasSubstr("c:1: --threads=x"));

  status = ApplyConfigText(R"({"threads": true})", "j", &config);
  EXPECT_THAT(std::string(status.message()), HasSubstr("j: --threads=true: expected an integer"));

  status = ApplyConfigText(R"({"threads": [1]})", "j", &config);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"threads\" must be a string, an"));

  status = ApplyConfigText(R"({"open_health": true, "max_queue": 3})", "j", &config);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_TRUE(config.open_health);
  EXPECT_EQ(config.max_queue, 3);

  EXPECT_EQ(config.train_recompute, finetune::RecomputePolicy::kAuto);
  status = ApplyConfigText(R"({"train_recompute": false})", "j", &config);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(config.train_recompute, finetune::RecomputePolicy::kNever);
  status = ApplyConfigText(R"({"train_recompute": "true"})", "j", &config);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(config.train_recompute, finetune::RecomputePolicy::kAlways);
  status = ApplyConfigText(R"({"train_recompute": "sometimes"})", "j", &config);
  EXPECT_THAT(std::string(status.message()), HasSubstr("expected auto, true or false"));

  status = ApplyConfigText(R"({"listen": )", "j", &config);
  EXPECT_THAT(std::string(status.message()), HasSubstr("j: not a JSON object"));

  status = ApplyConfigText(R"({"nope": 1})", "j", &config);
  EXPECT_THAT(std::string(status.message()), HasSubstr("unknown key \"nope\""));
}

TEST(ConfigTest, ValidateAcceptsIpv6AndPortZero) {
  ServerConfig config;
  config.listen = "[::1]:0";
  config.metrics_listen = "0.0.0.0:0";
  EXPECT_TRUE(ValidateConfig(config).ok());
}

}  // namespace
}  // namespace lorad::server
