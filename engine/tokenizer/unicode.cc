#include "engine/tokenizer/unicode.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "engine/tokenizer/unicode_tables.h"

namespace lorad::tokenizer_internal {

uint16_t CodepointFlags(uint32_t cp) {
  if (cp >= 0x110000) return kCpUndefined;
  const UnicodeRange* begin = kUnicodeRanges;
  const UnicodeRange* end = kUnicodeRanges + kUnicodeRangeCount;
  // Last range whose first codepoint is <= cp; the table starts at U+0000.
  const UnicodeRange* it = std::upper_bound(
      begin, end, cp, [](uint32_t v, const UnicodeRange& r) { return v < r.first; });
  return (it - 1)->flags;
}

absl::StatusOr<DecodedText> DecodeUtf8(std::string_view text) {
  DecodedText out;
  out.codepoints.reserve(text.size());
  out.byte_offsets.reserve(text.size() + 1);
  size_t i = 0;
  const size_t n = text.size();
  auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  while (i < n) {
    const uint8_t b0 = byte(i);
    uint32_t cp = 0;
    size_t len = 0;
    if (b0 < 0x80) {
      cp = b0;
      len = 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
      cp = b0 & 0x1F;
      len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      cp = b0 & 0x0F;
      len = 3;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      cp = b0 & 0x07;
      len = 4;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      const uint8_t b = byte(i + k);
      if ((b & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (b & 0x3F);
    }
    // Reject overlong forms, UTF-16 surrogates and values past U+10FFFF.
    if (ok && ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
               (cp >= 0xD800 && cp <= 0xDFFF))) {
      ok = false;
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrFormat("invalid UTF-8 at byte offset %d (byte 0x%02X)", i, b0));
    }
    out.codepoints.push_back(cp);
    out.byte_offsets.push_back(static_cast<uint32_t>(i));
    i += len;
  }
  out.byte_offsets.push_back(static_cast<uint32_t>(n));
  return out;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace lorad::tokenizer_internal
