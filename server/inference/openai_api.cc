#include "server/inference/openai_api.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace lorad::server {
namespace {

using nlohmann::json;

OpenAiError Bad(std::string param, std::string message) {
  return OpenAiError{absl::InvalidArgumentError(absl::StrCat(param, ": ", message)),
                     std::move(param)};
}

// Reads optional field `key` of `body` through `read`, which returns false on a wrong type.
template <typename Read>
std::optional<OpenAiError> Field(const json& body, const char* key, const char* expected,
                                 Read read) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!read(*it)) return Bad(key, absl::StrCat("must be ", expected));
  return std::nullopt;
}

bool ReadNumber(const json& v, float* out) {
  if (!v.is_number()) return false;
  const double d = v.get<double>();
  if (!std::isfinite(d)) return false;
  *out = static_cast<float>(d);
  return true;
}

bool ReadInt(const json& v, int64_t* out) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    if (v.is_number_unsigned() &&
        v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return false;
    }
    *out = v.get<int64_t>();
    return true;
  }
  // 16.0 is an integer too (some clients send floats).
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d != std::floor(d) || std::abs(d) > 9e15) return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

// An int field clamped to int32 (out of range values stay out of range for the engine's check).
bool ReadInt32(const json& v, int32_t* out) {
  int64_t wide = 0;
  if (!ReadInt(v, &wide)) return false;
  *out = static_cast<int32_t>(std::clamp<int64_t>(wide, std::numeric_limits<int32_t>::min(),
                                                  std::numeric_limits<int32_t>::max()));
  return true;
}

// Chat content: a string, or an array of {"type": "text", "text": ...} parts.
std::optional<OpenAiError> ReadContent(const json& content, size_t index, std::string* out) {
  const std::string where = absl::StrCat("messages[", index, "].content");
  if (content.is_string()) {
    *out = content.get<std::string>();
    return std::nullopt;
  }
  if (content.is_null()) return std::nullopt;  // an assistant turn with tool calls, say
  if (!content.is_array()) return Bad(where, "must be a string or an array of text parts");
  for (const json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      return Bad(where, "only {\"type\": \"text\", \"text\": ...} parts are supported");
    }
    *out += part["text"].get<std::string>();
  }
  return std::nullopt;
}

std::optional<OpenAiError> ReadInput(OpenAiEndpoint endpoint, const json& body,
                                     GenerateRequest* out) {
  if (endpoint == OpenAiEndpoint::kCompletions) {
    auto it = body.find("prompt");
    if (it == body.end() || it->is_null()) return Bad("prompt", "is required");
    if (it->is_array()) {
      if (it->size() != 1 || !(*it)[0].is_string()) {
        return Bad("prompt", "must be a string (or an array of one string)");
      }
      out->prompt = (*it)[0].get<std::string>();
    } else if (it->is_string()) {
      out->prompt = it->get<std::string>();
    } else {
      return Bad("prompt", "must be a string");
    }
    if (out->prompt.empty()) return Bad("prompt", "is empty");
    return std::nullopt;
  }
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty()) {
    return Bad("messages", "must be a non-empty array");
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return Bad(absl::StrCat("messages[", i, "].role"), "must be a string");
    }
    ChatMessage message;
    message.role = m["role"].get<std::string>();
    if (message.role == "developer") message.role = "system";  // OpenAI's newer name
    if (message.role != "system" && message.role != "user" && message.role != "assistant") {
      return Bad(absl::StrCat("messages[", i, "].role"),
                 absl::StrCat("'", message.role, "' is not supported (system, user, assistant)"));
    }
    if (!m.contains("content"))
      return Bad(absl::StrCat("messages[", i, "].content"), "is required");
    if (auto e = ReadContent(m["content"], i, &message.content)) return e;
    out->messages.push_back(std::move(message));
  }
  return std::nullopt;
}

