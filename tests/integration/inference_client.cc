#include "tests/integration/inference_client.h"

namespace lorad::testing {

v1::GenerateRequest GreedyRequest(const std::string& prompt, uint32_t max_new_tokens) {
  v1::GenerateRequest request;
  request.set_prompt(prompt);
  request.mutable_sampling()->set_max_new_tokens(max_new_tokens);
  request.mutable_sampling()->set_ignore_eos(true);
  return request;
}

StreamResult RunStream(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
                       std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub.GenerateStream(&context, request);
  StreamResult result;
  v1::GenerateResponse message;
  while (reader->Read(&message)) {
    ++result.messages;
    result.text += message.text();
    result.token_ids.insert(result.token_ids.end(), message.token_ids().begin(),
                            message.token_ids().end());
    if (message.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      result.finish_reason = message.finish_reason();
      result.usage = message.usage();
    }
  }
  result.status = reader->Finish();
  return result;
}

grpc::Status RunUnary(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
                      v1::GenerateResponse* response, std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  return stub.Generate(&context, request, response);
}

}  // namespace lorad::testing
