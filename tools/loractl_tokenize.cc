// `loractl tokenize [TEXT]`: calls Inference.Tokenize and prints the token ids on one line,
// space-separated; with --pieces, one "id<TAB>piece" line per token instead. The text is the
// arguments joined by spaces, or stdin when there are none.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "absl/strings/str_join.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "tools/loractl_commands.h"

namespace lorad::loractl {

int RunTokenize(const Invocation& invocation) {
  v1::TokenizeRequest request;
  if (invocation.positional.empty()) {
    request.mutable_text()->assign(std::istreambuf_iterator<char>(std::cin),
                                   std::istreambuf_iterator<char>());
  } else {
    request.set_text(absl::StrJoin(invocation.positional, " "));
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Dial(invocation);
  grpc::ClientContext context;
  absl::Status prepared = channel.ok() ? PrepareContext(invocation, &context) : channel.status();
  if (!prepared.ok()) {
    std::fprintf(stderr, "loractl: tokenize: %s\n", std::string(prepared.message()).c_str());
    return kExitUsage;
  }
  v1::TokenizeResponse response;
  const grpc::Status status =
      v1::Inference::NewStub(*channel)->Tokenize(&context, request, &response);
  if (!status.ok()) return ReportRpcError("tokenize", status);
  if (invocation.BoolFlag("pieces")) {
    for (int i = 0; i < response.token_ids_size(); ++i) {
      const std::string piece = i < response.tokens_size() ? response.tokens(i) : "";
      std::printf("%u\t%s\n", response.token_ids(i), piece.c_str());
    }
  } else {
    std::printf("%s\n", absl::StrJoin(response.token_ids(), " ").c_str());
  }
  return kExitOk;
}

}  // namespace lorad::loractl
