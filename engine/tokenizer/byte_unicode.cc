#include "engine/tokenizer/byte_unicode.h"

#include <algorithm>
#include <array>

#include "engine/tokenizer/unicode.h"

namespace lorad::tokenizer_internal {
namespace {

struct ByteTables {
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, 512> cp_to_byte;  // codepoints of the table are all below U+0144

  ByteTables() {
    cp_to_byte.fill(-1);
    std::array<uint32_t, 256> cp_of{};
    std::array<bool, 256> direct{};
    for (int b = 0; b < 256; ++b) {
      direct[b] = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    }
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) cp_of[b] = direct[b] ? b : next++;
    for (int b = 0; b < 256; ++b) {
      AppendUtf8(cp_of[b], &byte_to_utf8[b]);
      cp_to_byte[cp_of[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTables& Tables() {
  static const ByteTables* tables = new ByteTables();
  return *tables;
}

}  // namespace

const std::string& ByteToUnicode(uint8_t byte) { return Tables().byte_to_utf8[byte]; }

void UnicodeToBytes(std::string_view text, std::string* out) {
  const ByteTables& t = Tables();
  for (size_t i = 0; i < text.size();) {
    const size_t len = std::min(Utf8SequenceLength(text[i]), text.size() - i);
    uint32_t cp = static_cast<uint8_t>(text[i]);
    if (len == 2) cp = ((cp & 0x1F) << 6) | (static_cast<uint8_t>(text[i + 1]) & 0x3F);
    if (len <= 2 && cp < t.cp_to_byte.size() && t.cp_to_byte[cp] >= 0) {
      out->push_back(static_cast<char>(t.cp_to_byte[cp]));
    } else {
      out->append(text.substr(i, len));
    }
    i += len;
  }
}

}  // namespace lorad::tokenizer_internal
