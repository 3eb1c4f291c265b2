// lorad.v1.FineTuning over the gRPC callback API. Jobs, the job store and training arrive with
// issue 6; until then every RPC is UNIMPLEMENTED.
#pragma once

#include "lorad/v1/finetuning.grpc.pb.h"
#include "server/auth.h"

namespace lorad::server {

// Thread-safe: handlers share no mutable state. Every RPC needs the admin role.
class FineTuningService final : public lorad::v1::FineTuning::CallbackService {
 public:
  // `auth` (null: auth off) must outlive the service.
  explicit FineTuningService(const Authorizer* auth) : auth_(auth) {}

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

 private:
  const Authorizer* const auth_;
};

}  // namespace lorad::server
