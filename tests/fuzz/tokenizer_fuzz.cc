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
//     gives the text back: byte-level BPE is lossless except for the bytes whose byte token the
//     vocabulary lacks (SmolLM2's has none for 0x04, 0x06, 0x13, 0x14, 0x16, 0x1d, 0xf1 and
//     0xf2; those are dropped, as llama.cpp's BPE
//     tokenizer skips a symbol that neither it nor its single bytes are a token for), and
//     SentencePiece is lossless for text without U+2581 ("▁", which it stores spaces as, so a
//     literal one decodes to a space).
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer/tokenizer.h"
#include "tests/fixtures/tiny_vocab.h"
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

// Which bytes a byte-level BPE vocabulary has a token for (GPT-2's byte-to-unicode form, from
// the test fixtures rather than the tokenizer under test). Computed once per tokenizer.
const std::array<bool, 256>& RepresentableBytes(const lorad::Tokenizer& tokenizer) {
  static const lorad::Tokenizer* cached_for = nullptr;
  static std::array<bool, 256> cached{};
  if (cached_for != &tokenizer) {
    const absl::flat_hash_set<std::string> tokens(tokenizer.vocab().tokens.begin(),
                                                  tokenizer.vocab().tokens.end());
    for (int b = 0; b < 256; ++b) {
      cached[b] = tokens.contains(lorad::testing::ByteLevelChar(static_cast<uint8_t>(b)));
    }
    cached_for = &tokenizer;
  }
  return cached;
}

// What decoding must give back: `text`, less the bytes a byte-level vocabulary cannot encode.
std::string ExpectedRoundTrip(const lorad::Tokenizer& tokenizer, std::string_view text) {
  if (tokenizer.vocab().model != "gpt2") return std::string(text);
  const std::array<bool, 256>& representable = RepresentableBytes(tokenizer);
  std::string out;
  for (char c : text) {
    if (representable[static_cast<uint8_t>(c)]) out.push_back(c);
  }
  return out;
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
  if (valid && lossless && !add_special && !parse_special &&
      decoded != ExpectedRoundTrip(tokenizer, text)) {
    __builtin_trap();
  }
  return 0;
}
