#include "server/common/grpc_log.h"

#include <atomic>
#include <cstdio>

#include "grpc/support/log.h"

namespace lorad::server {
namespace {

std::atomic<bool> quiet{false};

void LogToStderr(gpr_log_func_args* args) {
  if (quiet.load(std::memory_order_relaxed)) return;
  std::fprintf(stderr, "lorad: grpc %s: %s (%s:%d)\n", gpr_log_severity_string(args->severity),
               args->message, args->file, args->line);
}

}  // namespace

void RouteGrpcLogsToStderr() { gpr_set_log_function(LogToStderr); }

void SetGrpcStartupLogsQuiet(bool value) { quiet.store(value, std::memory_order_relaxed); }

}  // namespace lorad::server
