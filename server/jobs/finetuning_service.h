// lorad.v1.FineTuning over the gRPC callback API, on the job manager. The unary RPCs do cheap
// work on the gRPC thread (CreateJob: request checks, the dataset file write and one database
// insert; training runs on the manager's threads). WatchJob streams from the manager's event
// fan-out (watch_job_reactor.h). Every RPC needs the admin role. Until the model (and with it
// the manager) is ready, RPCs answer UNAVAILABLE.
#pragma once

#include <atomic>

#include "lorad/v1/finetuning.grpc.pb.h"
#include "server/common/auth.h"
#include "server/jobs/job_manager.h"

namespace lorad::server {

// Thread-safe. SetManager() is called once, when the manager exists.
class FineTuningService final : public lorad::v1::FineTuning::CallbackService {
 public:
  // `auth` (null: auth off) must outlive the service.
  explicit FineTuningService(const Authorizer* auth) : auth_(auth) {}

  // Starts serving with `manager`, which must outlive every RPC of the service.
  void SetManager(JobManager* manager) { manager_.store(manager, std::memory_order_release); }

  grpc::ServerUnaryReactor* CreateJob(grpc::CallbackServerContext* context,
                                      const lorad::v1::CreateJobRequest* request,
                                      lorad::v1::CreateJobResponse* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const lorad::v1::GetJobRequest* request,
                                   lorad::v1::GetJobResponse* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const lorad::v1::ListJobsRequest* request,
                                     lorad::v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const lorad::v1::CancelJobRequest* request,
                                      lorad::v1::CancelJobResponse* response) override;
  grpc::ServerWriteReactor<lorad::v1::JobEvent>* WatchJob(
      grpc::CallbackServerContext* context, const lorad::v1::WatchJobRequest* request) override;
  grpc::ServerUnaryReactor* ListJobEvents(grpc::CallbackServerContext* context,
                                          const lorad::v1::ListJobEventsRequest* request,
                                          lorad::v1::ListJobEventsResponse* response) override;
  grpc::ServerUnaryReactor* ListJobCheckpoints(
      grpc::CallbackServerContext* context, const lorad::v1::ListJobCheckpointsRequest* request,
      lorad::v1::ListJobCheckpointsResponse* response) override;
  grpc::ServerUnaryReactor* PublishCheckpoint(
      grpc::CallbackServerContext* context, const lorad::v1::PublishCheckpointRequest* request,
      lorad::v1::PublishCheckpointResponse* response) override;

 private:
  const Authorizer* const auth_;
  std::atomic<JobManager*> manager_{nullptr};
};

}  // namespace lorad::server
