// lorad.v1.Adapters over the gRPC callback API, on the adapter store. LoadAdapter reads and
// validates files, so it runs on a worker thread and the gRPC thread returns at once; the other
// RPCs only consult the store's in-memory registry. Every RPC needs the admin role. Until the
// model (and with it the store) is ready, RPCs answer UNAVAILABLE.
#pragma once

#include <atomic>

#include "adapters/adapter_store.h"
#include "lorad/v1/adapters.grpc.pb.h"
#include "server/common/auth.h"
#include "server/common/serial_worker.h"
#include "server/jobs/job_manager.h"

namespace lorad::server {

// Thread-safe. Start() is called once, when the store and the job manager exist.
class AdaptersService final : public lorad::v1::Adapters::CallbackService {
 public:
  // `auth` (null: auth off) must outlive the service.
  explicit AdaptersService(const Authorizer* auth) : auth_(auth) {}

  // Starts serving with `store`. A successful UnloadAdapter also tells `jobs` (null: no job
  // manager), so that an adapter a job produced stays unloaded across restarts. Both must
  // outlive the service.
  void Start(adapters::AdapterStore* store, JobManager* jobs);

  // Unregisters `adapter_id` and tells the job manager (see Start): what UnloadAdapter does once
  // the caller is admitted, shared with the HTTP front's /v1/unload_lora_adapter. NOT_FOUND for
  // an unknown id, UNAVAILABLE before Start().
  absl::Status Unload(const std::string& adapter_id);

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

 private:
  absl::Status Unload(adapters::AdapterStore* store, const std::string& adapter_id);

  const Authorizer* const auth_;
  std::atomic<adapters::AdapterStore*> store_{nullptr};
  std::atomic<JobManager*> jobs_{nullptr};  // written before store_, read after it
  SerialWorker worker_;  // Runs LoadAdapter; destroyed (drained) before the store.
};

}  // namespace lorad::server
