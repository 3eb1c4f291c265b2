#include "engine/model/gguf_vocab.h"

#include "engine/base/status_macros.h"

namespace lorad {
namespace {

absl::StatusOr<int32_t> OptionalId(const GgufFile& f, const char* key) {
  if (!f.Has(key)) return -1;
  LORAD_ASSIGN_OR_RETURN(int64_t v, f.GetInt(key));
  return static_cast<int32_t>(v);
}

absl::StatusOr<bool> OptionalBool(const GgufFile& f, const char* key, bool fallback) {
  if (!f.Has(key)) return fallback;
  return f.GetBool(key);
}

}  // namespace

absl::StatusOr<VocabData> VocabFromGguf(const GgufFile& f) {
  VocabData v;
  LORAD_ASSIGN_OR_RETURN(v.model, f.GetString("tokenizer.ggml.model"));
  LORAD_ASSIGN_OR_RETURN(v.tokens, f.GetStringArray("tokenizer.ggml.tokens"));
  if (f.Has("tokenizer.ggml.pre")) {
    LORAD_ASSIGN_OR_RETURN(v.pre, f.GetString("tokenizer.ggml.pre"));
  }
  if (f.Has("tokenizer.ggml.scores")) {
    LORAD_ASSIGN_OR_RETURN(v.scores, f.GetFloatArray("tokenizer.ggml.scores"));
  }
  if (f.Has("tokenizer.ggml.token_type")) {
    LORAD_ASSIGN_OR_RETURN(std::vector<int64_t> types, f.GetIntArray("tokenizer.ggml.token_type"));
    v.token_types.assign(types.begin(), types.end());
  }
  if (f.Has("tokenizer.ggml.merges")) {
    LORAD_ASSIGN_OR_RETURN(v.merges, f.GetStringArray("tokenizer.ggml.merges"));
  }
  LORAD_ASSIGN_OR_RETURN(v.bos_id, OptionalId(f, "tokenizer.ggml.bos_token_id"));
  LORAD_ASSIGN_OR_RETURN(v.eos_id, OptionalId(f, "tokenizer.ggml.eos_token_id"));
  LORAD_ASSIGN_OR_RETURN(v.unk_id, OptionalId(f, "tokenizer.ggml.unknown_token_id"));
  LORAD_ASSIGN_OR_RETURN(v.pad_id, OptionalId(f, "tokenizer.ggml.padding_token_id"));
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    LORAD_ASSIGN_OR_RETURN(int32_t id, OptionalId(f, key));
    if (id >= 0) v.eot_ids.push_back(id);
  }
  const bool spm = v.model == "llama";
  LORAD_ASSIGN_OR_RETURN(v.add_bos, OptionalBool(f, "tokenizer.ggml.add_bos_token", spm));
  LORAD_ASSIGN_OR_RETURN(v.add_eos, OptionalBool(f, "tokenizer.ggml.add_eos_token", false));
  LORAD_ASSIGN_OR_RETURN(v.add_space_prefix,
                         OptionalBool(f, "tokenizer.ggml.add_space_prefix", spm));
  if (f.Has("tokenizer.chat_template")) {
    LORAD_ASSIGN_OR_RETURN(v.chat_template, f.GetString("tokenizer.chat_template"));
  }
  return v;
}

}  // namespace lorad
