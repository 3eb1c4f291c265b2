// Text <-> token ids for the base model: byte-level BPE (GPT-2 family: SmolLM2, Llama 3, Qwen2)
// and SentencePiece BPE (Llama 2, Mistral), matching llama.cpp's tokenizer on the same GGUF
// vocabulary. Thread-safe after Create(): every method is const and touches no mutable state.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/bpe_merger.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/special_splitter.h"
#include "engine/tokenizer/token_index.h"
#include "engine/tokenizer/vocab.h"

namespace lorad {

class Tokenizer {
 public:
  // Validates `vocab` (model kind, sizes of the per-token arrays, special ids in range, merges,
  // pre-tokenizer name) and builds the lookup tables. Errors are InvalidArgument.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(VocabData vocab);

  // Encodes `text`. `add_special` adds BOS/EOS as vocab().add_bos/add_eos say. `parse_special`
  // turns control and unknown token texts in `text` (e.g. "<|im_start|>") into their ids;
  // user-defined tokens are always recognized. Invalid UTF-8 is InvalidArgument naming the
  // byte offset.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text, bool add_special,
                                              bool parse_special) const;

  // Concatenated bytes of the tokens. With `skip_special`, control and unknown tokens render as
  // nothing. SentencePiece vocabularies with add_space_prefix drop the one space that Encode
  // prefixed, from the first non-special token. Out-of-range ids render as nothing.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special = false) const;

  // Raw bytes token `id` contributes to the output (possibly part of a UTF-8 character), for
  // streaming. Byte-level BPE maps back through the GPT-2 byte table; SentencePiece maps "▁" to
  // a space and <0xXX> to its byte. Control/unknown tokens give their text, or "" when
  // `skip_special`. Out-of-range ids give "".
  std::string TokenPiece(int32_t id, bool skip_special = false) const;

  int32_t vocab_size() const { return static_cast<int32_t>(vocab_.tokens.size()); }
  int32_t bos_id() const { return vocab_.bos_id; }
  int32_t eos_id() const { return vocab_.eos_id; }
  // True for EOS and the end-of-turn ids (vocab().eot_ids plus well-known end tokens such as
  // <|im_end|>, <|eot_id|>, <|endoftext|> found by text).
  bool IsEndOfGeneration(int32_t id) const { return end_of_generation_.contains(id); }
  // True for control and unknown tokens (those skip_special hides).
  bool IsSpecial(int32_t id) const;
  // Token type of `id` (kTokenTypeNormal when the vocabulary has no types).
  TokenType token_type(int32_t id) const;
  // The validated vocabulary; eot_ids include the end tokens found by text.
  const VocabData& vocab() const { return vocab_; }

 private:
  enum class Kind { kByteLevelBpe, kSentencePiece };

  Tokenizer(VocabData vocab, Kind kind, tokenizer_internal::TokenIndex index)
      : vocab_(std::move(vocab)), kind_(kind), index_(std::move(index)) {}

  // Appends the ids of one raw-text fragment (valid UTF-8).
  void EncodeByteLevel(std::string_view text, std::vector<int32_t>* out) const;
  void EncodeSentencePiece(std::string_view text, bool prefix_space,
                           std::vector<int32_t>* out) const;
  std::string ComputePiece(int32_t id) const;

  VocabData vocab_;
  Kind kind_;
  tokenizer_internal::TokenIndex index_;
  tokenizer_internal::PreTokenizer pre_ = tokenizer_internal::PreTokenizer::kGpt2;
  std::optional<tokenizer_internal::BpeMerger> merger_;  // byte-level BPE only
  std::array<int32_t, 256> byte_tokens_{};               // <0xXX> ids (SentencePiece)
  // Special tokens split out of text, longest first; `all` with parse_special, else only the
  // user-defined ones. Views point into vocab_.tokens.
  std::vector<tokenizer_internal::SpecialToken> specials_all_;
  std::vector<tokenizer_internal::SpecialToken> specials_user_defined_;
  std::vector<std::string> pieces_;  // TokenPiece(id) for every id, skip_special == false
  absl::flat_hash_set<int32_t> end_of_generation_;
};

}  // namespace lorad
