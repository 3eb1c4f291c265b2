// HttpPeer on a real cpp-httplib server: a handler finds its connection's socket, sees a client
// that is still connected as present, and sees one that hung up (the client's read timeout)
// as gone while the handler is still running.
#include "server/common/http_peer.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "httplib.h"
#include "server/common/http_listen.h"

namespace lorad::server {
namespace {

TEST(HttpPeerTest, ConnectedClientIsPresentAndOneThatHungUpIsGone) {
  std::atomic<int> fd{-2};
  std::atomic<bool> present{false}, gone{false};
  auto server = std::make_unique<httplib::Server>();
  server->Get("/present", [&](const httplib::Request& req, httplib::Response& res) {
    HttpPeer peer(req);
    fd = peer.fd();
    present = !peer.Gone();
    res.set_content("ok", "text/plain");
  });
  server->Get("/slow", [&](const httplib::Request& req, httplib::Response& res) {
    HttpPeer peer(req);
    for (int i = 0; i < 100 && !gone; ++i) {  // up to 10 s
      gone = peer.Gone();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    res.set_content("late", "text/plain");
  });
  auto running = RunningHttpServer::Start(std::move(server), "127.0.0.1:0", "--test");
  ASSERT_TRUE(running.ok()) << running.status();

  httplib::Client client("127.0.0.1", (*running)->port());
  auto r = client.Get("/present");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_GE(fd.load(), 0);
  EXPECT_TRUE(present.load());

  httplib::Client impatient("127.0.0.1", (*running)->port());
  impatient.set_read_timeout(0, 300000);  // gives up after 0.3 s and closes the connection
  EXPECT_FALSE(impatient.Get("/slow"));
  impatient.stop();
  for (int i = 0; i < 100 && !gone; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(gone.load());
}

}  // namespace
}  // namespace lorad::server
