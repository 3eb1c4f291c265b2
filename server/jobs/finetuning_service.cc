#include "server/jobs/finetuning_service.h"

#include <algorithm>

#include "server/common/finished_reactors.h"
#include "server/common/status_to_grpc.h"
#include "server/jobs/watch_job_reactor.h"

namespace lorad::server {
grpc::ServerUnaryReactor* FineTuningService::CreateJob(grpc::CallbackServerContext* context,
                                                       const lorad::v1::CreateJobRequest* request,
                                                       lorad::v1::CreateJobResponse* response) {
  JobManager* manager = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, manager_, &manager);
      !status.ok()) {
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
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, manager_, &manager);
      !status.ok()) {
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
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, manager_, &manager);
      !status.ok()) {
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
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, manager_, &manager);
      !status.ok()) {
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
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, manager_, &manager);
      !status.ok()) {
    return new FinishedWriteReactor<lorad::v1::JobEvent>(status);
  }
  return StartWatchJob(
      manager, request->job_id(),
      static_cast<int64_t>(std::min<uint64_t>(request->after_sequence(), uint64_t{1} << 62)));
}

grpc::ServerUnaryReactor* FineTuningService::ListJobEvents(
    grpc::CallbackServerContext* context, const lorad::v1::ListJobEventsRequest* request,
    lorad::v1::ListJobEventsResponse* response) {
  JobManager* manager = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, manager_, &manager);
      !status.ok()) {
    return FinishUnary(context, status);
  }
  absl::StatusOr<EventPage> page = manager->ListJobEvents(
      request->job_id(),
      static_cast<int64_t>(std::min<uint64_t>(request->after_sequence(), uint64_t{1} << 62)),
      static_cast<int32_t>(std::min<uint32_t>(request->page_size(), 1u << 30)));
  if (!page.ok()) return FinishUnary(context, ToGrpcStatus(page.status()));
  for (v1::JobEvent& event : page->events) *response->add_events() = std::move(event);
  response->set_has_more(page->has_more);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FineTuningService::ListJobCheckpoints(
    grpc::CallbackServerContext* context, const lorad::v1::ListJobCheckpointsRequest* request,
    lorad::v1::ListJobCheckpointsResponse* response) {
  JobManager* manager = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, manager_, &manager);
      !status.ok()) {
    return FinishUnary(context, status);
  }
  absl::StatusOr<v1::ListJobCheckpointsResponse> listed =
      manager->ListJobCheckpoints(request->job_id());
  if (!listed.ok()) return FinishUnary(context, ToGrpcStatus(listed.status()));
  *response = *std::move(listed);
  return FinishUnary(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* FineTuningService::PublishCheckpoint(
    grpc::CallbackServerContext* context, const lorad::v1::PublishCheckpointRequest* request,
    lorad::v1::PublishCheckpointResponse* response) {
  JobManager* manager = nullptr;
  if (grpc::Status status = Admit(auth_, *context, Role::kAdmin, manager_, &manager);
      !status.ok()) {
    return FinishUnary(context, status);
  }
  absl::StatusOr<v1::PublishCheckpointResponse> published = manager->PublishCheckpoint(
      request->job_id(),
      static_cast<int64_t>(std::min<uint64_t>(request->step(), uint64_t{1} << 62)),
      request->adapter_id());
  if (!published.ok()) return FinishUnary(context, ToGrpcStatus(published.status()));
  *response = *std::move(published);
  return FinishUnary(context, grpc::Status::OK);
}

}  // namespace lorad::server
