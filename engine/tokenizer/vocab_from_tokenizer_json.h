// VocabData from a Hugging Face tokenizer.json (+ tokenizer_config.json), for HF model
// directories. Supported: BPE with a ByteLevel pre-tokenizer (GPT-2, SmolLM2, Llama 3, Qwen2)
// and the Llama 2 style SentencePiece BPE with byte fallback ("▁" spaces, <0xXX> tokens).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/tokenizer/vocab.h"

namespace lorad {

// Parses `json_text` (tokenizer.json). `tokenizer_config_json` (tokenizer_config.json, may be
// empty) supplies bos/eos/unk/pad tokens, add_bos_token/add_eos_token and chat_template; without
// it, BOS insertion is read from a TemplateProcessing post-processor. added_tokens become
// control tokens (special: true) or user-defined tokens. The pre-tokenizer name is derived from
// the pre_tokenizer section ("smollm" for Digits + ByteLevel, "llama-bpe" / "qwen2" for their
// Split regexes, else "gpt2"). SentencePiece scores are derived from merge ranks.
// Errors: InvalidArgument naming the unsupported or malformed part.
absl::StatusOr<VocabData> VocabFromTokenizerJson(const std::string& json_text,
                                                 const std::string& tokenizer_config_json);

}  // namespace lorad
