#include "server/unimplemented.h"

#include "absl/strings/str_cat.h"

namespace lorad::server {

grpc::Status UnimplementedStatus(absl::string_view rpc, absl::string_view planned_in) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      absl::StrCat(rpc, " is not implemented yet (arrives with ", planned_in, ")"));
}

grpc::ServerUnaryReactor* FinishUnimplemented(grpc::CallbackServerContext* context,
                                              absl::string_view rpc, absl::string_view planned_in) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(UnimplementedStatus(rpc, planned_in));
  return reactor;
}

}  // namespace lorad::server
