// Helpers for engine tests: where the default model is, and running LlamaModel over sequences.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/model/llama_model.h"

namespace lorad::testing {

// Path of the default model (SmolLM2-135M-Instruct Q4_1) or "" when it is not present:
// $LORAD_DEFAULT_MODEL, else $LORAD_SOURCE_DIR/data/models/...
inline std::string DefaultModelPath() {
  if (const char* p = std::getenv("LORAD_DEFAULT_MODEL"); p != nullptr && *p != '\0') {
    return std::filesystem::exists(p) ? p : "";
  }
  if (const char* root = std::getenv("LORAD_SOURCE_DIR"); root != nullptr) {
    const std::string p = std::string(root) + "/data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

// Runs `seqs` through `model` as one batch (each from position 0) and returns the logits of
// every token, [total_tokens, vocab], in batch order.
inline std::vector<float> ForwardAll(LlamaModel& model, KvCache& cache,
                                     const std::vector<std::vector<int32_t>>& seqs) {
  std::vector<BlockTable> tables(seqs.size());
  std::vector<const BlockTable*> ptrs;
  std::vector<int32_t> tokens, positions, index, rows;
  for (size_t s = 0; s < seqs.size(); ++s) {
    cache.Reserve(tables[s], static_cast<int64_t>(seqs[s].size()));
    ptrs.push_back(&tables[s]);
    for (size_t p = 0; p < seqs[s].size(); ++p) {
      rows.push_back(static_cast<int32_t>(tokens.size()));
      tokens.push_back(seqs[s][p]);
      positions.push_back(static_cast<int32_t>(p));
      index.push_back(static_cast<int32_t>(s));
    }
  }
  std::vector<float> logits(rows.size() * static_cast<size_t>(model.spec().vocab_size));
  absl::Status st =
      model.Forward({tokens, positions, index, ptrs, rows, nullptr}, cache, logits.data());
  for (auto& t : tables) cache.Release(t);
  if (!st.ok()) return {};
  return logits;
}

}  // namespace lorad::testing
