// Routes gRPC's internal log lines to stderr as single "lorad: grpc: ..." lines, and lets
// startup silence them while an error is reported through a Status instead.
#pragma once

namespace lorad::server {

// Installs the log function; gRPC's verbosity (GRPC_VERBOSITY, default ERROR) still applies.
// Call before any gRPC use.
void RouteGrpcLogsToStderr();

// While true, gRPC log lines are dropped. Thread-safe.
void SetGrpcStartupLogsQuiet(bool quiet);

}  // namespace lorad::server
