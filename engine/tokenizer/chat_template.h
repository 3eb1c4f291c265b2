// Chat prompts from a list of messages, in the format of the model's own chat template
// (tokenizer.chat_template). Not a Jinja engine: the family is recognized from markers in the
// template text, as llama.cpp's llm_chat_detect_template does, and rendered by hand:
//   ChatML   <|im_start|>role\ncontent<|im_end|>\n  (SmolLM2, Qwen2; a default system message
//            written in the template, e.g. SmolLM2's "You are a helpful AI assistant named
//            SmolLM, trained by Hugging Face", is inserted when the chat has none)
//   Llama 3  <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> (content trimmed;
//            no <|begin_of_text|>: Encode adds BOS)
//   Llama 2  [INST] <<SYS>>\nsystem\n<</SYS>>\n\nuser [/INST]assistant</s>
//   Mistral  [INST] user [/INST] assistant</s> (v1 / v3 / v7 spacing as llama.cpp)
// An empty or unrecognized template falls back to plain ChatML without a default system.
// Templates' extras (tools, dates, custom system prompts computed in Jinja) are not reproduced.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace lorad {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

enum class ChatTemplateFamily {
  kChatMl,
  kLlama3,
  kLlama2,          // [INST] without a system block
  kLlama2Sys,       // [INST] <<SYS>> ... <</SYS>>
  kLlama2SysBos,    // as kLlama2Sys, "<s>" before each later [INST]
  kLlama2SysStrip,  // as kLlama2Sys, message content stripped
  kMistralV1,
  kMistralV3,
  kMistralV3Tekken,
  kMistralV7,
};

struct ChatTemplate {
  ChatTemplateFamily family = ChatTemplateFamily::kChatMl;
  // ChatML: system message the template inserts when the first message is not a system one
  // (empty when it inserts none).
  std::string default_system;
};

// Recognizes the family of a Jinja chat template source. Unknown or empty -> ChatML.
ChatTemplate DetectChatTemplate(std::string_view template_source);

// Name of the family for logs ("chatml", "llama3", "llama2-sys", "mistral-v1", ...).
const char* ChatTemplateFamilyName(ChatTemplateFamily family);

// Renders `messages` in `tmpl`'s format; with `add_generation_prompt` the prompt ends with the
// opening of an assistant turn (the Llama 2 / Mistral formats have none to add). Errors
// (InvalidArgument): no messages, a role other than system/user/assistant (naming the message
// index), and for [INST] formats a system message anywhere but first.
absl::StatusOr<std::string> ApplyChatTemplate(const ChatTemplate& tmpl,
                                              absl::Span<const ChatMessage> messages,
                                              bool add_generation_prompt);

// DetectChatTemplate(template_source) then ApplyChatTemplate.
absl::StatusOr<std::string> ApplyChatTemplate(std::string_view template_source,
                                              absl::Span<const ChatMessage> messages,
                                              bool add_generation_prompt);

}  // namespace lorad
