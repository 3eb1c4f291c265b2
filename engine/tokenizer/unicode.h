// UTF-8 decoding/encoding and Unicode category lookups used by the BPE pre-tokenizers.
// Decoding is strict (no overlongs, surrogates or codepoints above U+10FFFF) and reports the
// byte offset of the first bad sequence.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace lorad::tokenizer_internal {

// Category bits, the same split as llama.cpp's unicode_cpt_flags (\p{N}, \p{L}, ...).
inline constexpr uint16_t kCpUndefined = 0x0001;    // unassigned (Cn)
inline constexpr uint16_t kCpNumber = 0x0002;       // \p{N}
inline constexpr uint16_t kCpLetter = 0x0004;       // \p{L}
inline constexpr uint16_t kCpSeparator = 0x0008;    // \p{Z}
inline constexpr uint16_t kCpMark = 0x0010;         // \p{M}
inline constexpr uint16_t kCpPunctuation = 0x0020;  // \p{P}
inline constexpr uint16_t kCpSymbol = 0x0040;       // \p{S}
inline constexpr uint16_t kCpControl = 0x0080;      // \p{C} (other than Cn)
inline constexpr uint16_t kCpWhitespace = 0x0100;   // \s (Unicode White_Space)

// Flag bits of `cp`; codepoints beyond U+10FFFF read as kCpUndefined.
uint16_t CodepointFlags(uint32_t cp);

// Text decoded to codepoints, with the byte offset where each one starts in the source.
struct DecodedText {
  std::vector<uint32_t> codepoints;
  std::vector<uint32_t> byte_offsets;  // size codepoints.size() + 1; last = text size
};

// Decodes `text`; invalid UTF-8 is InvalidArgument naming the byte offset of the bad sequence.
absl::StatusOr<DecodedText> DecodeUtf8(std::string_view text);

// Appends the UTF-8 encoding of `cp` (must be <= U+10FFFF) to `out`.
void AppendUtf8(uint32_t cp, std::string* out);

// Length in bytes of the UTF-8 sequence introduced by lead byte `c` (1 for continuation bytes,
// as llama.cpp's symbol splitter treats them).
inline size_t Utf8SequenceLength(char c) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[static_cast<uint8_t>(c) >> 4];
}

}  // namespace lorad::tokenizer_internal
