#include "engine/tokenizer/spm_merger.h"

#include <algorithm>
#include <queue>

#include "engine/tokenizer/unicode.h"

namespace lorad::tokenizer_internal {
namespace {

struct Symbol {
  int32_t prev, next;
  uint32_t begin, size;  // size 0 once merged into the left neighbour
};

struct Pair {
  float score;
  int32_t left, right;
  uint32_t size;
};

struct PairBefore {  // max-heap on score, then leftmost
  bool operator()(const Pair& a, const Pair& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

void SpmEncode(std::string_view text, const TokenIndex& vocab, const std::vector<float>& scores,
               const std::array<int32_t, 256>& byte_tokens, int32_t unk_id,
               std::vector<int32_t>* out) {
  std::vector<Symbol> symbols;
  for (uint32_t offset = 0; offset < text.size();) {
    const auto len =
        static_cast<uint32_t>(std::min(Utf8SequenceLength(text[offset]), text.size() - offset));
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({index - 1, offset + len == text.size() ? -1 : index + 1, offset, len});
    offset += len;
  }
  if (symbols.empty()) return;

  std::priority_queue<Pair, std::vector<Pair>, PairBefore> queue;
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const uint32_t size = symbols[left].size + symbols[right].size;
    const int32_t id = vocab.Find(text.substr(symbols[left].begin, size));
    if (id < 0 || static_cast<size_t>(id) >= scores.size()) return;
    queue.push({scores[id], left, right, size});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const Pair pair = queue.top();
    queue.pop();
    Symbol& left = symbols[pair.left];
    Symbol& right = symbols[pair.right];
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
    const std::string_view piece = text.substr(symbols[i].begin, symbols[i].size);
    if (int32_t id = vocab.Find(piece); id >= 0) {
      out->push_back(id);
      continue;
    }
    // Merged symbols are always tokens, so this is a single character missing from the vocab.
    for (char c : piece) {
      const int32_t id = byte_tokens[static_cast<uint8_t>(c)];
      if (id >= 0) {
        out->push_back(id);
      } else if (unk_id >= 0) {
        out->push_back(unk_id);
      }
    }
  }
}

}  // namespace lorad::tokenizer_internal
