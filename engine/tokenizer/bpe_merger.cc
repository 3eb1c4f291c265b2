#include "engine/tokenizer/bpe_merger.h"

#include <queue>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/unicode.h"

namespace lorad::tokenizer_internal {
namespace {

constexpr char kSeparator = '\xFF';

struct Symbol {
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
  uint32_t begin;
  uint32_t size;  // 0 once merged into its left neighbour
};

struct Pair {
  int32_t rank;
  int32_t left;
  int32_t right;
  uint32_t size;  // byte size of left + right when queued; a mismatch means it is stale
};

struct PairAfter {  // min-heap on (rank, left)
  bool operator()(const Pair& a, const Pair& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

absl::StatusOr<BpeMerger> BpeMerger::Create(const std::vector<std::string>& merges) {
  BpeMerger merger;
  merger.ranks_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& line = merges[i];
    // The left side is never empty, so search from index 1 (a merge of " " tokens is legal).
    const size_t space = line.size() > 1 ? line.find(' ', 1) : std::string::npos;
    if (space == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", i, " '", line, "' is not of the form 'left right'"));
    }
    std::string key = line;
    key[space] = kSeparator;
    merger.ranks_.emplace(std::move(key), static_cast<int32_t>(i));
  }
  return merger;
}

int32_t BpeMerger::Rank(std::string_view left, std::string_view right, std::string* scratch) const {
  scratch->assign(left);
  scratch->push_back(kSeparator);
  scratch->append(right);
  auto it = ranks_.find(absl::string_view(scratch->data(), scratch->size()));
  return it == ranks_.end() ? -1 : it->second;
}

void BpeMerger::EncodeWord(std::string_view word, const TokenIndex& vocab, bool whole_word_first,
                           std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (whole_word_first) {
    if (int32_t id = vocab.Find(word); id >= 0) {
      out->push_back(id);
      return;
    }
  }
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (uint32_t offset = 0; offset < word.size();) {
    const auto len =
        static_cast<uint32_t>(std::min(Utf8SequenceLength(word[offset]), word.size() - offset));
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offset + len == word.size() ? -1 : index + 1, offset, len});
    offset += len;
  }
  auto text = [&](const Symbol& s) { return word.substr(s.begin, s.size); };

  std::string scratch;
  std::priority_queue<Pair, std::vector<Pair>, PairAfter> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t rank = Rank(text(symbols[left]), text(symbols[right]), &scratch);
    if (rank < 0) return;
    queue.push({rank, left, right, symbols[left].size + symbols[right].size});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Pair pair = queue.top();
    queue.pop();
    Symbol& left = symbols[pair.left];
    Symbol& right = symbols[pair.right];
    // Stale entries: a side was merged away, or a side grew since the pair was queued.
    if (left.size == 0 || right.size == 0 || left.next != pair.right ||
        left.size + right.size != pair.size) {
      continue;
    }
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = pair.left;
    try_add(left.prev, pair.left);
    try_add(pair.left, left.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece = text(symbols[i]);
    if (int32_t id = vocab.Find(piece); id >= 0) {
      out->push_back(id);
      continue;
    }
    // llama.cpp's fallback: each byte of the token-space text that is itself a token.
    for (char c : piece) {
      if (int32_t id = vocab.Find(std::string_view(&c, 1)); id >= 0) out->push_back(id);
    }
  }
}

}  // namespace lorad::tokenizer_internal
