#include "server/jobs/job_state_name.h"

namespace lorad::server {

const char* JobStateName(lorad::v1::JobState state) {
  switch (state) {
    case lorad::v1::JOB_STATE_VALIDATING:
      return "validating";
    case lorad::v1::JOB_STATE_QUEUED:
      return "queued";
    case lorad::v1::JOB_STATE_RUNNING:
      return "running";
    case lorad::v1::JOB_STATE_SUCCEEDED:
      return "succeeded";
    case lorad::v1::JOB_STATE_FAILED:
      return "failed";
    case lorad::v1::JOB_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

}  // namespace lorad::server
