// SentencePiece-style BPE (Llama 2, Mistral): merges adjacent symbols whose concatenation is a
// vocabulary token, highest score first (leftmost first among equal scores), as llama.cpp's
// llm_tokenizer_spm does; symbols left outside the vocabulary fall back to <0xXX> byte tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/tokenizer/token_index.h"

namespace lorad::tokenizer_internal {

// Encodes `text` (spaces already escaped to U+2581) and appends the token ids to `out`.
// `scores[id]` is the merge priority of token `id`; `byte_tokens[b]` the id of <0xXX> for byte
// b, or -1 (then `unk_id` is used when >= 0, else the byte is dropped).
void SpmEncode(std::string_view text, const TokenIndex& vocab, const std::vector<float>& scores,
               const std::array<int32_t, 256>& byte_tokens, int32_t unk_id,
               std::vector<int32_t>* out);

}  // namespace lorad::tokenizer_internal
