// The reactor of FineTuning.WatchJob: subscribes to the job manager and writes the snapshot,
// then each event, one message at a time (the manager only appends to the reactor's queue, so it
// never blocks on the network). Ends OK after the event that enters a terminal state, CANCELLED
// when the client goes away, UNAVAILABLE when the server shuts down.
#pragma once

#include <cstdint>
#include <string>

#include "grpcpp/grpcpp.h"
#include "lorad/v1/finetuning.pb.h"
#include "server/jobs/job_manager.h"

namespace lorad::server {

// Starts WatchJob for `job_id`, resuming after event `after_sequence` when it is > 0 (see
// JobManager::Watch); the returned reactor deletes itself in OnDone(). `manager` must outlive the
// RPC.
grpc::ServerWriteReactor<v1::JobEvent>* StartWatchJob(JobManager* manager,
                                                      const std::string& job_id,
                                                      int64_t after_sequence);

}  // namespace lorad::server
