#include "engine/tokenizer/chat_template.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace lorad {
namespace {

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string Trim(std::string_view s) {
  return std::string(absl::StripAsciiWhitespace(absl::string_view(s.data(), s.size())));
}

// The literal default system message of a ChatML template, written as
// '<|im_start|>system\n' + TEXT + '<|im_end|>' inside one Jinja string literal ("\n" may be a
// real newline or the two characters backslash-n). Returns "" when there is none.
std::string ExtractDefaultSystem(std::string_view tmpl) {
  constexpr std::string_view kOpen = "<|im_start|>system";
  for (size_t pos = tmpl.find(kOpen); pos != std::string_view::npos;
       pos = tmpl.find(kOpen, pos + 1)) {
    std::string_view rest = tmpl.substr(pos + kOpen.size());
    if (rest.substr(0, 1) == "\n") {
      rest.remove_prefix(1);
    } else if (rest.substr(0, 2) == "\\n") {
      rest.remove_prefix(2);
    } else {
      continue;
    }
    const size_t end = rest.find("<|im_end|>");
    if (end == std::string_view::npos) continue;
    const std::string_view raw = rest.substr(0, end);
    // Only a plain literal: no expression, and no unescaped quote that would end the string.
    bool literal = !raw.empty() && !Contains(raw, "{{") && !Contains(raw, "{%");
    std::string text;
    for (size_t i = 0; literal && i < raw.size(); ++i) {
      const char c = raw[i];
      if (c == '\'' || c == '"') {
        literal = false;
      } else if (c == '\\' && i + 1 < raw.size()) {
        const char e = raw[++i];
        text.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
      } else {
        text.push_back(c);
      }
    }
    if (literal) return text;
  }
  return std::string();
}

absl::Status ValidateMessages(absl::Span<const ChatMessage> messages, bool system_first_only) {
  if (messages.empty()) return absl::InvalidArgumentError("chat has no messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      return absl::InvalidArgumentError(
          absl::StrCat("message ", i, " has role '", role, "'; want system, user or assistant"));
    }
    if (system_first_only && role == "system" && i != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "message ", i, " is a system message; this chat format allows one only first"));
    }
  }
  return absl::OkStatus();
}

