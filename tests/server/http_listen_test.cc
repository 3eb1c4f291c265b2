// RunningHttpServer: a Stop() right after Start() ends the accept loop (httplib's own stop() is
// a no-op until the loop marks itself running; a daemon whose start fails rolls its listeners
// back this way), and a port in use is UNAVAILABLE.
#include "server/common/http_listen.h"

#include "gtest/gtest.h"
#include "httplib.h"

namespace lorad::server {
namespace {

TEST(HttpListenTest, StopRightAfterStartNeverHangs) {
  for (int i = 0; i < 200; ++i) {
    auto running =
        RunningHttpServer::Start(std::make_unique<httplib::Server>(), "127.0.0.1:0", "--test");
    ASSERT_TRUE(running.ok()) << running.status();
    EXPECT_GT((*running)->port(), 0);
    running->reset();  // ~RunningHttpServer: Stop() and join
  }
}

TEST(HttpListenTest, PortInUseIsUnavailable) {
  auto first =
      RunningHttpServer::Start(std::make_unique<httplib::Server>(), "127.0.0.1:0", "--test");
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string taken = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = RunningHttpServer::Start(std::make_unique<httplib::Server>(), taken, "--test");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("--test " + taken), std::string::npos)
      << second.status();
}

}  // namespace
}  // namespace lorad::server
