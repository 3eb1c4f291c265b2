#include "server/finetuning_service.h"

#include "server/unimplemented.h"

namespace lorad::server {
namespace {
constexpr char kPlannedIn[] = "issue 6, fine-tune jobs";
}  // namespace

grpc::ServerUnaryReactor* FineTuningService::CreateJob(grpc::CallbackServerContext* context,
                                                       const lorad::v1::CreateJobRequest* request,
                                                       lorad::v1::CreateJobResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.FineTuning/CreateJob", kPlannedIn);
}

grpc::ServerUnaryReactor* FineTuningService::GetJob(grpc::CallbackServerContext* context,
                                                    const lorad::v1::GetJobRequest* request,
                                                    lorad::v1::GetJobResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.FineTuning/GetJob", kPlannedIn);
}

grpc::ServerUnaryReactor* FineTuningService::ListJobs(grpc::CallbackServerContext* context,
                                                      const lorad::v1::ListJobsRequest* request,
                                                      lorad::v1::ListJobsResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.FineTuning/ListJobs", kPlannedIn);
}

grpc::ServerUnaryReactor* FineTuningService::CancelJob(grpc::CallbackServerContext* context,
                                                       const lorad::v1::CancelJobRequest* request,
                                                       lorad::v1::CancelJobResponse* response) {
  return FinishUnimplemented(context, "lorad.v1.FineTuning/CancelJob", kPlannedIn);
}

grpc::ServerWriteReactor<lorad::v1::JobEvent>* FineTuningService::WatchJob(
    grpc::CallbackServerContext* context, const lorad::v1::WatchJobRequest* request) {
  return FinishUnimplementedStream<lorad::v1::JobEvent>("lorad.v1.FineTuning/WatchJob", kPlannedIn);
}

}  // namespace lorad::server
