#include "engine/tokenizer/vocab_from_tokenizer_json.h"

#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace lorad {
namespace {

using json = nlohmann::json;

absl::StatusOr<json> Parse(const std::string& text, const char* what) {
  json j = json::parse(text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a JSON object"));
  }
  return j;
}

// Collects every pre-tokenizer of a (possibly Sequence) pre_tokenizer section.
void Flatten(const json& pre, std::vector<json>* out) {
  if (!pre.is_object()) return;
  if (pre.value("type", "") == "Sequence" && pre.contains("pretokenizers")) {
    for (const json& p : pre["pretokenizers"]) Flatten(p, out);
  } else {
    out->push_back(pre);
  }
}

// tokenizer.ggml.pre name for a byte-level pre_tokenizer section.
absl::StatusOr<std::string> ByteLevelPreName(const json& pre_section) {
  std::vector<json> pres;
  Flatten(pre_section, &pres);
  bool byte_level = false, digits = false;
  std::string split_regex;
  for (const json& p : pres) {
    const std::string type = p.value("type", "");
    if (type == "ByteLevel") byte_level = true;
    if (type == "Digits" && p.value("individual_digits", false)) digits = true;
    if (type == "Split" && p.contains("pattern") && p["pattern"].contains("Regex")) {
      split_regex = p["pattern"]["Regex"].get<std::string>();
    }
  }
  if (!byte_level) return absl::InvalidArgumentError("BPE tokenizer without a ByteLevel step");
  if (!split_regex.empty()) {
    if (split_regex.find("\\p{N}{1,3}") != std::string::npos) return std::string("llama-bpe");
    if (split_regex.find("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|") != std::string::npos) {
      return std::string("qwen2");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported Split pre-tokenizer regex: ", split_regex));
  }
  return std::string(digits ? "smollm" : "gpt2");
}

// A token given as "text" or {"content": "text"} in tokenizer_config.json.
std::string TokenText(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return std::string();
}

int32_t IdOf(const absl::flat_hash_map<std::string, int32_t>& ids, const std::string& text) {
  auto it = ids.find(text);
  return text.empty() || it == ids.end() ? -1 : it->second;
}

absl::StatusOr<VocabData> FromJson(const std::string& json_text,
                                   const std::string& tokenizer_config_json) {
  LORAD_ASSIGN_OR_RETURN(json root, Parse(json_text, "tokenizer.json"));
  json config = json::object();
  if (!tokenizer_config_json.empty()) {
    LORAD_ASSIGN_OR_RETURN(config, Parse(tokenizer_config_json, "tokenizer_config.json"));
  }
  const json& model = root.contains("model") ? root["model"] : json();
  if (!model.is_object() || model.value("type", "BPE") != "BPE" || !model.contains("vocab") ||
      !model["vocab"].is_object()) {
    return absl::InvalidArgumentError("tokenizer.json: only BPE models with a vocab are supported");
  }

  VocabData v;
  const bool byte_fallback = model.value("byte_fallback", false);
  if (byte_fallback) {
    v.model = "llama";
    const json& norm = root.contains("normalizer") ? root["normalizer"] : json();
    v.add_space_prefix = norm.is_object() && norm.dump().find("Prepend") != std::string::npos;
    if (root.contains("pre_tokenizer") && root["pre_tokenizer"].is_object() &&
        root["pre_tokenizer"].value("type", "") == "Metaspace") {
      v.add_space_prefix = root["pre_tokenizer"].value("prepend_scheme", "always") != "never";
    }
  } else {
    v.model = "gpt2";
    LORAD_ASSIGN_OR_RETURN(
        v.pre, ByteLevelPreName(root.contains("pre_tokenizer") ? root["pre_tokenizer"] : json()));
  }

  // Tokens by id: the model vocab plus added_tokens; holes become unused "[PAD<id>]".
  absl::flat_hash_map<std::string, int32_t> ids;
  std::vector<std::pair<int32_t, std::string>> entries;
  for (const auto& [text, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0) {
      return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: bad id for '", text, "'"));
    }
    entries.emplace_back(id.get<int32_t>(), text);
  }
  std::vector<std::pair<int32_t, bool>> added;  // id, special
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const json& t : root["added_tokens"]) {
      if (!t.contains("id") || !t.contains("content")) continue;
      entries.emplace_back(t["id"].get<int32_t>(), t["content"].get<std::string>());
      added.emplace_back(t["id"].get<int32_t>(), t.value("special", false));
    }
  }
  int32_t n = 0;
  for (const auto& [id, text] : entries) n = std::max(n, id + 1);
  if (n > 16 * 1024 * 1024) return absl::InvalidArgumentError("tokenizer.json: vocab too large");
  v.tokens.assign(n, std::string());
  v.token_types.assign(n, kTokenTypeUnused);
  for (const auto& [id, text] : entries) {
    v.tokens[id] = text;
    v.token_types[id] = kTokenTypeNormal;
    ids[text] = id;
  }
  for (int32_t id = 0; id < n; ++id) {
    if (v.token_types[id] == kTokenTypeUnused) v.tokens[id] = absl::StrCat("[PAD", id, "]");
  }
  for (const auto& [id, special] : added) {
    v.token_types[id] = special ? kTokenTypeControl : kTokenTypeUserDefined;
  }

