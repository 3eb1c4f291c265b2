// Pre-tokenizers of byte-level BPE vocabularies: split text into words before BPE merges, by
// hand-written equivalents of the split regexes llama.cpp uses for each tokenizer.ggml.pre
// value (no std::regex, which has no Unicode classes). The split is over codepoints.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace lorad::tokenizer_internal {

enum class PreTokenizer {
  // llama.cpp LLAMA_VOCAB_PRE_TYPE_DEFAULT: punctuation runs, GPT-2 regex, digit runs, then
  // groups of three ASCII digits.
  kDefault,
  // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // SmolLM / StarCoder: every \p{N} codepoint is its own word, then the GPT-2 regex.
  kSmolLm,
  // Llama 3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
  //          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // Qwen2: as Llama 3 with \p{N} (one digit per word) instead of \p{N}{1,3}.
  kQwen2,
};

// Maps a tokenizer.ggml.pre name ("smollm", "llama-bpe", "qwen2", "gpt2", "default", ...) to a
// pre-tokenizer; unknown names are InvalidArgument. An empty name means kDefault.
absl::StatusOr<PreTokenizer> PreTokenizerFromName(std::string_view name);

// True for pre-tokenizers whose vocabularies take a whole word as one token when it is in the
// vocabulary, before any merge (llama.cpp's ignore_merges, set for Llama 3).
bool IgnoresMergesForWholeWords(PreTokenizer pre);

// Splits `cps` into words; returns the length in codepoints of each word, in order. The
// lengths sum to cps.size() and none is zero.
std::vector<size_t> SplitWords(PreTokenizer pre, absl::Span<const uint32_t> cps);

}  // namespace lorad::tokenizer_internal
