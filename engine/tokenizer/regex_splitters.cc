#include "engine/tokenizer/regex_splitters.h"

#include "engine/tokenizer/unicode.h"

namespace lorad::tokenizer_internal {
namespace {

constexpr uint32_t kOutOfRange = 0xFFFFFFFF;

// One word of the input split: codepoints [begin, end). Reads outside it are "no character":
// codepoint kOutOfRange and flags 0 (which also differs from kCpUndefined).
class Chunk {
 public:
  Chunk(absl::Span<const uint32_t> cps, size_t begin, size_t end, std::vector<size_t>* out)
      : cps_(cps), begin_(begin), end_(end), prev_end_(begin), out_(out) {}

  size_t end() const { return end_; }
  uint32_t Cp(size_t pos) const { return pos >= begin_ && pos < end_ ? cps_[pos] : kOutOfRange; }
  uint16_t Flags(size_t pos) const {
    return pos >= begin_ && pos < end_ ? CodepointFlags(cps_[pos]) : 0;
  }
  bool IsLetter(size_t pos) const { return Flags(pos) & kCpLetter; }
  bool IsNumber(size_t pos) const { return Flags(pos) & kCpNumber; }
  bool IsSpace(size_t pos) const { return Flags(pos) & kCpWhitespace; }
  // [^\s\p{L}\p{N}] for a codepoint inside the chunk.
  bool IsOther(size_t pos) const {
    const uint16_t f = Flags(pos);
    return f != 0 && !(f & (kCpWhitespace | kCpLetter | kCpNumber));
  }

  // Ends the current word at `end`; returns its length (0 words are dropped).
  size_t Emit(size_t end) {
    const size_t len = end - prev_end_;
    if (len > 0) out_->push_back(len);
    prev_end_ = end;
    return len;
  }

 private:
  absl::Span<const uint32_t> cps_;
  size_t begin_, end_, prev_end_;
  std::vector<size_t>* out_;
};

uint32_t AsciiLower(uint32_t cp) { return cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp; }

// Matches 's|'t|'re|'ve|'m|'ll|'d at `pos` (optionally case-insensitive); returns its length or 0.
size_t MatchContraction(const Chunk& c, size_t pos, bool ignore_case) {
  if (c.Cp(pos) != '\'' || pos + 1 >= c.end()) return 0;
  auto lower = [&](uint32_t cp) { return ignore_case ? AsciiLower(cp) : cp; };
  const uint32_t next = lower(c.Cp(pos + 1));
  if (next == 's' || next == 't' || next == 'm' || next == 'd') return 2;
  if (pos + 2 < c.end()) {
    const uint32_t next2 = lower(c.Cp(pos + 2));
    if ((next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') ||
        (next == 'l' && next2 == 'l')) {
      return 3;
    }
  }
  return 0;
}

// \s+(?!\S) then \s+ at `pos`, the shared tail of all three regexes. Returns false when `pos`
// is not whitespace.
bool MatchTrailingSpaces(Chunk& c, size_t& pos) {
  size_t n = 0;
  while (c.IsSpace(pos + n)) ++n;
  if (n > 1 && c.Cp(pos + n) != kOutOfRange) {
    // \s+(?!\S): leave the last space to prefix the next word.
    pos += n - 1;
    c.Emit(pos);
    return true;
  }
  if (n > 0) {
    pos += n;
    c.Emit(pos);
    return true;
  }
  return false;
}

void SplitGpt2Chunk(Chunk& c, size_t begin) {
  for (size_t pos = begin; pos < c.end();) {
    if (size_t len = MatchContraction(c, pos, /*ignore_case=*/false)) {
      pos += c.Emit(pos + len);
      continue;
    }
    const uint32_t cp = c.Cp(pos);
    // An optional leading space joins the letter, number or symbol run that follows it.
    const size_t body = cp == ' ' ? pos + 1 : pos;
    if (c.IsLetter(body)) {  //  ?\p{L}+
      pos = body;
      while (c.IsLetter(pos)) ++pos;
      c.Emit(pos);
      continue;
    }
    if (c.IsNumber(body)) {  //  ?\p{N}+
      pos = body;
      while (c.IsNumber(pos)) ++pos;
      c.Emit(pos);
      continue;
    }
    if (c.IsOther(body)) {  //  ?[^\s\p{L}\p{N}]+
      pos = body;
      while (c.IsOther(pos)) ++pos;
      c.Emit(pos);
      continue;
    }
    if (MatchTrailingSpaces(c, pos)) continue;
    c.Emit(++pos);  // no match: the codepoint stands alone
  }
}

void SplitLlama3Chunk(Chunk& c, size_t begin, size_t max_digits) {
  for (size_t pos = begin; pos < c.end();) {
    if (size_t len = MatchContraction(c, pos, /*ignore_case=*/true)) {
      pos += c.Emit(pos + len);
      continue;
    }
    const uint32_t cp = c.Cp(pos);
    const uint16_t flags = c.Flags(pos);
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(cp == '\r' || cp == '\n' || (flags & kCpNumber))) {
      if ((flags & kCpLetter) || c.IsLetter(pos + 1)) {
        ++pos;
        while (c.IsLetter(pos)) ++pos;
        c.Emit(pos);
        continue;
      }
    }
    // \p{N}{1,max_digits}
    if (flags & kCpNumber) {
      size_t start = pos;
      while (c.IsNumber(pos)) {
        if (++pos - start >= max_digits) {
          c.Emit(pos);
          start = pos;
        }
      }
      c.Emit(pos);
      continue;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*  (llama.cpp also takes a lone space at the end of the word
    // here; the whitespace branch below would emit the same one-codepoint word.)
    const size_t body = cp == ' ' ? pos + 1 : pos;
    if (c.IsOther(body)) {
      pos = body;
      while (c.IsOther(pos)) ++pos;
      while (c.Cp(pos) == '\r' || c.Cp(pos) == '\n') ++pos;
      c.Emit(pos);
      continue;
    }
    // \s*[\r\n]+
    size_t n = 0;
    size_t last_newline_end = 0;
    while (c.IsSpace(pos + n)) {
      const uint32_t s = c.Cp(pos + n);
      if (s == '\r' || s == '\n') last_newline_end = pos + n + 1;
      ++n;
    }
    if (last_newline_end > 0) {
      pos = last_newline_end;
      c.Emit(pos);
      continue;
    }
    if (MatchTrailingSpaces(c, pos)) continue;
    c.Emit(++pos);
  }
}

template <typename SplitChunk>
std::vector<size_t> SplitEach(absl::Span<const uint32_t> cps, absl::Span<const size_t> words,
                              SplitChunk split) {
  std::vector<size_t> out;
  out.reserve(words.size());
  size_t start = 0;
  for (size_t len : words) {
    Chunk chunk(cps, start, start + len, &out);
    split(chunk, start);
    start += len;
  }
  return out;
}

}  // namespace

std::vector<size_t> SplitGpt2(absl::Span<const uint32_t> cps, absl::Span<const size_t> words) {
  return SplitEach(cps, words, [](Chunk& c, size_t begin) { SplitGpt2Chunk(c, begin); });
}

std::vector<size_t> SplitLlama3Like(absl::Span<const uint32_t> cps, absl::Span<const size_t> words,
                                    size_t max_digits) {
  return SplitEach(
      cps, words, [max_digits](Chunk& c, size_t begin) { SplitLlama3Chunk(c, begin, max_digits); });
}

}  // namespace lorad::tokenizer_internal
