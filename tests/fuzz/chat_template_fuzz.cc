// Fuzz target: the chat template renderer. Input: a length-prefixed template source (detected
// as a family, as a model's tokenizer.chat_template is), a flags byte (bit 0:
// add_generation_prompt), then messages, each a role byte (0 system, 1 user, 2 assistant,
// anything else a role the API refuses) and a length-prefixed content. Renders with the detected
// family, then the rendered prompt is tokenized as Generate tokenizes it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/tokenizer/chat_template.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorad;
  fuzz::ByteReader in(data, size);
  const std::string_view source = in.Field();
  const bool generation_prompt = (in.Byte() & 1) != 0;
  std::vector<ChatMessage> messages;
  while (!in.empty() && messages.size() < 64) {
    const uint8_t role = in.Byte();
    ChatMessage m;
    m.role = role == 0 ? "system" : role == 1 ? "user" : role == 2 ? "assistant" : "tool";
    m.content = std::string(in.Field());
    messages.push_back(std::move(m));
  }
  const ChatTemplate tmpl = DetectChatTemplate(source);
  ChatTemplateFamilyName(tmpl.family);
  absl::StatusOr<std::string> text = ApplyChatTemplate(tmpl, messages, generation_prompt);
  if (!text.ok()) {
    if (text.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  fuzz::TinyTokenizer().Encode(*text, /*add_special=*/true, /*parse_special=*/true).IgnoreError();
  return 0;
}
