// Reactors that end a callback RPC at once with UNIMPLEMENTED and a message naming the RPC and
// the issue that builds it. Used by services whose behaviour has not landed yet.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace lorad::server {

// The UNIMPLEMENTED status for `rpc` ("lorad.v1.Inference/Generate"), built by `planned_in`
// ("issue 5").
grpc::Status UnimplementedStatus(absl::string_view rpc, absl::string_view planned_in);

// Finishes a unary RPC with UnimplementedStatus(); returns the reactor to hand back to gRPC.
grpc::ServerUnaryReactor* FinishUnimplemented(grpc::CallbackServerContext* context,
                                              absl::string_view rpc, absl::string_view planned_in);

// A server-streaming reactor that finishes with `status` without writing; deletes itself.
template <typename Response>
class FinishedWriteReactor : public grpc::ServerWriteReactor<Response> {
 public:
  explicit FinishedWriteReactor(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

// Finishes a server-streaming RPC with UnimplementedStatus().
template <typename Response>
grpc::ServerWriteReactor<Response>* FinishUnimplementedStream(absl::string_view rpc,
                                                              absl::string_view planned_in) {
  return new FinishedWriteReactor<Response>(UnimplementedStatus(rpc, planned_in));
}

}  // namespace lorad::server
