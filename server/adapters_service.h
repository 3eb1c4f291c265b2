// lorad.v1.Adapters over the gRPC callback API. The adapter registry and cache arrive with
// issues 4 and 5; until then every RPC is UNIMPLEMENTED.
#pragma once

#include "lorad/v1/adapters.grpc.pb.h"

namespace lorad::server {

// Thread-safe: handlers share no mutable state.
class AdaptersService final : public lorad::v1::Adapters::CallbackService {
 public:
  grpc::ServerUnaryReactor* LoadAdapter(grpc::CallbackServerContext* context,
                                        const lorad::v1::LoadAdapterRequest* request,
                                        lorad::v1::LoadAdapterResponse* response) override;
  grpc::ServerUnaryReactor* UnloadAdapter(grpc::CallbackServerContext* context,
                                          const lorad::v1::UnloadAdapterRequest* request,
                                          lorad::v1::UnloadAdapterResponse* response) override;
  grpc::ServerUnaryReactor* GetAdapter(grpc::CallbackServerContext* context,
                                       const lorad::v1::GetAdapterRequest* request,
                                       lorad::v1::GetAdapterResponse* response) override;
  grpc::ServerUnaryReactor* ListAdapters(grpc::CallbackServerContext* context,
                                         const lorad::v1::ListAdaptersRequest* request,
                                         lorad::v1::ListAdaptersResponse* response) override;
};

}  // namespace lorad::server
