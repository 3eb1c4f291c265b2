// Reactors that end a callback RPC at once with a given status.
#pragma once

#include "grpcpp/grpcpp.h"

namespace lorad::server {

// Finishes a unary RPC with `status`; returns the reactor to hand back to gRPC.
grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                      const grpc::Status& status);

// A server-streaming reactor that finishes with `status` without writing; deletes itself.
template <typename Response>
class FinishedWriteReactor : public grpc::ServerWriteReactor<Response> {
 public:
  explicit FinishedWriteReactor(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace lorad::server
