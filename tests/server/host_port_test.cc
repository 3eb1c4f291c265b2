#include "server/common/host_port.h"

#include "gtest/gtest.h"

namespace lorad::server {
namespace {

TEST(HostPortTest, ParsesIpv4NameAndIpv6) {
  absl::StatusOr<HostPort> parsed = ParseHostPort("127.0.0.1:50051");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->host, "127.0.0.1");
  EXPECT_EQ(parsed->port, 50051);
  parsed = ParseHostPort("localhost:0");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->port, 0);
  parsed = ParseHostPort("[::1]:9464");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->host, "::1");
  EXPECT_EQ(parsed->port, 9464);
}

TEST(HostPortTest, RejectsMalformed) {
  for (const char* bad : {"", "host", "host:", ":80", "host:-1", "host:+1", "host:65536", "host:8x",
                          "::1:80", "[::1]80", "[::1]:", "[::1"}) {
    EXPECT_FALSE(ParseHostPort(bad).ok()) << bad;
  }
}

TEST(HostPortTest, FormatsBack) {
  EXPECT_EQ(FormatHostPort("127.0.0.1", 5), "127.0.0.1:5");
  EXPECT_EQ(FormatHostPort("::1", 5), "[::1]:5");
}

}  // namespace
}  // namespace lorad::server
