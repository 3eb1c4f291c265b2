#include "engine/tokenizer/special_splitter.h"

namespace lorad::tokenizer_internal {

std::vector<Fragment> SplitSpecialTokens(std::string_view text,
                                         absl::Span<const SpecialToken> specials) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});
  std::vector<Fragment> next;
  for (const SpecialToken& special : specials) {
    next.clear();
    bool changed = false;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view raw = text.substr(f.begin, f.size);
      size_t start = 0;
      for (size_t match = raw.find(special.text); match != std::string_view::npos;
           match = raw.find(special.text, start)) {
        if (match > start) next.push_back({-1, f.begin + start, match - start});
        next.push_back({special.id, 0, 0});
        start = match + special.text.size();
        changed = true;
      }
      if (start < raw.size()) next.push_back({-1, f.begin + start, raw.size() - start});
    }
    if (changed) fragments.swap(next);
  }
  return fragments;
}

}  // namespace lorad::tokenizer_internal
