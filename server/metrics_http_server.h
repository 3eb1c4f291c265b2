// A minimal HTTP/1.1 endpoint for Prometheus scrapes: GET /metrics answers with a text body
// produced on demand; anything else gets 404 / 405. One connection at a time, Connection:
// close, a 5 s read timeout and an 8 KiB request-header limit.
// lorad serves /metrics itself instead of through prometheus-cpp's civetweb Exposer: civetweb
// starts its threads with a fixed 100 KiB stack, which glibc refuses (EINVAL) once LibTorch's
// libraries, with their large static TLS, are loaded in the process.
// Thread-safety: Start() once, then Stop() (idempotent) from any one thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace lorad::server {

class MetricsHttpServer {
 public:
  // `body` is called on the server thread for every GET /metrics.
  explicit MetricsHttpServer(std::function<std::string()> body) : body_(std::move(body)) {}
  ~MetricsHttpServer() { Stop(); }
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds "host:port" (port 0: any free port) and starts serving; returns the bound port.
  // INVALID_ARGUMENT for a malformed address, UNAVAILABLE when it cannot be bound.
  absl::StatusOr<int> Start(const std::string& listen);
  // Stops accepting and joins the server thread (an in-flight response finishes first).
  void Stop();

 private:
  void Run();
  void Handle(int fd);

  std::function<std::string()> body_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace lorad::server
