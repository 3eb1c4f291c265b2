#include "server/metrics.h"

#include <exception>
#include <vector>

#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/text_serializer.h"
#include "server/build_info.h"
#include "server/process_collector.h"

namespace lorad::server {

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      process_collector_(std::make_shared<ProcessCollector>()) {
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

absl::StatusOr<int> Metrics::Serve(const std::string& listen) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(listen, /*num_threads=*/2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics address ", listen, ": cannot listen (address in use?)"));
  }
  exposer_->RegisterCollectable(registry_);
  exposer_->RegisterCollectable(process_collector_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  if (ports.empty()) {
    exposer_.reset();
    return absl::UnavailableError(absl::StrCat("metrics address ", listen, ": not listening"));
  }
  return ports.front();
}

void Metrics::StopServing() { exposer_.reset(); }

void Metrics::AddCollectable(std::shared_ptr<prometheus::Collectable> collectable) {
  if (exposer_ != nullptr) exposer_->RegisterCollectable(collectable);
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
