// The daemon's Prometheus registry and its /metrics HTTP endpoint. Every metric family lorad
// exports is owned here, so that families are declared once and services only update them.
// Here: lorad_build_info, lorad_serving and the process_* collector; InferenceMetrics, the RPC
// interceptor and the adapter-cache collector add their families to this registry. The endpoint is
// a cpp-httplib server (server/common/http_listen.h), like the HTTP front, which serves /metrics
// too. (prometheus-cpp's civetweb Exposer is not used: civetweb starts its threads with a fixed 100
// KiB stack, which glibc refuses once LibTorch's large static TLS is loaded.)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace lorad::server {

class Authorizer;
class RunningHttpServer;
class ProcessCollector;

// Thread-safety: the registry and its families are thread-safe (prometheus-cpp). Serve() and
// the destructor must not race with each other; call Serve() once, during startup, and
// AddCollectable() after Serve() (or without serving) from the same thread as StopServing().
class Metrics {
 public:
  // Creates the registry with lorad_build_info; cannot fail.
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Starts serving GET /metrics on `listen` ("host:port"; port 0 picks a free port). Returns the
  // bound port. UNAVAILABLE if the address cannot be bound. With `auth` (which must outlive
  // serving), a scrape needs a bearer token of any role: 401 without one, as on the HTTP front.
  absl::StatusOr<int> Serve(const std::string& listen, const Authorizer* auth = nullptr);

  // Stops the HTTP endpoint (in-flight scrapes finish first). Idempotent.
  void StopServing();

  // Sets lorad_serving (what the health service answers for the whole server).
  void SetServing(bool serving);

  // Everything /metrics would return, in the Prometheus text format.
  std::string TextExposition() const;

  // Adds a collector read at every scrape (and by TextExposition()). Thread-safe.
  void AddCollectable(std::shared_ptr<prometheus::Collectable> collectable);

  // The registry, for families added by other modules.
  prometheus::Registry& registry() { return *registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ProcessCollector> process_collector_;
  prometheus::Gauge& serving_;
  std::unique_ptr<RunningHttpServer> http_;
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<prometheus::Collectable>> extra_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lorad::server
