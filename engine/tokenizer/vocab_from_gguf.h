// VocabData from the tokenizer.* metadata of a GGUF file (read with engine/base/gguf.h).
// Keys: tokenizer.ggml.{model, pre, tokens, scores, token_type, merges, bos_token_id,
// eos_token_id, unknown_token_id, padding_token_id, eot_token_id, eom_token_id, add_bos_token,
// add_eos_token, add_space_prefix} and tokenizer.chat_template. Only model and tokens are
// required; absent flags take llama.cpp's defaults (SentencePiece: add_bos and
// add_space_prefix true; byte-level BPE: false, except add_bos for the Llama 3 pre-tokenizer).
#pragma once

#include "absl/status/statusor.h"
#include "engine/base/gguf.h"
#include "engine/tokenizer/vocab.h"

namespace lorad {

// Errors: NOT_FOUND when a required key is missing, INVALID_ARGUMENT for a key of the wrong
// type (both name the key, via GgufFile's getters).
absl::StatusOr<VocabData> VocabFromGguf(const GgufFile& gguf);

}  // namespace lorad
