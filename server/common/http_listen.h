// Starting a cpp-httplib server on a "host:port" address, shared by the HTTP front and the
// metrics endpoint: port 0 picks a free port, a port in use is an error (no SO_REUSEPORT), the
// listen backlog is raised past the library's compiled-in 5 (hundreds of clients may connect at
// once), SIGPIPE is ignored (the library writes with send() without MSG_NOSIGNAL, so a client that
// hangs up would otherwise kill the process), and the accept loop runs on its own thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace lorad::server {

// A server and the thread running its accept loop.
class RunningHttpServer {
 public:
  // Binds `server` (routes already set) to `listen` and starts it. `flag` names the address in
  // errors ("--http_listen"). INVALID_ARGUMENT for a bad address, UNAVAILABLE when it cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<RunningHttpServer>> Start(
      std::unique_ptr<httplib::Server> server, const std::string& listen, const char* flag);
  ~RunningHttpServer();  // Stop()

  int port() const { return port_; }
  httplib::Server& server() { return *server_; }
  // Stops accepting, ends the accept loop and waits for the handlers running; idempotent.
  void Stop();

 private:
  RunningHttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  // Set by the accept thread when listen_after_bind() returns (Stop waits for the loop to be
  // running or over: the library's stop() does nothing before the loop has started).
  std::atomic<bool> loop_done_{false};
  int port_ = 0;
};

}  // namespace lorad::server
