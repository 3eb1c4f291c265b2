#include "server/adapters_service.h"

#include "server/unimplemented.h"

namespace lorad::server {
namespace {
constexpr char kPlannedIn[] = "issue 5, Adapters service";
}  // namespace

grpc::ServerUnaryReactor* AdaptersService::LoadAdapter(grpc::CallbackServerContext* context,
                                                       const lorad::v1::LoadAdapterRequest* request,
                                                       lorad::v1::LoadAdapterResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.Adapters/LoadAdapter", kPlannedIn);
}

grpc::ServerUnaryReactor* AdaptersService::UnloadAdapter(
    grpc::CallbackServerContext* context, const lorad::v1::UnloadAdapterRequest* request,
    lorad::v1::UnloadAdapterResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.Adapters/UnloadAdapter", kPlannedIn);
}

grpc::ServerUnaryReactor* AdaptersService::GetAdapter(grpc::CallbackServerContext* context,
                                                      const lorad::v1::GetAdapterRequest* request,
                                                      lorad::v1::GetAdapterResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.Adapters/GetAdapter", kPlannedIn);
}

grpc::ServerUnaryReactor* AdaptersService::ListAdapters(
    grpc::CallbackServerContext* context, const lorad::v1::ListAdaptersRequest* request,
    lorad::v1::ListAdaptersResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.Adapters/ListAdapters", kPlannedIn);
}

}  // namespace lorad::server
