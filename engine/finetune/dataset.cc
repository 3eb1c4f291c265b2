#include "engine/finetune/dataset.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace lorad::finetune {
namespace {

using nlohmann::json;

enum class Shape { kText, kPromptCompletion, kMessages };

const char* ShapeName(Shape shape) {
  switch (shape) {
    case Shape::kText:
      return "{\"text\"}";
    case Shape::kPromptCompletion:
      return "{\"prompt\", \"completion\"}";
    case Shape::kMessages:
      return "{\"messages\"}";
  }
  return "";
}

absl::Status LineError(int64_t line, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("dataset line ", line, ": ", what));
}

absl::StatusOr<Shape> ShapeOf(const json& row, int64_t line) {
  if (row.contains("messages")) return Shape::kMessages;
  if (row.contains("prompt") || row.contains("completion")) return Shape::kPromptCompletion;
  if (row.contains("text")) return Shape::kText;
  return LineError(line,
                   "expected an object with \"messages\", \"prompt\" and \"completion\", or "
                   "\"text\"");
}

absl::StatusOr<std::string> StringField(const json& row, const char* key, int64_t line) {
  auto it = row.find(key);
  if (it == row.end()) return LineError(line, absl::StrCat("missing field \"", key, "\""));
  if (!it->is_string()) return LineError(line, absl::StrCat("\"", key, "\" is not a string"));
  return it->get<std::string>();
}

// Appends the tokens of `text` with every token's target flag set to `target`.
absl::Status Append(const Tokenizer& tok, const std::string& text, bool add_special,
                    bool parse_special, bool target, int64_t line, const char* what,
                    TrainExample* ex) {
  absl::StatusOr<std::vector<int32_t>> ids = tok.Encode(text, add_special, parse_special);
  if (!ids.ok()) return LineError(line, absl::StrCat(what, ": ", ids.status().message()));
  for (int32_t id : *ids) {
    ex->tokens.push_back(id);
    ex->target.push_back(target ? 1 : 0);
  }
  return absl::OkStatus();
}

// Appends end-of-sequence as a target so that the adapter learns to stop, unless the text
// already ends with it (or the tokenizer has none).
void AppendEos(const Tokenizer& tok, TrainExample* ex) {
  if (tok.eos_id() < 0 || (!ex->tokens.empty() && ex->tokens.back() == tok.eos_id())) return;
  ex->tokens.push_back(tok.eos_id());
  ex->target.push_back(1);
}

absl::Status BuildText(const json& row, const Tokenizer& tok, int64_t line, TrainExample* ex) {
  LORAD_ASSIGN_OR_RETURN(std::string text, StringField(row, "text", line));
  if (text.empty()) return LineError(line, "\"text\" is empty");
  LORAD_RETURN_IF_ERROR(Append(tok, text, true, true, true, line, "\"text\"", ex));
  AppendEos(tok, ex);
  return absl::OkStatus();
}

absl::Status BuildPromptCompletion(const json& row, const Tokenizer& tok, bool train_on_inputs,
                                   int64_t line, TrainExample* ex) {
  LORAD_ASSIGN_OR_RETURN(std::string prompt, StringField(row, "prompt", line));
  LORAD_ASSIGN_OR_RETURN(std::string completion, StringField(row, "completion", line));
  if (prompt.empty()) return LineError(line, "\"prompt\" is empty");
  if (completion.empty()) return LineError(line, "\"completion\" is empty");
  // The prompt as Generate tokenizes a prompt; the completion as the text the model continues
  // with, then end-of-sequence so that the adapter learns to stop.
  LORAD_RETURN_IF_ERROR(Append(tok, prompt, true, true, train_on_inputs, line, "\"prompt\"", ex));
  LORAD_RETURN_IF_ERROR(Append(tok, completion, false, false, true, line, "\"completion\"", ex));
  AppendEos(tok, ex);
  return absl::OkStatus();
}

// A conversation and, per message, whether its tokens are trained on (OpenAI's "weight").
struct Conversation {
  std::vector<ChatMessage> messages;
  std::vector<bool> trained;  // assistant turns: weight != 0; others: false
};

