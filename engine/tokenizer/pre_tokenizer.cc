#include "engine/tokenizer/pre_tokenizer.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/regex_splitters.h"
#include "engine/tokenizer/unicode.h"

namespace lorad::tokenizer_internal {
namespace {

bool IsNumberCp(uint32_t cp) { return CodepointFlags(cp) & kCpNumber; }

// [\p{P}\$\+<=>\^~\|] as llama.cpp evaluates it on its "collapsed" text: ASCII punctuation plus
// the listed ASCII symbols, and non-ASCII codepoints whose only category is P.
bool IsDefaultPunctuationCp(uint32_t cp) {
  if (cp < 128) {
    static constexpr std::string_view kAscii = "!\"#%&'()*,-./:;?@[\\]_{}$+<=>^~|";
    return kAscii.find(static_cast<char>(cp)) != std::string_view::npos;
  }
  const uint16_t f = CodepointFlags(cp);
  return !(f & kCpWhitespace) && (f & 0xFF) == kCpPunctuation;
}

// Refines `words` so that each codepoint matching `pred` is a word of its own
// (`each` == true) or each maximal run of them is (`each` == false).
template <typename Pred>
std::vector<size_t> Isolate(absl::Span<const uint32_t> cps, absl::Span<const size_t> words,
                            Pred pred, bool each) {
  std::vector<size_t> out;
  out.reserve(words.size());
  size_t start = 0;
  for (size_t len : words) {
    const size_t end = start + len;
    size_t word_start = start;
    for (size_t pos = start; pos < end;) {
      if (!pred(cps[pos])) {
        ++pos;
        continue;
      }
      if (pos > word_start) out.push_back(pos - word_start);
      size_t run_end = pos + 1;
      if (!each) {
        while (run_end < end && pred(cps[run_end])) ++run_end;
      }
      out.push_back(run_end - pos);
      pos = word_start = run_end;
    }
    if (end > word_start) out.push_back(end - word_start);
    start = end;
  }
  return out;
}

// [0-9][0-9][0-9]: leftmost non-overlapping groups of three ASCII digits become words.
std::vector<size_t> IsolateDigitTriples(absl::Span<const uint32_t> cps,
                                        absl::Span<const size_t> words) {
  auto digit = [&](size_t i) { return cps[i] >= '0' && cps[i] <= '9'; };
  std::vector<size_t> out;
  size_t start = 0;
  for (size_t len : words) {
    const size_t end = start + len;
    size_t word_start = start;
    for (size_t pos = start; pos + 3 <= end;) {
      if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
        if (pos > word_start) out.push_back(pos - word_start);
        out.push_back(3);
        pos = word_start = pos + 3;
      } else {
        ++pos;
      }
    }
    if (end > word_start) out.push_back(end - word_start);
    start = end;
  }
  return out;
}

}  // namespace

absl::StatusOr<PreTokenizer> PreTokenizerFromName(std::string_view name) {
  // Same name groups as llama.cpp's llama_vocab::impl::load (tokenizer.ggml.pre).
  if (name.empty() || name == "default") return PreTokenizer::kDefault;
  if (name == "gpt2" || name == "gpt-2" || name == "phi-2" || name == "mpt" || name == "olmo" ||
      name == "jais" || name == "exaone4" || name == "roberta-bpe") {
    return PreTokenizer::kGpt2;
  }
  if (name == "smollm" || name == "starcoder" || name == "refact" || name == "command-r" ||
      name == "codeshell" || name == "exaone" || name == "minerva-7b") {
    return PreTokenizer::kSmolLm;
  }
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" || name == "falcon3" ||
      name == "pixtral") {
    return PreTokenizer::kLlama3;
  }
  if (name == "qwen2" || name == "deepseek-r1-qwen" || name == "megrez" || name == "stablelm2") {
    return PreTokenizer::kQwen2;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported pre-tokenizer '", std::string(name),
                   "' (tokenizer.ggml.pre); supported: default, gpt2, smollm, llama-bpe, qwen2"));
}

bool IgnoresMergesForWholeWords(PreTokenizer pre) { return pre == PreTokenizer::kLlama3; }

std::vector<size_t> SplitWords(PreTokenizer pre, absl::Span<const uint32_t> cps) {
  if (cps.empty()) return {};
  std::vector<size_t> words = {cps.size()};
  switch (pre) {
    case PreTokenizer::kDefault:
      words = Isolate(cps, words, IsDefaultPunctuationCp, /*each=*/false);
      words = SplitGpt2(cps, words);
      words = Isolate(cps, words, IsNumberCp, /*each=*/false);
      return IsolateDigitTriples(cps, words);
    case PreTokenizer::kGpt2:
      return SplitGpt2(cps, words);
    case PreTokenizer::kSmolLm:
      words = Isolate(cps, words, IsNumberCp, /*each=*/true);
      return SplitGpt2(cps, words);
    case PreTokenizer::kLlama3:
      return SplitLlama3Like(cps, words, 3);
    case PreTokenizer::kQwen2:
      return SplitLlama3Like(cps, words, 1);
  }
  return words;
}

}  // namespace lorad::tokenizer_internal
