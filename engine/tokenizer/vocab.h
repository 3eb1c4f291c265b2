// Plain-data vocabulary of a tokenizer, named after the GGUF metadata keys (tokenizer.ggml.*)
// so that any file reader (GGUF, tokenizer.json) can fill it. Tokenizer::Create validates it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lorad {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum TokenType : int32_t {
  kTokenTypeUndefined = 0,
  kTokenTypeNormal = 1,
  kTokenTypeUnknown = 2,
  kTokenTypeControl = 3,      // special: <|im_start|>, <s>, ...; not rendered by Decode
  kTokenTypeUserDefined = 4,  // added token; always split out of text and rendered verbatim
  kTokenTypeUnused = 5,
  kTokenTypeByte = 6,  // SentencePiece byte fallback <0xXX>
};

struct VocabData {
  // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE).
  std::string model;
  // tokenizer.ggml.pre: pre-tokenizer of byte-level BPE ("smollm", "llama-bpe", "qwen2", "gpt2",
  // "default"); ignored for "llama".
  std::string pre;
  // tokenizer.ggml.tokens: token text by id. Byte-level BPE stores bytes through the GPT-2
  // byte-to-unicode table (space = "Ġ"); SentencePiece stores spaces as "▁" (U+2581).
  std::vector<std::string> tokens;
  // tokenizer.ggml.scores: merge priority of SentencePiece tokens (higher merges first). May be
  // empty for byte-level BPE.
  std::vector<float> scores;
  // tokenizer.ggml.token_type (TokenType); empty means all normal.
  std::vector<int32_t> token_types;
  // tokenizer.ggml.merges: "left right" pairs in rank order (byte-level BPE).
  std::vector<std::string> merges;
  int32_t bos_id = -1;  // tokenizer.ggml.bos_token_id
  int32_t eos_id = -1;  // tokenizer.ggml.eos_token_id
  int32_t unk_id = -1;  // tokenizer.ggml.unknown_token_id
  int32_t pad_id = -1;  // tokenizer.ggml.padding_token_id
  // Extra end-of-generation tokens (tokenizer.ggml.eot_token_id, eom_token_id, <|im_end|>, ...).
  // Tokenizer::Create adds well-known end-of-turn tokens found by text, as llama.cpp does.
  std::vector<int32_t> eot_ids;
  bool add_bos = false;           // tokenizer.ggml.add_bos_token
  bool add_eos = false;           // tokenizer.ggml.add_eos_token
  bool add_space_prefix = false;  // tokenizer.ggml.add_space_prefix (SentencePiece)
  std::string chat_template;      // tokenizer.chat_template (Jinja source)
};

}  // namespace lorad
