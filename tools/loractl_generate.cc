// `loractl generate [PROMPT]`: calls Inference.GenerateStream and writes the text to stdout as
// it arrives. The prompt is the arguments joined by spaces, or stdin when there are none;
// --chat sends it as one user message through the model's chat template.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lorad/v1/inference.grpc.pb.h"
#include "server/common/affinity.h"
#include "tools/loractl_commands.h"

namespace lorad::loractl {
namespace {

// Generation can take long; without --timeout_s a request gets this many seconds.
constexpr char kGenerateTimeoutS[] = "600";

// Parses the sampling flags into `sampling`. INVALID_ARGUMENT naming the flag on a bad value.
absl::Status ParseSampling(const Invocation& invocation, v1::SamplingParams* sampling) {
  for (const char* name : {"max_new_tokens", "top_k", "logprobs"}) {
    const std::string text = invocation.Flag(name, "");
    if (text.empty()) continue;
    uint32_t value = 0;
    if (!absl::SimpleAtoi(text, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, "=", text, ": expected a non-negative integer"));
    }
    if (std::string(name) == "max_new_tokens") sampling->set_max_new_tokens(value);
    if (std::string(name) == "top_k") sampling->set_top_k(value);
    if (std::string(name) == "logprobs") sampling->set_logprobs(value);
  }
  for (const char* name : {"temperature", "top_p", "min_p", "repetition_penalty",
                           "presence_penalty", "frequency_penalty"}) {
    const std::string text = invocation.Flag(name, "");
    if (text.empty()) continue;
    float value = 0;
    if (!absl::SimpleAtof(text, &value)) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, "=", text, ": expected a number"));
    }
    if (std::string(name) == "temperature") sampling->set_temperature(value);
    if (std::string(name) == "top_p") sampling->set_top_p(value);
    if (std::string(name) == "min_p") sampling->set_min_p(value);
    if (std::string(name) == "repetition_penalty") sampling->set_repetition_penalty(value);
    if (std::string(name) == "presence_penalty") sampling->set_presence_penalty(value);
    if (std::string(name) == "frequency_penalty") sampling->set_frequency_penalty(value);
  }
  if (const std::string text = invocation.Flag("seed", ""); !text.empty()) {
    uint64_t seed = 0;
    if (!absl::SimpleAtoi(text, &seed)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--seed=", text, ": expected a non-negative integer"));
    }
    sampling->set_seed(seed);
  }
  for (const std::string& stop : invocation.FlagValues("stop")) sampling->add_stop(stop);
  sampling->set_ignore_eos(invocation.BoolFlag("ignore_eos"));
  return absl::OkStatus();
}

int UsageError(const absl::Status& status) {
  std::fprintf(stderr, "loractl: generate: %s\n", std::string(status.message()).c_str());
  return kExitUsage;
}

}  // namespace

int RunGenerate(const Invocation& invocation) {
  v1::GenerateRequest request;
  request.set_adapter_id(invocation.Flag("adapter", ""));
  request.set_request_id(invocation.Flag("request_id", ""));
  if (absl::Status status = ParseSampling(invocation, request.mutable_sampling()); !status.ok()) {
    return UsageError(status);
  }
  std::string prompt = absl::StrJoin(invocation.positional, " ");
  if (invocation.positional.empty()) {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (invocation.BoolFlag("chat")) {
    v1::ChatMessages* messages = request.mutable_messages();
    if (const std::string system = invocation.Flag("system", ""); !system.empty()) {
      v1::ChatMessage* message = messages->add_messages();
      message->set_role("system");
      message->set_content(system);
    }
    v1::ChatMessage* message = messages->add_messages();
    message->set_role("user");
    message->set_content(prompt);
  } else {
    request.set_prompt(prompt);
  }

  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Dial(invocation);
  if (!channel.ok()) return UsageError(channel.status());
  grpc::ClientContext context;
  if (absl::Status status = PrepareContext(invocation, &context, kGenerateTimeoutS); !status.ok()) {
    return UsageError(status);
  }
  // For a router in front of several replicas (it hashes on the adapter id).
  if (!request.adapter_id().empty()) {
    context.AddMetadata(server::kAffinityHeader, request.adapter_id());
  }
  auto stub = v1::Inference::NewStub(*channel);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub->GenerateStream(&context, request);
  v1::GenerateResponse response;
  v1::GenerateResponse last;
  bool wrote_text = false;
  while (reader->Read(&response)) {
    std::fwrite(response.text().data(), 1, response.text().size(), stdout);
    std::fflush(stdout);
    wrote_text = wrote_text || !response.text().empty();
    if (response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) last = response;
  }
  const grpc::Status status = reader->Finish();
  if (wrote_text) std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!status.ok()) return ReportRpcError("generate", status);
  if (invocation.BoolFlag("usage")) {
    std::fprintf(stderr, "finish_reason=%s prompt_tokens=%u completion_tokens=%u\n",
                 v1::FinishReason_Name(last.finish_reason()).c_str(), last.usage().prompt_tokens(),
                 last.usage().completion_tokens());
  }
  return kExitOk;
}

}  // namespace lorad::loractl
