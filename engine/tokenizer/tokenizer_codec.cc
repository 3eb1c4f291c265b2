// Tokenizer::Encode / Decode / TokenPiece for both vocabulary kinds.
#include <string>

#include "absl/strings/str_replace.h"
#include "engine/base/status_macros.h"
#include "engine/tokenizer/byte_unicode.h"
#include "engine/tokenizer/spm_merger.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/unicode.h"

namespace lorad {
namespace {

constexpr std::string_view kSpmSpace = "\xE2\x96\x81";  // U+2581 "▁"

// Byte value of a "<0xXX>" token text, or -1.
int ParseByteToken(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= c - '0';
    } else if (c >= 'A' && c <= 'F') {
      value |= c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      value |= c - 'a' + 10;
    } else {
      return -1;
    }
  }
  return value;
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, bool add_special,
                                                       bool parse_special) const {
  // Validate the whole text up front so errors name offsets into the caller's string.
  LORAD_RETURN_IF_ERROR(tokenizer_internal::DecodeUtf8(text).status());
  const auto fragments = tokenizer_internal::SplitSpecialTokens(
      text, parse_special ? specials_all_ : specials_user_defined_);

  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && vocab_.add_bos) out.push_back(vocab_.bos_id);
  bool prev_special = true;  // SentencePiece prefixes a space at the start and after specials
  for (const auto& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    const std::string_view raw = text.substr(f.begin, f.size);
    if (kind_ == Kind::kByteLevelBpe) {
      EncodeByteLevel(raw, &out);
    } else {
      EncodeSentencePiece(raw, vocab_.add_space_prefix && prev_special, &out);
    }
    prev_special = false;
  }
  if (add_special && vocab_.add_eos) out.push_back(vocab_.eos_id);
  return out;
}

void Tokenizer::EncodeByteLevel(std::string_view text, std::vector<int32_t>* out) const {
  auto decoded = tokenizer_internal::DecodeUtf8(text);  // valid: Encode checked the whole text
  if (!decoded.ok()) return;
  const auto& cps = decoded->codepoints;
  const auto& offsets = decoded->byte_offsets;
  const std::vector<size_t> words = tokenizer_internal::SplitWords(pre_, cps);
  const bool whole_word_first = tokenizer_internal::IgnoresMergesForWholeWords(pre_);
  std::string encoded;
  size_t start = 0;
  for (size_t len : words) {
    encoded.clear();
    for (size_t b = offsets[start]; b < offsets[start + len]; ++b) {
      encoded += tokenizer_internal::ByteToUnicode(static_cast<uint8_t>(text[b]));
    }
    merger_->EncodeWord(encoded, index_, whole_word_first, out);
    start += len;
  }
}

void Tokenizer::EncodeSentencePiece(std::string_view text, bool prefix_space,
                                    std::vector<int32_t>* out) const {
  std::string escaped = prefix_space ? std::string(kSpmSpace) : std::string();
  escaped += absl::StrReplaceAll(absl::string_view(text.data(), text.size()),
                                 {{" ", absl::string_view(kSpmSpace.data(), kSpmSpace.size())}});
  tokenizer_internal::SpmEncode(escaped, index_, vocab_.scores, byte_tokens_, vocab_.unk_id, out);
}

std::string Tokenizer::ComputePiece(int32_t id) const {
  const std::string& text = vocab_.tokens[id];
  switch (token_type(id)) {
    case kTokenTypeControl:
    case kTokenTypeUnknown:
    case kTokenTypeUserDefined:
      return text;
    case kTokenTypeByte: {
      const int value = ParseByteToken(text);
      return value >= 0 ? std::string(1, static_cast<char>(value)) : std::string();
    }
    case kTokenTypeNormal: {
      if (kind_ == Kind::kSentencePiece) {
        return absl::StrReplaceAll(text,
                                   {{absl::string_view(kSpmSpace.data(), kSpmSpace.size()), " "}});
      }
      std::string bytes;
      tokenizer_internal::UnicodeToBytes(text, &bytes);
      return bytes;
    }
    default:  // unused / undefined tokens render as nothing, as in llama.cpp
      return std::string();
  }
}

std::string Tokenizer::TokenPiece(int32_t id, bool skip_special) const {
  if (id < 0 || id >= vocab_size()) return std::string();
  if (skip_special && IsSpecial(id)) return std::string();
  return pieces_[id];
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool strip_space = kind_ == Kind::kSentencePiece && vocab_.add_space_prefix;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const bool special = IsSpecial(id);
    if (skip_special && special) continue;
    std::string_view piece = pieces_[id];
    if (strip_space && !special) {
      if (!piece.empty() && piece[0] == ' ') piece.remove_prefix(1);
      strip_space = false;
    }
    out.append(piece);
  }
  return out;
}

}  // namespace lorad
