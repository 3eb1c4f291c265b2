// Hand-written matchers for the GPT-2, Llama 3 and Qwen2 split regexes, ported from llama.cpp's
// unicode_regex_split_custom_* so that word boundaries agree with it codepoint for codepoint.
// Each refines a split: it takes word lengths and returns finer word lengths; regex lookarounds
// never see past the edge of the word being split.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace lorad::tokenizer_internal {

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<size_t> SplitGpt2(absl::Span<const uint32_t> cps, absl::Span<const size_t> words);

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// max_digits is 3 for Llama 3 and 1 for Qwen2.
std::vector<size_t> SplitLlama3Like(absl::Span<const uint32_t> cps, absl::Span<const size_t> words,
                                    size_t max_digits);

}  // namespace lorad::tokenizer_internal
