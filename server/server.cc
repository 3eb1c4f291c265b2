#include "server/server.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/adapters_service.h"
#include "server/finetuning_service.h"
#include "server/host_port.h"
#include "server/inference_service.h"
#include "server/metrics.h"
#include "server/model_check.h"

namespace lorad::server {
namespace {

// Services whose health is reported individually (besides the server as a whole, "").
constexpr const char* kServiceNames[] = {"lorad.v1.Inference", "lorad.v1.Adapters",
                                         "lorad.v1.FineTuning"};

}  // namespace

absl::StatusOr<std::unique_ptr<LoradServer>> LoradServer::Create(const ServerConfig& config) {
  LORAD_RETURN_IF_ERROR(ValidateConfig(config));
  LORAD_RETURN_IF_ERROR(CheckModelPath(ResolvedModelPath(config)));
  return std::unique_ptr<LoradServer>(new LoradServer(config));
}

LoradServer::LoradServer(const ServerConfig& config)
    : config_(config),
      metrics_(std::make_unique<Metrics>()),
      inference_service_(std::make_unique<InferenceService>()),
      adapters_service_(std::make_unique<AdaptersService>()),
      finetuning_service_(std::make_unique<FineTuningService>()) {}

LoradServer::~LoradServer() {
  if (grpc_server_ != nullptr) Shutdown(absl::ZeroDuration());
}

absl::Status LoradServer::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // Without this, a second lorad on the same port would silently share it (SO_REUSEPORT).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(config_.listen, grpc::InsecureServerCredentials(), &grpc_port_);
  builder.RegisterService(inference_service_.get());
  builder.RegisterService(adapters_service_.get());
  builder.RegisterService(finetuning_service_.get());
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    grpc_server_.reset();
    return absl::UnavailableError(
        absl::StrCat("listen address ", config_.listen, ": cannot listen (address in use?)"));
  }
  for (const char* name : kServiceNames) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(name, false);
  }
  SetServing(false);

  if (!config_.metrics_listen.empty()) {
    absl::StatusOr<int> port = metrics_->Serve(config_.metrics_listen);
    if (!port.ok()) {
      grpc_server_->Shutdown(std::chrono::system_clock::now());
      grpc_server_->Wait();
      grpc_server_.reset();
      return port.status();
    }
    metrics_port_ = *port;
  }

  // The engine (model load, adapter preload) initializes here, while health says NOT_SERVING.
  SetServing(true);
  return absl::OkStatus();
}

void LoradServer::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  serving_ = serving;
  grpc_server_->GetHealthCheckService()->SetServingStatus(serving);
}

void LoradServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_ || grpc_server_ == nullptr) return;
    serving_ = false;
    grpc_server_->GetHealthCheckService()->SetServingStatus(false);
    shut_down_ = true;
  }
  grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  metrics_->StopServing();
}

void LoradServer::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

bool LoradServer::serving() const {
  absl::MutexLock lock(&mu_);
  return serving_;
}

std::string LoradServer::listen_address() const {
  absl::StatusOr<HostPort> address = ParseHostPort(config_.listen);
  return FormatHostPort(address.ok() ? address->host : "", grpc_port_);
}

std::string LoradServer::metrics_address() const {
  if (metrics_port_ == 0) return "";
  absl::StatusOr<HostPort> address = ParseHostPort(config_.metrics_listen);
  return FormatHostPort(address.ok() ? address->host : "", metrics_port_);
}

}  // namespace lorad::server
