// Tokenizer::Create: validation of the vocabulary and construction of the lookup tables.
// Encoding and decoding live in tokenizer_codec.cc.
#include "engine/tokenizer/tokenizer.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/status_macros.h"

namespace lorad {
namespace {

using tokenizer_internal::SpecialToken;

// Token texts llama.cpp treats as end of generation whatever the metadata says.
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>",    "<|im_end|>", "<|end|>",         "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<|end_of_text|>", "<EOT>",
};

absl::Status CheckId(const VocabData& v, int32_t id, const char* what) {
  if (id < -1 || id >= static_cast<int32_t>(v.tokens.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", id, " is outside the vocabulary of ", v.tokens.size(), " tokens"));
  }
  return absl::OkStatus();
}

absl::Status Validate(const VocabData& v) {
  if (v.model != "gpt2" && v.model != "llama") {
    return absl::InvalidArgumentError(absl::StrCat("unsupported tokenizer model '", v.model,
                                                   "' (tokenizer.ggml.model); want gpt2 or llama"));
  }
  if (v.tokens.empty()) return absl::InvalidArgumentError("vocabulary has no tokens");
  const size_t n = v.tokens.size();
  if (!v.token_types.empty() && v.token_types.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("token_types has ", v.token_types.size(), " entries for ", n, " tokens"));
  }
  if (!v.scores.empty() && v.scores.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("scores has ", v.scores.size(), " entries for ", n, " tokens"));
  }
  if (v.model == "llama" && v.scores.empty()) {
    return absl::InvalidArgumentError("SentencePiece (llama) vocabulary needs token scores");
  }
  LORAD_RETURN_IF_ERROR(CheckId(v, v.bos_id, "bos_token_id"));
  LORAD_RETURN_IF_ERROR(CheckId(v, v.eos_id, "eos_token_id"));
  LORAD_RETURN_IF_ERROR(CheckId(v, v.unk_id, "unknown_token_id"));
  LORAD_RETURN_IF_ERROR(CheckId(v, v.pad_id, "padding_token_id"));
  for (int32_t id : v.eot_ids) LORAD_RETURN_IF_ERROR(CheckId(v, id, "end-of-turn token id"));
  if (v.add_bos && v.bos_id < 0) {
    return absl::InvalidArgumentError("add_bos_token is set but there is no bos_token_id");
  }
  if (v.add_eos && v.eos_id < 0) {
    return absl::InvalidArgumentError("add_eos_token is set but there is no eos_token_id");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(VocabData vocab) {
  LORAD_RETURN_IF_ERROR(Validate(vocab));
  const Kind kind = vocab.model == "gpt2" ? Kind::kByteLevelBpe : Kind::kSentencePiece;
  tokenizer_internal::TokenIndex index(vocab.tokens);
  std::unique_ptr<Tokenizer> t(new Tokenizer(std::move(vocab), kind, std::move(index)));
  const VocabData& v = t->vocab_;

  if (kind == Kind::kByteLevelBpe) {
    LORAD_ASSIGN_OR_RETURN(t->pre_, tokenizer_internal::PreTokenizerFromName(v.pre));
    LORAD_ASSIGN_OR_RETURN(auto merger, tokenizer_internal::BpeMerger::Create(v.merges));
    t->merger_.emplace(std::move(merger));
  }
  for (int b = 0; b < 256; ++b) {
    t->byte_tokens_[b] = t->index_.Find(absl::StrFormat("<0x%02X>", b));
  }

  // Special tokens, longest first (ties by id, for a deterministic order).
  for (int32_t id = 0; id < t->vocab_size(); ++id) {
    const TokenType type = t->token_type(id);
    const std::string& text = v.tokens[id];
    if (text.empty()) continue;
    if (type == kTokenTypeControl || type == kTokenTypeUnknown) {
      t->specials_all_.push_back({id, text});
    } else if (type == kTokenTypeUserDefined) {
      t->specials_all_.push_back({id, text});
      t->specials_user_defined_.push_back({id, text});
    }
  }
  auto longest_first = [](const SpecialToken& a, const SpecialToken& b) {
    return a.text.size() != b.text.size() ? a.text.size() > b.text.size() : a.id < b.id;
  };
  std::sort(t->specials_all_.begin(), t->specials_all_.end(), longest_first);
  std::sort(t->specials_user_defined_.begin(), t->specials_user_defined_.end(), longest_first);

  // End of generation: EOS, the given end-of-turn ids, and well-known end tokens by text.
  if (v.eos_id >= 0) t->end_of_generation_.insert(v.eos_id);
  for (int32_t id : v.eot_ids) t->end_of_generation_.insert(id);
  for (std::string_view text : kEndOfGenerationTexts) {
    const int32_t id = t->index_.Find(text);
    if (id >= 0 && !t->end_of_generation_.contains(id)) {
      t->end_of_generation_.insert(id);
      t->vocab_.eot_ids.push_back(id);
    }
  }

  t->pieces_.reserve(v.tokens.size());
  for (int32_t id = 0; id < t->vocab_size(); ++id) t->pieces_.push_back(t->ComputePiece(id));
  return t;
}

TokenType Tokenizer::token_type(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return kTokenTypeUndefined;
  if (vocab_.token_types.empty()) return kTokenTypeNormal;
  return static_cast<TokenType>(vocab_.token_types[id]);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const TokenType type = token_type(id);
  return type == kTokenTypeControl || type == kTokenTypeUnknown;
}

}  // namespace lorad
