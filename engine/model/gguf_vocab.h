// The tokenizer vocabulary stored in a GGUF file's metadata (tokenizer.ggml.*), as plain
// VocabData for Tokenizer::Create.
#pragma once

#include "absl/status/statusor.h"
#include "engine/base/gguf.h"
#include "engine/tokenizer/vocab.h"

namespace lorad {

// Reads tokenizer.ggml.{model, pre, tokens, scores, token_type, merges, *_token_id, add_*} and
// tokenizer.chat_template. Missing optional keys take llama.cpp's defaults (add_bos true for
// SentencePiece "llama" vocabularies, false for "gpt2"). NOT_FOUND when the file has no
// vocabulary (tokenizer.ggml.model or tokens missing).
absl::StatusOr<VocabData> VocabFromGguf(const GgufFile& file);

}  // namespace lorad
