#include "server/finetuning_service.h"

#include "server/unimplemented.h"

namespace lorad::server {
namespace {
constexpr char kPlannedIn[] = "issue 6, fine-tune jobs";
}  // namespace

grpc::ServerUnaryReactor* FineTuningService::CreateJob(grpc::CallbackServerContext* context,
                                                       const lorad::v1::CreateJobRequest* request,
                                                       lorad::v1::CreateJobResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = Authorize(auth_, *context, Role::kAdmin);
  reactor->Finish(status.ok() ? UnimplementedStatus("lorad.v1.FineTuning/CreateJob", kPlannedIn)
                              : status);
  return reactor;
}

grpc::ServerUnaryReactor* FineTuningService::GetJob(grpc::CallbackServerContext* context,
                                                    const lorad::v1::GetJobRequest* request,
                                                    lorad::v1::GetJobResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = Authorize(auth_, *context, Role::kAdmin);
  reactor->Finish(status.ok() ? UnimplementedStatus("lorad.v1.FineTuning/GetJob", kPlannedIn)
                              : status);
  return reactor;
}

grpc::ServerUnaryReactor* FineTuningService::ListJobs(grpc::CallbackServerContext* context,
                                                      const lorad::v1::ListJobsRequest* request,
                                                      lorad::v1::ListJobsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = Authorize(auth_, *context, Role::kAdmin);
  reactor->Finish(status.ok() ? UnimplementedStatus("lorad.v1.FineTuning/ListJobs", kPlannedIn)
                              : status);
  return reactor;
}

grpc::ServerUnaryReactor* FineTuningService::CancelJob(grpc::CallbackServerContext* context,
                                                       const lorad::v1::CancelJobRequest* request,
                                                       lorad::v1::CancelJobResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = Authorize(auth_, *context, Role::kAdmin);
  reactor->Finish(status.ok() ? UnimplementedStatus("lorad.v1.FineTuning/CancelJob", kPlannedIn)
                              : status);
  return reactor;
}

grpc::ServerWriteReactor<lorad::v1::JobEvent>* FineTuningService::WatchJob(
    grpc::CallbackServerContext* context, const lorad::v1::WatchJobRequest* request) {
  grpc::Status status = Authorize(auth_, *context, Role::kAdmin);
  return new FinishedWriteReactor<lorad::v1::JobEvent>(
      status.ok() ? UnimplementedStatus("lorad.v1.FineTuning/WatchJob", kPlannedIn) : status);
}

}  // namespace lorad::server
