// Byte-level BPE merging of one pre-tokenized word by merge rank, with a priority queue over
// adjacent symbol pairs (O(n log n) per word), in the order llama.cpp's llm_tokenizer_bpe
// applies merges: lowest rank first, leftmost first among equal ranks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/tokenizer/token_index.h"

namespace lorad::tokenizer_internal {

class BpeMerger {
 public:
  // `merges` are "left right" lines in rank order (tokenizer.ggml.merges). A line without a
  // separating space is InvalidArgument naming its index.
  static absl::StatusOr<BpeMerger> Create(const std::vector<std::string>& merges);

  // Merges `word` (token-space text: bytes already mapped through ByteToUnicode, one symbol per
  // UTF-8 codepoint to start) and appends the ids of the resulting tokens. When
  // `whole_word_first` is set and the entire word is a token, that token is used unmerged.
  // A final symbol that is not in the vocabulary falls back to its single-byte tokens.
  void EncodeWord(std::string_view word, const TokenIndex& vocab, bool whole_word_first,
                  std::vector<int32_t>* out) const;

  size_t size() const { return ranks_.size(); }

 private:
  // Rank of the merge (left, right), or -1.
  int32_t Rank(std::string_view left, std::string_view right, std::string* scratch) const;

  // Keyed by left + '\xFF' + right: 0xFF never occurs in UTF-8, so keys cannot collide.
  absl::flat_hash_map<std::string, int32_t> ranks_;
};

}  // namespace lorad::tokenizer_internal