absl::StatusOr<Conversation> Messages(const json& row, int64_t line) {
  const json& list = row.at("messages");
  if (!list.is_array() || list.empty()) {
    return LineError(line, "\"messages\" must be a non-empty array");
  }
  Conversation out;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    const std::string where = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return LineError(line, absl::StrCat(where, " is not an object"));
    auto role = m.find("role");
    auto content = m.find("content");
    if (role == m.end() || !role->is_string()) {
      return LineError(line, absl::StrCat(where, ".role is missing or not a string"));
    }
    if (content == m.end() || !content->is_string()) {
      return LineError(line, absl::StrCat(where, ".content is missing or not a string"));
    }
    ChatMessage msg{role->get<std::string>(), content->get<std::string>()};
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant") {
      return LineError(
          line, absl::StrCat(where, ".role \"", msg.role, "\": must be system, user or assistant"));
    }
    bool trained = msg.role == "assistant";
    if (auto weight = m.find("weight"); weight != m.end()) {
      if (!weight->is_number() || (*weight != 0 && *weight != 1)) {
        return LineError(line, absl::StrCat(where, ".weight must be 0 or 1"));
      }
      if (msg.role != "assistant") {
        return LineError(line, absl::StrCat(where, ".weight is only allowed on assistant turns"));
      }
      trained = *weight == 1;
    }
    out.messages.push_back(std::move(msg));
    out.trained.push_back(trained);
  }
  return out;
}

// Renders messages[0, n) (empty for n == 0).
absl::StatusOr<std::string> Render(const ChatTemplate& tmpl, const std::vector<ChatMessage>& m,
                                   size_t n, bool generation_prompt, int64_t line) {
  if (n == 0) return std::string();
  absl::StatusOr<std::string> text =
      ApplyChatTemplate(tmpl, absl::MakeConstSpan(m.data(), n), generation_prompt);
  if (!text.ok()) return LineError(line, std::string(text.status().message()));
  return *std::move(text);
}

// The conversation rendered with the chat template, cut at turn boundaries: text up to each
// assistant turn (with the generation prompt, as inference renders it) is context, the
// assistant's content and closing tag are targets (unless its weight is 0). Pieces are tokenized
// separately, which is how inference tokenizes a prompt that the model then continues. With
// `train_on_inputs` every piece is a target.
absl::Status BuildMessages(const json& row, const Tokenizer& tok, const ChatTemplate& tmpl,
                           bool train_on_inputs, int64_t line, TrainExample* ex) {
  LORAD_ASSIGN_OR_RETURN(Conversation conversation, Messages(row, line));
  const std::vector<ChatMessage>& messages = conversation.messages;
  std::string done;  // text already appended
  bool any_assistant = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant") continue;
    if (i == 0)
      return LineError(line, "messages[0] is an assistant turn with no context before it");
    if (messages[i].content.empty()) {
      return LineError(line, absl::StrCat("messages[", i, "].content is empty"));
    }
    LORAD_ASSIGN_OR_RETURN(std::string prefix, Render(tmpl, messages, i, true, line));
    LORAD_ASSIGN_OR_RETURN(std::string full, Render(tmpl, messages, i + 1, false, line));
    if (prefix.compare(0, done.size(), done) != 0 || full.compare(0, prefix.size(), prefix) != 0) {
      return LineError(line, "the chat template does not render this conversation turn by turn");
    }
    LORAD_RETURN_IF_ERROR(Append(tok, prefix.substr(done.size()), done.empty(), true,
                                 train_on_inputs, line, "messages", ex));
    LORAD_RETURN_IF_ERROR(Append(tok, full.substr(prefix.size()), false, true,
                                 train_on_inputs || conversation.trained[i], line, "messages", ex));
    done = std::move(full);
    any_assistant = true;
  }
  if (!any_assistant) return LineError(line, "no assistant message to learn from");
  return absl::OkStatus();
}

