#include "server/metrics/metrics.h"

#include <exception>
#include <vector>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "prometheus/gauge.h"
#include "prometheus/text_serializer.h"
#include "server/common/build_info.h"
#include "server/common/http_auth.h"
#include "server/common/http_listen.h"
#include "server/metrics/process_collector.h"

namespace lorad::server {

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      process_collector_(std::make_shared<ProcessCollector>()),
      serving_(prometheus::BuildGauge()
                   .Name("lorad_serving")
                   .Help("1 while grpc.health.v1 answers SERVING (model loaded, not draining), "
                         "else 0.")
                   .Register(*registry_)
                   .Add({})) {
  const BuildInfo& info = GetBuildInfo();
  prometheus::BuildGauge()
      .Name("lorad_build_info")
      .Help("Always 1; the labels describe the running lorad binary.")
      .Register(*registry_)
      .Add(
          {{"version", info.version}, {"git_commit", info.git_commit}, {"compiler", info.compiler}})
      .Set(1);
}

Metrics::~Metrics() { StopServing(); }

absl::StatusOr<int> Metrics::Serve(const std::string& listen, const Authorizer* auth) {
  auto server = std::make_unique<httplib::Server>();
  server->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server->set_read_timeout(5, 0);
  server->Get("/metrics", [this, auth](const httplib::Request& req, httplib::Response& res) {
    if (const absl::Status allowed = AuthorizeHttp(auth, req, Role::kInference); !allowed.ok()) {
      SetAuthFailure(allowed, res);
      res.set_content(absl::StrCat(allowed.message(), "\n"), "text/plain");
      return;
    }
    res.set_content(TextExposition(), "text/plain; version=0.0.4");
  });
  absl::StatusOr<std::unique_ptr<RunningHttpServer>> running =
      RunningHttpServer::Start(std::move(server), listen, "--metrics_listen");
  if (!running.ok()) return running.status();
  http_ = *std::move(running);
  return http_->port();
}

void Metrics::StopServing() { http_.reset(); }

void Metrics::SetServing(bool serving) { serving_.Set(serving ? 1 : 0); }

void Metrics::AddCollectable(std::shared_ptr<prometheus::Collectable> collectable) {
  absl::MutexLock lock(&mu_);
  extra_.push_back(std::move(collectable));
}

std::string Metrics::TextExposition() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  std::vector<prometheus::MetricFamily> process = process_collector_->Collect();
  families.insert(families.end(), process.begin(), process.end());
  absl::MutexLock lock(&mu_);
  for (const auto& collectable : extra_) {
    std::vector<prometheus::MetricFamily> more = collectable->Collect();
    families.insert(families.end(), more.begin(), more.end());
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace lorad::server
