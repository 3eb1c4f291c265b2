// Splits text into raw-text fragments and special-token fragments before BPE, as llama.cpp's
// tokenizer_st_partition does: longer special tokens are matched first, every occurrence is
// taken, and raw text between them is tokenized on its own.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/types/span.h"

namespace lorad::tokenizer_internal {

struct Fragment {
  int32_t token;  // id of the special token, or -1 for raw text
  size_t begin;   // byte offset of raw text in the input (unused for tokens)
  size_t size;    // byte size of raw text
};

// One candidate special token: its id and exact text (not empty).
struct SpecialToken {
  int32_t id;
  std::string_view text;
};

// Partitions `text`. `specials` must be ordered longest text first; they are matched in that
// order, so a longer token wins over a shorter one it contains.
std::vector<Fragment> SplitSpecialTokens(std::string_view text,
                                         absl::Span<const SpecialToken> specials);

}  // namespace lorad::tokenizer_internal
