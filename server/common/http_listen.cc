#include "server/common/http_listen.h"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <csignal>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/common/host_port.h"

namespace lorad::server {

absl::StatusOr<std::unique_ptr<RunningHttpServer>> RunningHttpServer::Start(
    std::unique_ptr<httplib::Server> server, const std::string& listen, const char* flag) {
  absl::StatusOr<HostPort> address = ParseHostPort(listen);
  if (!address.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", address.status().message()));
  }
  auto listen_fd = std::make_shared<std::atomic<int>>(-1);
  // SO_REUSEADDR only: the library's default adds SO_REUSEPORT, with which a second daemon on
  // the same port would silently share it instead of failing to start.
  server->set_socket_options([listen_fd](socket_t sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_fd->store(sock);
  });
  std::signal(SIGPIPE, SIG_IGN);
  const int port = address->port == 0
                       ? server->bind_to_any_port(address->host)
                       : (server->bind_to_port(address->host, address->port) ? address->port : -1);
  if (port < 0) {
    return absl::UnavailableError(
        absl::StrCat(flag, " ", listen, ": cannot listen (address in use?)"));
  }
  // Listening again on the bound socket replaces the library's backlog of 5.
  if (listen_fd->load() >= 0) ::listen(listen_fd->load(), SOMAXCONN);
  std::unique_ptr<RunningHttpServer> running(new RunningHttpServer);
  running->server_ = std::move(server);
  running->port_ = port;
  running->thread_ = std::thread([s = running->server_.get(), done = &running->loop_done_] {
    s->listen_after_bind();
    done->store(true);
  });
  return running;
}

RunningHttpServer::~RunningHttpServer() { Stop(); }

void RunningHttpServer::Stop() {
  if (thread_.joinable()) {
    // httplib's stop() is a no-op until the accept loop marks itself running; a Stop() right
    // after Start() (a failed daemon start rolling back) would otherwise leave the loop in
    // accept() forever and this join hanging.
    while (!server_->is_running() && !loop_done_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    server_->stop();
    thread_.join();
  } else if (server_ != nullptr) {
    server_->stop();
  }
}

}  // namespace lorad::server