  // Merges: "a b" strings or ["a", "b"] pairs.
  if (model.contains("merges") && model["merges"].is_array()) {
    for (const json& m : model["merges"]) {
      if (m.is_string()) {
        v.merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2) {
        v.merges.push_back(absl::StrCat(m[0].get<std::string>(), " ", m[1].get<std::string>()));
      } else {
        return absl::InvalidArgumentError("tokenizer.json: malformed merge entry");
      }
    }
  }

  if (v.model == "llama") {
    // SentencePiece scores from merge ranks: earlier merges score higher.
    v.scores.assign(n, -std::numeric_limits<float>::max() / 2);
    for (size_t rank = 0; rank < v.merges.size(); ++rank) {
      const std::string& m = v.merges[rank];
      const size_t space = m.find(' ', 1);
      if (space == std::string::npos) continue;
      const int32_t id = IdOf(ids, m.substr(0, space) + m.substr(space + 1));
      if (id >= 0 && v.scores[id] < -static_cast<float>(rank)) {
        v.scores[id] = -static_cast<float>(rank);
      }
    }
    v.merges.clear();
    for (int b = 0; b < 256; ++b) {
      const int32_t id = IdOf(ids, absl::StrFormat("<0x%02X>", b));
      if (id >= 0) v.token_types[id] = kTokenTypeByte;
    }
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    v.unk_id = IdOf(ids, model["unk_token"].get<std::string>());
    if (v.unk_id >= 0) v.token_types[v.unk_id] = kTokenTypeUnknown;
  }

  // BOS insertion from a TemplateProcessing post-processor, overridden by the config below.
  const json& post = root.contains("post_processor") ? root["post_processor"] : json();
  if (post.is_object() && post.value("type", "") == "TemplateProcessing" &&
      post.contains("single") && post["single"].is_array() && !post["single"].empty()) {
    const json& first = post["single"][0];
    if (first.contains("SpecialToken")) {
      v.bos_id = IdOf(ids, first["SpecialToken"].value("id", ""));
      v.add_bos = v.bos_id >= 0;
    }
  }

  if (config.contains("bos_token")) v.bos_id = IdOf(ids, TokenText(config["bos_token"]));
  if (config.contains("eos_token")) v.eos_id = IdOf(ids, TokenText(config["eos_token"]));
  if (config.contains("unk_token") && v.unk_id < 0) {
    v.unk_id = IdOf(ids, TokenText(config["unk_token"]));
  }
  if (config.contains("pad_token")) v.pad_id = IdOf(ids, TokenText(config["pad_token"]));
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) {
    v.add_bos = config["add_bos_token"].get<bool>();
  }
  if (config.contains("add_eos_token") && config["add_eos_token"].is_boolean()) {
    v.add_eos = config["add_eos_token"].get<bool>();
  }
  if (v.add_bos && v.bos_id < 0) v.add_bos = false;
  if (v.add_eos && v.eos_id < 0) v.add_eos = false;
  if (config.contains("chat_template")) {
    const json& ct = config["chat_template"];
    if (ct.is_string()) {
      v.chat_template = ct.get<std::string>();
    } else if (ct.is_array()) {  // [{"name": "default", "template": "..."}, ...]
      for (const json& entry : ct) {
        if (entry.value("name", "") == "default") v.chat_template = entry.value("template", "");
      }
    }
  }
  return v;
}

}  // namespace

absl::StatusOr<VocabData> VocabFromTokenizerJson(const std::string& json_text,
                                                 const std::string& tokenizer_config_json) {
  try {
    return FromJson(json_text, tokenizer_config_json);
  } catch (const json::exception& e) {  // a field of an unexpected JSON type
    return absl::InvalidArgumentError(absl::StrCat("tokenizer.json: ", e.what()));
  }
}

}  // namespace lorad
