// Fuzz target: the tokenizer. The first input byte picks the mode: bit 0 add_special, bit 1
// parse_special; bits 2-3 the vocabulary:
//   0, 3: the tiny fixture model's byte-level BPE with ChatML specials;
//   1: the SentencePiece BPE test vocabulary (byte fallback, space prefix);
//   2: the model at $LORAD_FUZZ_MODEL (the default model's 49k-token byte-level BPE when
//      scripts/fuzz.sh finds it), else the tiny one.
// The rest is the text, which may be any bytes. Checked beyond "no crash":
//   - Encode of invalid UTF-8 is an INVALID_ARGUMENT, never a crash;
//   - every id Encode returns is in the vocabulary;
//   - for valid UTF-8 without special-token parsing and without added BOS/EOS, decoding the ids
//     gives the text back: byte-level BPE is lossless, and so is SentencePiece for text without
//     U+2581 ("▁", which it stores spaces as, so a literal one decodes to a space).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

// Strict UTF-8: no overlongs, no surrogates, nothing past U+10FFFF. Written here on purpose
// rather than taken from engine/tokenizer: it is the oracle the tokenizer's own check is
// compared against, so it must not be that check.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorad;
  fuzz::ByteReader in(data, size);
  const uint8_t mode = in.Byte();
  const bool add_special = (mode & 1) != 0;
  const bool parse_special = (mode & 2) != 0;
  const int vocabulary = (mode >> 2) & 3;
  const Tokenizer* model = vocabulary == 2 ? fuzz::ModelTokenizer() : nullptr;
  const Tokenizer& tokenizer = vocabulary == 1    ? fuzz::SentencePieceTokenizer()
                               : model != nullptr ? *model
                                                  : fuzz::TinyTokenizer();
  const std::string_view text = in.Rest();
  const bool lossless = vocabulary != 1 || text.find("\xE2\x96\x81") == std::string_view::npos;
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text, add_special, parse_special);
  const bool valid = IsValidUtf8(text);
  if (!ids.ok()) {
    // Only malformed UTF-8 may be refused.
    if (valid || ids.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  for (int32_t id : *ids) {
    if (id < 0 || id >= tokenizer.vocab_size()) __builtin_trap();
    tokenizer.TokenPiece(id);
  }
  const std::string decoded = tokenizer.Decode(*ids);
  tokenizer.Decode(*ids, /*skip_special=*/true);
  if (valid && lossless && !add_special && !parse_special && decoded != text) __builtin_trap();
  return 0;
}
