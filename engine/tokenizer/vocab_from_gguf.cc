#include "engine/tokenizer/vocab_from_gguf.h"

#include <string_view>

#include "engine/base/status_macros.h"

namespace lorad {
namespace {

// Optional integer id: -1 when absent.
absl::StatusOr<int32_t> OptionalId(const GgufFile& gguf, std::string_view key) {
  if (!gguf.Has(key)) return -1;
  LORAD_ASSIGN_OR_RETURN(int64_t id, gguf.GetInt(key));
  return static_cast<int32_t>(id);
}

absl::StatusOr<bool> OptionalBool(const GgufFile& gguf, std::string_view key, bool fallback) {
  if (!gguf.Has(key)) return fallback;
  return gguf.GetBool(key);
}

}  // namespace

absl::StatusOr<VocabData> VocabFromGguf(const GgufFile& gguf) {
  VocabData v;
  LORAD_ASSIGN_OR_RETURN(v.model, gguf.GetString("tokenizer.ggml.model"));
  if (gguf.Has("tokenizer.ggml.pre")) {
    LORAD_ASSIGN_OR_RETURN(v.pre, gguf.GetString("tokenizer.ggml.pre"));
  }
  LORAD_ASSIGN_OR_RETURN(v.tokens, gguf.GetStringArray("tokenizer.ggml.tokens"));
  if (gguf.Has("tokenizer.ggml.scores")) {
    LORAD_ASSIGN_OR_RETURN(v.scores, gguf.GetFloatArray("tokenizer.ggml.scores"));
  }
  if (gguf.Has("tokenizer.ggml.token_type")) {
    LORAD_ASSIGN_OR_RETURN(std::vector<int64_t> types,
                           gguf.GetIntArray("tokenizer.ggml.token_type"));
    v.token_types.assign(types.begin(), types.end());
  }
  if (gguf.Has("tokenizer.ggml.merges")) {
    LORAD_ASSIGN_OR_RETURN(v.merges, gguf.GetStringArray("tokenizer.ggml.merges"));
  }
  LORAD_ASSIGN_OR_RETURN(v.bos_id, OptionalId(gguf, "tokenizer.ggml.bos_token_id"));
  LORAD_ASSIGN_OR_RETURN(v.eos_id, OptionalId(gguf, "tokenizer.ggml.eos_token_id"));
  LORAD_ASSIGN_OR_RETURN(v.unk_id, OptionalId(gguf, "tokenizer.ggml.unknown_token_id"));
  LORAD_ASSIGN_OR_RETURN(v.pad_id, OptionalId(gguf, "tokenizer.ggml.padding_token_id"));
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    LORAD_ASSIGN_OR_RETURN(int32_t id, OptionalId(gguf, key));
    if (id >= 0) v.eot_ids.push_back(id);
  }
  const bool spm = v.model == "llama";
  const bool llama3_pre = v.pre == "llama3" || v.pre == "llama-v3" || v.pre == "llama-bpe";
  LORAD_ASSIGN_OR_RETURN(v.add_bos,
                         OptionalBool(gguf, "tokenizer.ggml.add_bos_token", spm || llama3_pre));
  LORAD_ASSIGN_OR_RETURN(v.add_eos, OptionalBool(gguf, "tokenizer.ggml.add_eos_token", false));
  LORAD_ASSIGN_OR_RETURN(v.add_space_prefix,
                         OptionalBool(gguf, "tokenizer.ggml.add_space_prefix", spm));
  if (gguf.Has("tokenizer.chat_template")) {
    LORAD_ASSIGN_OR_RETURN(v.chat_template, gguf.GetString("tokenizer.chat_template"));
  }
  return v;
}

}  // namespace lorad
