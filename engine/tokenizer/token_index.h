// Text -> id lookup over a vocabulary. Immutable after construction; safe to share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace lorad::tokenizer_internal {

class TokenIndex {
 public:
  // Later duplicates of a token text keep the first id (llama.cpp keeps the last; vocabularies
  // with duplicates are rare and both choices encode the same bytes).
  explicit TokenIndex(const std::vector<std::string>& tokens) {
    map_.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) map_.emplace(tokens[i], static_cast<int32_t>(i));
  }

  // Id of the token whose text is exactly `text`, or -1.
  int32_t Find(std::string_view text) const {
    auto it = map_.find(absl::string_view(text.data(), text.size()));
    return it == map_.end() ? -1 : it->second;
  }

 private:
  absl::flat_hash_map<std::string, int32_t> map_;
};

}  // namespace lorad::tokenizer_internal