std::optional<OpenAiError> ResolveModel(const json& body, const ModelNames& models,
                                        OpenAiRequest* out) {
  auto it = body.find("model");
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) {
    return Bad("model", "must name the base model or an adapter (GET /v1/models lists them)");
  }
  out->model = it->get<std::string>();
  if (out->model == models.base) return std::nullopt;
  if (models.adapter_registered(out->model)) {
    out->engine.adapter_id = out->model;
    return std::nullopt;
  }
  const std::string prefix = models.base + ":";
  if (out->model.rfind(prefix, 0) == 0 &&
      models.adapter_registered(out->model.substr(prefix.size()))) {
    out->engine.adapter_id = out->model.substr(prefix.size());
    return std::nullopt;
  }
  return OpenAiError{absl::NotFoundError(absl::StrCat("model '", out->model,
                                                      "' does not exist (GET /v1/models lists "
                                                      "the base model and every adapter)")),
                     "model"};
}

// Options lorad does not implement, refused by name rather than ignored.
std::optional<OpenAiError> RefuseUnsupported(const json& body) {
  if (auto it = body.find("n"); it != body.end() && !it->is_null()) {
    int64_t n = 0;
    if (!ReadInt(*it, &n) || n != 1) return Bad("n", "only n = 1 is supported");
  }
  if (auto it = body.find("best_of"); it != body.end() && !it->is_null()) {
    int64_t n = 0;
    if (!ReadInt(*it, &n) || n != 1) return Bad("best_of", "only best_of = 1 is supported");
  }
  if (auto it = body.find("echo"); it != body.end() && it->is_boolean() && it->get<bool>()) {
    return Bad("echo", "is not supported");
  }
  if (auto it = body.find("suffix"); it != body.end() && !it->is_null()) {
    return Bad("suffix", "is not supported");
  }
  if (auto it = body.find("logit_bias"); it != body.end() && !it->is_null() && !it->empty()) {
    return Bad("logit_bias", "is not supported");
  }
  for (const char* key : {"tools", "functions", "tool_choice", "function_call"}) {
    if (auto it = body.find(key); it != body.end() && !it->is_null() &&
                                  !(it->is_array() && it->empty()) &&
                                  !(it->is_string() && it->get<std::string>() == "none")) {
      return Bad(key, "tool calling is not supported");
    }
  }
  if (auto it = body.find("response_format"); it != body.end() && !it->is_null()) {
    if (!it->is_object() || it->value("type", "") != "text") {
      return Bad("response_format", "only {\"type\": \"text\"} is supported");
    }
  }
  return std::nullopt;
}

