#include "server/finetuning_service.h"

#include <algorithm>

#include "server/finished_reactors.h"
#include "server/status_to_grpc.h"
#include "server/watch_job_reactor.h"

namespace lorad::server {
grpc::Status FineTuningService::Admit(const grpc::CallbackServerContext& context,
                                      JobManager** manager) const {
  grpc::Status status = Authorize(auth_, context, Role::kAdmin);
  if (!status.ok()) return status;
  *manager = manager_.load(std::memory_order_acquire);
  if (*manager == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the model is still loading");
  }
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* FineTuningService::CreateJob(grpc::CallbackServerContext* context,
                                                       const lorad::v1::CreateJobRequest* request,
                                                       lorad::v1::CreateJobResponse* response) {
  JobManager* manager = nullptr;
  if (grpc::Status status = Admit(*context, &manager); !status.ok()) {
    return FinishUnary(context, status);
  }
  absl::StatusOr<v1::Job> job = manager->CreateJob(*request);
  if (!job.ok()) return FinishUnary(context, ToGrpcStatus(job.status()));
  *response->mutable_job() = *std::move(job);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FineTuningService::GetJob(grpc::CallbackServerContext* context,
                                                    const lorad::v1::GetJobRequest* request,
                                                    lorad::v1::GetJobResponse* response) {
  JobManager* manager = nullptr;
  if (grpc::Status status = Admit(*context, &manager); !status.ok()) {
    return FinishUnary(context, status);
  }
  absl::StatusOr<v1::Job> job = manager->GetJob(request->job_id());
  if (!job.ok()) return FinishUnary(context, ToGrpcStatus(job.status()));
  *response->mutable_job() = *std::move(job);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FineTuningService::ListJobs(grpc::CallbackServerContext* context,
                                                      const lorad::v1::ListJobsRequest* request,
                                                      lorad::v1::ListJobsResponse* response) {
  JobManager* manager = nullptr;
  if (grpc::Status status = Admit(*context, &manager); !status.ok()) {
    return FinishUnary(context, status);
  }
  absl::StatusOr<JobPage> page = manager->ListJobs(
      request->state(), request->page().page_token(),
      static_cast<int32_t>(std::min<uint32_t>(request->page().page_size(), 1u << 30)));
  if (!page.ok()) return FinishUnary(context, ToGrpcStatus(page.status()));
  for (v1::Job& job : page->jobs) *response->add_jobs() = std::move(job);
  response->mutable_page()->set_next_page_token(page->next_page_token);
  response->mutable_page()->set_total_size(static_cast<uint64_t>(page->total_size));
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FineTuningService::CancelJob(grpc::CallbackServerContext* context,
                                                       const lorad::v1::CancelJobRequest* request,
                                                       lorad::v1::CancelJobResponse* response) {
  JobManager* manager = nullptr;
  if (grpc::Status status = Admit(*context, &manager); !status.ok()) {
    return FinishUnary(context, status);
  }
  absl::StatusOr<v1::Job> job = manager->CancelJob(request->job_id());
  if (!job.ok()) return FinishUnary(context, ToGrpcStatus(job.status()));
  *response->mutable_job() = *std::move(job);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerWriteReactor<lorad::v1::JobEvent>* FineTuningService::WatchJob(
    grpc::CallbackServerContext* context, const lorad::v1::WatchJobRequest* request) {
  JobManager* manager = nullptr;
  if (grpc::Status status = Admit(*context, &manager); !status.ok()) {
    return new FinishedWriteReactor<lorad::v1::JobEvent>(status);
  }
  return StartWatchJob(manager, request->job_id());
}

}  // namespace lorad::server