int64_t CountTargets(const TrainExample& ex) {
  int64_t targets = 0;
  for (uint8_t t : ex.target) targets += t;
  return targets;
}

constexpr const char* kOverlongNames[] = {"error", "truncate", "drop"};

}  // namespace

absl::Status ParseOverlongPolicy(std::string_view name, OverlongPolicy* out) {
  for (int i = 0; i < 3; ++i) {
    if (name == kOverlongNames[i]) {
      *out = static_cast<OverlongPolicy>(i);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown over-long policy '", std::string(name),
                                                 "' (expected error, truncate or drop)"));
}

const char* OverlongPolicyName(OverlongPolicy policy) {
  return kOverlongNames[static_cast<int>(policy)];
}

absl::StatusOr<ParsedDataset> ParseJsonlDataset(std::string_view jsonl, const Tokenizer& tokenizer,
                                                const ChatTemplate& chat_template,
                                                const DatasetOptions& limits) {
  if (static_cast<int64_t>(jsonl.size()) > limits.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset is ", jsonl.size(), " bytes; the limit is ", limits.max_bytes));
  }
  ParsedDataset parsed;
  std::vector<TrainExample>& out = parsed.examples;
  std::optional<Shape> shape;
  int64_t line = 0;
  size_t pos = 0;
  while (pos < jsonl.size()) {
    size_t end = jsonl.find('\n', pos);
    if (end == std::string_view::npos) end = jsonl.size();
    std::string_view text = jsonl.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.find_first_not_of(" \t") == std::string_view::npos) continue;
    json row = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (row.is_discarded()) return LineError(line, "not valid JSON");
    if (!row.is_object()) return LineError(line, "not a JSON object");
    LORAD_ASSIGN_OR_RETURN(Shape this_shape, ShapeOf(row, line));
    if (!shape.has_value()) shape = this_shape;
    if (this_shape != *shape) {
      return LineError(line, absl::StrCat("shape ", ShapeName(this_shape),
                                          " differs from the first line's ", ShapeName(*shape)));
    }
    if (static_cast<int64_t>(out.size()) >= limits.max_examples) {
      return LineError(line, absl::StrCat("more than ", limits.max_examples, " examples"));
    }
    TrainExample ex;
    ex.line = line;
    switch (this_shape) {
      case Shape::kText:
        LORAD_RETURN_IF_ERROR(BuildText(row, tokenizer, line, &ex));
        break;
      case Shape::kPromptCompletion:
        LORAD_RETURN_IF_ERROR(
            BuildPromptCompletion(row, tokenizer, limits.train_on_inputs, line, &ex));
        break;
      case Shape::kMessages:
        LORAD_RETURN_IF_ERROR(
            BuildMessages(row, tokenizer, chat_template, limits.train_on_inputs, line, &ex));
        break;
    }
    if (!ex.target.empty()) ex.target[0] = 0;  // the first token has nothing to predict it
    if (CountTargets(ex) == 0) return LineError(line, "no tokens to learn (too short)");
    if (static_cast<int64_t>(ex.tokens.size()) > limits.max_seq_len) {
      switch (limits.overlong) {
        case OverlongPolicy::kError:
          return LineError(
              line, absl::StrCat(ex.tokens.size(), " tokens; max_seq_len is ", limits.max_seq_len,
                                 " (or set truncation to truncate or drop)"));
        case OverlongPolicy::kDrop:
          ++parsed.dropped;
          continue;
        case OverlongPolicy::kTruncate:
          ex.tokens.resize(limits.max_seq_len);
          ex.target.resize(limits.max_seq_len);
          if (CountTargets(ex) == 0) {
            ++parsed.dropped;
            continue;
          }
          ++parsed.truncated;
          break;
      }
    }
    out.push_back(std::move(ex));
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(parsed.dropped > 0
                                          ? absl::StrCat("dataset is empty: all ", parsed.dropped,
                                                         " examples are longer than max_seq_len (",
                                                         limits.max_seq_len, ")")
                                          : std::string("dataset is empty: no JSONL lines"));
  }
  return parsed;
}

}  // namespace lorad::finetune
