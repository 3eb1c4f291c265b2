// Generated Unicode category table (see tools/gen_unicode_tables.py): sorted ranges of
// codepoints that share the same flag bits. Read it through CodepointFlags() in unicode.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lorad::tokenizer_internal {

struct UnicodeRange {
  uint32_t first;  // first codepoint of the range; the range ends where the next one starts
  uint16_t flags;  // kCp* bits from unicode.h
};

extern const UnicodeRange kUnicodeRanges[];
extern const size_t kUnicodeRangeCount;
extern const char kUnicodeVersion[];  // Unicode version the table was generated from

}  // namespace lorad::tokenizer_internal
