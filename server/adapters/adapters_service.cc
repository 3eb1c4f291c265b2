#include "server/adapters/adapters_service.h"

#include "absl/strings/str_cat.h"
#include "server/adapters/adapter_convert.h"
#include "server/common/finished_reactors.h"
#include "server/common/status_to_grpc.h"

namespace lorad::server {

void AdaptersService::Start(adapters::AdapterStore* store, JobManager* jobs) {
  jobs_.store(jobs, std::memory_order_release);
  store_.store(store, std::memory_order_release);
}

grpc::ServerUnaryReactor* AdaptersService::LoadAdapter(grpc::CallbackServerContext* context,
                                                       const lorad::v1::LoadAdapterRequest* request,
                                                       lorad::v1::LoadAdapterResponse* response) {
  adapters::AdapterStore* store = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, store_, &store); !status.ok()) {
    return FinishUnary(context, status);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // `request` and `response` stay valid until the reactor finishes.
  worker_.Post([store, request, response, reactor] {
    absl::StatusOr<adapters::AdapterInfo> info =
        store->Load(request->adapter_id(), request->source(), request->pin());
    if (!info.ok()) {
      reactor->Finish(ToGrpcStatus(info.status()));
      return;
    }
    ToProtoAdapterInfo(*info, response->mutable_adapter());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdaptersService::UnloadAdapter(
    grpc::CallbackServerContext* context, const lorad::v1::UnloadAdapterRequest* request,
    lorad::v1::UnloadAdapterResponse* response) {
  adapters::AdapterStore* store = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, store_, &store); !status.ok()) {
    return FinishUnary(context, status);
  }
  return FinishUnary(context, ToGrpcStatus(Unload(store, request->adapter_id())));
}

absl::Status AdaptersService::Unload(const std::string& adapter_id) {
  adapters::AdapterStore* store = store_.load(std::memory_order_acquire);
  if (store == nullptr) return absl::UnavailableError("the model is still loading");
  return Unload(store, adapter_id);
}

absl::Status AdaptersService::Unload(adapters::AdapterStore* store, const std::string& adapter_id) {
  // Requests using the adapter keep their version until they finish.
  absl::Status status = store->Unload(adapter_id);
  JobManager* jobs = jobs_.load(std::memory_order_acquire);
  if (status.ok() && jobs != nullptr) {
    // The adapter is gone either way; a failure here only means a restart may register it again.
    status = jobs->ForgetAdapter(adapter_id);
    if (!status.ok()) {
      status = absl::Status(status.code(),
                            absl::StrCat("adapter '", adapter_id,
                                         "' was unloaded, but recording that failed (a restart "
                                         "may register it again): ",
                                         status.message()));
    }
  }
  return status;
}

grpc::ServerUnaryReactor* AdaptersService::GetAdapter(grpc::CallbackServerContext* context,
                                                      const lorad::v1::GetAdapterRequest* request,
                                                      lorad::v1::GetAdapterResponse* response) {
  adapters::AdapterStore* store = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, store_, &store); !status.ok()) {
    return FinishUnary(context, status);
  }
  absl::StatusOr<adapters::AdapterInfo> info = store->Get(request->adapter_id());
  if (!info.ok()) return FinishUnary(context, ToGrpcStatus(info.status()));
  ToProtoAdapterInfo(*info, response->mutable_adapter());
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* AdaptersService::ListAdapters(
    grpc::CallbackServerContext* context, const lorad::v1::ListAdaptersRequest* request,
    lorad::v1::ListAdaptersResponse* response) {
  adapters::AdapterStore* store = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, store_, &store); !status.ok()) {
    return FinishUnary(context, status);
  }
  for (const adapters::AdapterInfo& info : store->List()) {
    if (request->tier() != v1::RESIDENCY_TIER_UNSPECIFIED &&
        request->tier() != ToProtoTier(info.tier)) {
      continue;
    }
    ToProtoAdapterInfo(info, response->add_adapters());
  }
  return FinishUnary(context, grpc::Status::OK);
}

}  // namespace lorad::server
