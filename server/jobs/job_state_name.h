// Lower-case names of lorad.v1.JobState ("validating", ..., "cancelled"), shared by the server's
// messages and loractl's output and --state filter.
#pragma once

#include "lorad/v1/finetuning.pb.h"

namespace lorad::server {

// "validating", "queued", "running", "succeeded", "failed", "cancelled"; "unspecified" else.
const char* JobStateName(lorad::v1::JobState state);

}  // namespace lorad::server
