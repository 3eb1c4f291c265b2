// The GPT-2 byte-to-unicode table of byte-level BPE: every byte maps to one printable codepoint
// (printable Latin-1 maps to itself, the rest to U+0100...), so token text is valid UTF-8.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lorad::tokenizer_internal {

// UTF-8 text of the codepoint standing for `byte` (e.g. 0x20 -> "Ġ").
const std::string& ByteToUnicode(uint8_t byte);

// Appends the raw bytes that the byte-level text of a token stands for. A codepoint outside
// the table (possible in hand-added tokens) is copied through as its own UTF-8.
void UnicodeToBytes(std::string_view text, std::string* out);

}  // namespace lorad::tokenizer_internal
