// The OpenAI-compatible HTTP front of the daemon, beside gRPC on the same engine, adapters, auth
// and limits: POST /v1/completions and /v1/chat/completions (JSON, or Server-Sent Events with
// stream: true), GET /v1/models and /v1/models/{id}, POST /v1/load_lora_adapter (vLLM's; admin
// role), GET /health and GET /metrics. Tokens and roles are the gRPC ones
// ("Authorization: Bearer <token>").
//
// Built on cpp-httplib (Debian's libcpp-httplib, the library llama.cpp's server uses): a
// thread-per-connection server, so every open SSE stream holds a worker for its whole
// generation; the pool is sized by `threads` (hundreds), and its workers are std::threads with
// the default 8 MiB stacks (LibTorch's static TLS needs more than small fixed stacks give).
// Errors are OpenAI error objects with the status from status_to_http.h; once a stream has
// started, an error is sent as `data: {"error": ...}` then `data: [DONE]`. A client that
// disconnects mid-stream cancels its request in the engine.
// Thread-safety: Start/Stop from one thread; handlers run on the pool's threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace lorad {
class Engine;
}
namespace lorad::adapters {
class AdapterStore;
}

namespace lorad::server {

class Authorizer;
class HttpMetrics;
class Metrics;
class RunningHttpServer;

struct HttpFrontOptions {
  std::string listen;                // "host:port"; port 0 picks one
  int threads = 256;                 // worker threads: concurrent connections (streams) served
  int64_t max_body_bytes = 4 << 20;  // larger bodies: 413
  int32_t default_max_tokens = 256;  // when a request gives no max_tokens
  std::string base_model_id;         // the base model's id in /v1/models and `model`
  const Authorizer* auth = nullptr;  // null: auth off
  bool open_health = false;          // with auth on, /health without a token
  bool open_metrics = false;         // with auth on, /metrics without a token
  std::string tls_cert, tls_key;     // both set: HTTPS only
  Metrics* metrics = nullptr;        // /metrics, and lorad_http_requests_total in its registry
  // Set once the model has loaded; until then inference answers 503 and /health 503.
  std::function<Engine*()> engine;
  std::function<adapters::AdapterStore*()> adapters;
  // /v1/unload_lora_adapter: the daemon's one unload (AdaptersService::Unload).
  std::function<absl::Status(const std::string& adapter_id)> unload_adapter;
  std::function<bool()> serving;  // false while loading or draining
};

class HttpFront {
 public:
  // Binds and starts serving. UNAVAILABLE when the address cannot be bound; INVALID_ARGUMENT
  // for a bad address or unreadable TLS files.
  static absl::StatusOr<std::unique_ptr<HttpFront>> Start(HttpFrontOptions options);
  ~HttpFront();  // Stop()

  int port() const;
  // Stops accepting and closes connections (open streams end); idempotent.
  void Stop();

 private:
  explicit HttpFront(HttpFrontOptions options);
  void Route(httplib::Server& server);

  const HttpFrontOptions options_;
  // Set by Stop(): requests still generating are cancelled and their connections end.
  std::atomic<bool> stopping_{false};
  std::unique_ptr<HttpMetrics> http_metrics_;  // before running_: outlives the server's threads
  std::unique_ptr<RunningHttpServer> running_;
};

}  // namespace lorad::server