std::string RenderChatMl(const ChatTemplate& tmpl, absl::Span<const ChatMessage> messages,
                         bool add_generation_prompt) {
  std::string out;
  if (!tmpl.default_system.empty() && messages[0].role != "system") {
    absl::StrAppend(&out, "<|im_start|>system\n", tmpl.default_system, "<|im_end|>\n");
  }
  for (const ChatMessage& m : messages) {
    absl::StrAppend(&out, "<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
  }
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

std::string RenderLlama3(absl::Span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages) {
    absl::StrAppend(&out, "<|start_header_id|>", m.role, "<|end_header_id|>\n\n", Trim(m.content),
                    "<|eot_id|>");
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

// llama.cpp's LLM_CHAT_TEMPLATE_LLAMA_2* rendering.
std::string RenderLlama2(ChatTemplateFamily family, absl::Span<const ChatMessage> messages) {
  const bool system_block = family != ChatTemplateFamily::kLlama2;
  const bool bos_in_history = family == ChatTemplateFamily::kLlama2SysBos;
  const bool strip = family == ChatTemplateFamily::kLlama2SysStrip;
  std::string out = "[INST] ";
  bool inside_turn = true;
  for (const ChatMessage& m : messages) {
    const std::string content = strip ? Trim(m.content) : m.content;
    if (!inside_turn) {
      inside_turn = true;
      out += bos_in_history ? "<s>[INST] " : "[INST] ";
    }
    if (m.role == "system") {
      absl::StrAppend(&out, system_block ? "<<SYS>>\n" : "", content,
                      system_block ? "\n<</SYS>>\n\n" : "\n");
    } else if (m.role == "user") {
      absl::StrAppend(&out, content, " [/INST]");
    } else {
      absl::StrAppend(&out, content, "</s>");
      inside_turn = false;
    }
  }
  return out;
}

// llama.cpp's LLM_CHAT_TEMPLATE_MISTRAL_* rendering.
std::string RenderMistral(ChatTemplateFamily family, absl::Span<const ChatMessage> messages) {
  std::string out;
  if (family == ChatTemplateFamily::kMistralV7) {
    for (const ChatMessage& m : messages) {
      if (m.role == "system") {
        absl::StrAppend(&out, "[SYSTEM_PROMPT] ", m.content, "[/SYSTEM_PROMPT]");
      } else if (m.role == "user") {
        absl::StrAppend(&out, "[INST] ", m.content, "[/INST]");
      } else {
        absl::StrAppend(&out, " ", m.content, "</s>");
      }
    }
    return out;
  }
  const char* leading = family == ChatTemplateFamily::kMistralV1 ? " " : "";
  const char* trailing = family == ChatTemplateFamily::kMistralV3Tekken ? "" : " ";
  const bool trim_assistant = family == ChatTemplateFamily::kMistralV3;
  bool inside_turn = false;
  for (const ChatMessage& m : messages) {
    if (!inside_turn) {
      absl::StrAppend(&out, leading, "[INST]", trailing);
      inside_turn = true;
    }
    if (m.role == "system") {
      absl::StrAppend(&out, m.content, "\n\n");
    } else if (m.role == "user") {
      absl::StrAppend(&out, m.content, leading, "[/INST]");
    } else {
      absl::StrAppend(&out, trailing, trim_assistant ? Trim(m.content) : m.content, "</s>");
      inside_turn = false;
    }
  }
  return out;
}

}  // namespace

ChatTemplate DetectChatTemplate(std::string_view t) {
  ChatTemplate out;
  auto has = [&](std::string_view s) { return Contains(t, s); };
  if (has("<|im_start|>")) {
    out.family = ChatTemplateFamily::kChatMl;
    out.default_system = ExtractDefaultSystem(t);
  } else if (has("<|start_header_id|>") && has("<|end_header_id|>")) {
    out.family = ChatTemplateFamily::kLlama3;
  } else if (t.substr(0, 7) == "mistral" || has("[INST]")) {
    if (has("[SYSTEM_PROMPT]")) {
      out.family = ChatTemplateFamily::kMistralV7;
    } else if (has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]")) {
      out.family = has(" [INST]")      ? ChatTemplateFamily::kMistralV1
                   : has("\"[INST]\"") ? ChatTemplateFamily::kMistralV3Tekken
                                       : ChatTemplateFamily::kMistralV3;
    } else if (has("content.strip()")) {
      out.family = ChatTemplateFamily::kLlama2SysStrip;
    } else if (has("bos_token + '[INST]")) {
      out.family = ChatTemplateFamily::kLlama2SysBos;
    } else if (has("<<SYS>>")) {
      out.family = ChatTemplateFamily::kLlama2Sys;
    } else {
      out.family = ChatTemplateFamily::kLlama2;
    }
  }
  return out;
}

const char* ChatTemplateFamilyName(ChatTemplateFamily family) {
  switch (family) {
    case ChatTemplateFamily::kChatMl:
      return "chatml";
    case ChatTemplateFamily::kLlama3:
      return "llama3";
    case ChatTemplateFamily::kLlama2:
      return "llama2";
    case ChatTemplateFamily::kLlama2Sys:
      return "llama2-sys";
    case ChatTemplateFamily::kLlama2SysBos:
      return "llama2-sys-bos";
    case ChatTemplateFamily::kLlama2SysStrip:
      return "llama2-sys-strip";
    case ChatTemplateFamily::kMistralV1:
      return "mistral-v1";
    case ChatTemplateFamily::kMistralV3:
      return "mistral-v3";
    case ChatTemplateFamily::kMistralV3Tekken:
      return "mistral-v3-tekken";
    case ChatTemplateFamily::kMistralV7:
      return "mistral-v7";
  }
  return "unknown";
}

absl::StatusOr<std::string> ApplyChatTemplate(const ChatTemplate& tmpl,
                                              absl::Span<const ChatMessage> messages,
                                              bool add_generation_prompt) {
  const bool inst_format =
      tmpl.family != ChatTemplateFamily::kChatMl && tmpl.family != ChatTemplateFamily::kLlama3;
  LORAD_RETURN_IF_ERROR(ValidateMessages(messages, inst_format));
  switch (tmpl.family) {
    case ChatTemplateFamily::kChatMl:
      return RenderChatMl(tmpl, messages, add_generation_prompt);
    case ChatTemplateFamily::kLlama3:
      return RenderLlama3(messages, add_generation_prompt);
    case ChatTemplateFamily::kLlama2:
    case ChatTemplateFamily::kLlama2Sys:
    case ChatTemplateFamily::kLlama2SysBos:
    case ChatTemplateFamily::kLlama2SysStrip:
      return RenderLlama2(tmpl.family, messages);
    default:
      return RenderMistral(tmpl.family, messages);
  }
}

absl::StatusOr<std::string> ApplyChatTemplate(std::string_view template_source,
                                              absl::Span<const ChatMessage> messages,
                                              bool add_generation_prompt) {
  return ApplyChatTemplate(DetectChatTemplate(template_source), messages, add_generation_prompt);
}

}  // namespace lorad