std::optional<OpenAiError> ReadSampling(OpenAiEndpoint endpoint, const json& body,
                                        int32_t default_max_tokens, OpenAiRequest* out) {
  SamplingParams& s = out->engine.sampling;
  s.max_new_tokens = default_max_tokens;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (auto e = Field(body, key, "an integer",
                       [&](const json& v) { return ReadInt32(v, &s.max_new_tokens); })) {
      return e;
    }
  }
  for (const auto& [key, value] : {std::pair<const char*, float*>{"temperature", &s.temperature},
                                   {"top_p", &s.top_p},
                                   {"min_p", &s.min_p},
                                   {"repetition_penalty", &s.repetition_penalty},
                                   {"presence_penalty", &s.presence_penalty},
                                   {"frequency_penalty", &s.frequency_penalty}}) {
    if (auto e = Field(body, key, "a number",
                       [&, value = value](const json& v) { return ReadNumber(v, value); })) {
      return e;
    }
  }
  if (auto e = Field(body, "top_k", "an integer", [&](const json& v) {
        // -1 is vLLM's "off".
        if (!ReadInt32(v, &s.top_k)) return false;
        if (s.top_k == -1) s.top_k = 0;
        return true;
      })) {
    return e;
  }
  if (auto e = Field(body, "seed", "an integer", [&](const json& v) {
        int64_t seed = 0;
        if (!ReadInt(v, &seed)) return false;
        // 0 means "random" to the engine; OpenAI's seed 0 is a fixed seed.
        s.seed = seed == 0 ? 0x5eed5eed5eedull : static_cast<uint64_t>(seed);
        return true;
      })) {
    return e;
  }
  if (auto e = Field(body, "ignore_eos", "a boolean", [&](const json& v) {
        if (!v.is_boolean()) return false;
        s.ignore_eos = v.get<bool>();
        return true;
      })) {
    return e;
  }
  if (auto e = Field(body, "stop", "a string or an array of strings", [&](const json& v) {
        if (v.is_string()) {
          s.stop.push_back(v.get<std::string>());
          return true;
        }
        if (!v.is_array()) return false;
        for (const json& x : v) {
          if (!x.is_string()) return false;
          s.stop.push_back(x.get<std::string>());
        }
        return true;
      })) {
    return e;
  }
  if (endpoint == OpenAiEndpoint::kCompletions) {
    // Legacy completions: logprobs is the number of alternatives (0 = chosen tokens only).
    if (auto e = Field(body, "logprobs", "an integer", [&](const json& v) {
          int32_t n = 0;
          if (!ReadInt32(v, &n) || n < 0) return false;
          out->logprobs = true;
          out->top_logprobs = n;
          return true;
        })) {
      return e;
    }
  } else {
    if (auto e = Field(body, "logprobs", "a boolean", [&](const json& v) {
          if (!v.is_boolean()) return false;
          out->logprobs = v.get<bool>();
          return true;
        })) {
      return e;
    }
    if (auto e = Field(body, "top_logprobs", "an integer", [&](const json& v) {
          return ReadInt32(v, &out->top_logprobs) && out->top_logprobs >= 0;
        })) {
      return e;
    }
    if (out->top_logprobs > 0 && !out->logprobs) {
      return Bad("top_logprobs", "needs logprobs: true");
    }
  }
  // The engine reports the chosen token's log-probability with at least one alternative.
  if (out->logprobs) s.logprobs = std::max(out->top_logprobs, 1);
  if (auto e = Field(body, "stream", "a boolean", [&](const json& v) {
        if (!v.is_boolean()) return false;
        out->stream = v.get<bool>();
        return true;
      })) {
    return e;
  }
  if (auto e = Field(body, "stream_options", "an object", [&](const json& v) {
        if (!v.is_object()) return false;
        auto it = v.find("include_usage");
        if (it != v.end() && !it->is_null()) {
          if (!it->is_boolean()) return false;
          out->include_usage = it->get<bool>();
        }
        return true;
      })) {
    return e;
  }
  if (auto e = Field(body, "user", "a string", [](const json& v) { return v.is_string(); })) {
    return e;
  }
  return std::nullopt;
}

json TokenEntry(const std::string& piece, float logprob) {
  json bytes = json::array();
  for (unsigned char c : piece) bytes.push_back(static_cast<int>(c));
  return {{"token", piece}, {"logprob", logprob}, {"bytes", bytes}};
}

// Chat: {"content": [{token, logprob, bytes, top_logprobs}]}; completions: the legacy arrays.
json LogprobsJson(const OpenAiRequest& request, const std::vector<SampledToken>& tokens) {
  if (request.endpoint == OpenAiEndpoint::kChat) {
    json content = json::array();
    for (const SampledToken& t : tokens) {
      json entry = TokenEntry(t.text, t.logprob);
      json top = json::array();
      for (size_t i = 0; i < t.top.size() && static_cast<int32_t>(i) < request.top_logprobs; ++i) {
        top.push_back(TokenEntry(t.top[i].text, t.top[i].logprob));
      }
      entry["top_logprobs"] = top;
      content.push_back(entry);
    }
    return {{"content", content}};
  }
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  size_t offset = 0;
  for (const SampledToken& t : tokens) {
    const std::string& piece = t.text;
    out["tokens"].push_back(piece);
    out["token_logprobs"].push_back(t.logprob);
    json top = json::object();
    for (size_t i = 0; i < t.top.size() && static_cast<int32_t>(i) < request.top_logprobs; ++i) {
      top[t.top[i].text] = t.top[i].logprob;
    }
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(offset);
    offset += piece.size();
  }
  return out;
}

json Usage(int32_t prompt_tokens, int32_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

json Envelope(const OpenAiRequest& request, const std::string& id, int64_t created, bool chunk) {
  const char* object = request.endpoint == OpenAiEndpoint::kChat
                           ? (chunk ? "chat.completion.chunk" : "chat.completion")
                           : "text_completion";
  return {{"id", id}, {"object", object}, {"created", created}, {"model", request.model}};
}

json FinishJson(const std::optional<FinishReason>& finish) {
  return finish.has_value() ? json(OpenAiFinishReason(*finish)) : json();
}

}  // namespace

const char* OpenAiFinishReason(FinishReason reason) {
  return reason == FinishReason::kLength ? "length" : "stop";
}

std::optional<OpenAiError> ParseOpenAiRequest(OpenAiEndpoint endpoint, std::string_view body,
                                              const ModelNames& models, int32_t default_max_tokens,
                                              OpenAiRequest* out) {
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return OpenAiError{absl::InvalidArgumentError("the body is not valid JSON"), ""};
  }
  if (!parsed.is_object()) {
    return OpenAiError{absl::InvalidArgumentError("the body must be a JSON object"), ""};
  }
  out->endpoint = endpoint;
  if (auto e = ReadInput(endpoint, parsed, &out->engine)) return e;
  if (auto e = RefuseUnsupported(parsed)) return e;
  if (auto e = ReadSampling(endpoint, parsed, default_max_tokens, out)) return e;
  if (auto e = ResolveModel(parsed, models, out)) return e;
  return std::nullopt;
}

std::string OpenAiResponseJson(const OpenAiRequest& request, const std::string& id, int64_t created,
                               const OpenAiOutput& output) {
  json out = Envelope(request, id, created, /*chunk=*/false);
  json choice = {{"index", 0}, {"finish_reason", FinishJson(output.finish)}};
  json logprobs = request.logprobs ? LogprobsJson(request, output.logprobs) : json();
  if (request.endpoint == OpenAiEndpoint::kChat) {
    choice["message"] = {{"role", "assistant"}, {"content", output.text}};
  } else {
    choice["text"] = output.text;
  }
  choice["logprobs"] = logprobs;
  out["choices"] = json::array({choice});
  out["usage"] = Usage(output.prompt_tokens, output.completion_tokens);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string OpenAiChunkJson(const OpenAiRequest& request, const std::string& id, int64_t created,
                            const OpenAiOutput& delta, bool first) {
  json out = Envelope(request, id, created, /*chunk=*/true);
  json choice = {{"index", 0}, {"finish_reason", FinishJson(delta.finish)}};
  if (request.endpoint == OpenAiEndpoint::kChat) {
    json d = json::object();
    if (first) d["role"] = "assistant";
    if (!delta.text.empty() || !delta.finish.has_value()) d["content"] = delta.text;
    choice["delta"] = d;
  } else {
    choice["text"] = delta.text;
  }
  choice["logprobs"] =
      request.logprobs && !delta.logprobs.empty() ? LogprobsJson(request, delta.logprobs) : json();
  out["choices"] = json::array({choice});
  if (request.include_usage) out["usage"] = json();  // OpenAI: null until the usage chunk
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string OpenAiUsageChunkJson(const OpenAiRequest& request, const std::string& id,
                                 int64_t created, int32_t prompt_tokens,
                                 int32_t completion_tokens) {
  json out = Envelope(request, id, created, /*chunk=*/true);
  out["choices"] = json::array();
  out["usage"] = Usage(prompt_tokens, completion_tokens);
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace lorad::server
