// Paged key/value cache: fixed-size blocks of token positions, shared by all sequences, with a
// free list. A sequence owns a block table (block ids in position order). Keys and values are
// fp16 (default, as llama.cpp) or fp32, laid out per layer as
// [num_blocks, block_tokens, num_kv_heads, head_dim].
// Thread-safety: owned by the scheduler thread; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/dtype.h"

namespace lorad {

struct KvCacheOptions {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_tokens = 16;  // token positions per block
  int64_t num_blocks = 0;     // total blocks
  DType dtype = DType::kF16;  // element type of keys and values: kF16 or kF32
};

// Bytes one token position takes over all layers (K and V) in a cache made with `options`.
size_t KvBytesPerToken(const KvCacheOptions& options);
// How many blocks of `options` fit in `budget_bytes` of keys and values (at least 1).
int64_t KvBlocksForBudget(const KvCacheOptions& options, int64_t budget_bytes);

// The positions a sequence has in the cache: block ids in order; position p lives in
// blocks[p / block_tokens] at offset p % block_tokens.
struct BlockTable {
  std::vector<int32_t> blocks;
};

class KvCache {
 public:
  static absl::StatusOr<std::unique_ptr<KvCache>> Create(const KvCacheOptions& options);

  const KvCacheOptions& options() const { return options_; }
  int32_t block_tokens() const { return options_.block_tokens; }
  int64_t num_blocks() const { return options_.num_blocks; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  // Bytes of cache memory one token position takes over all layers (K and V).
  size_t bytes_per_token() const;

  // Grows `table` so that it covers positions [0, num_positions). Returns false, leaving
  // `table` unchanged, when there are not enough free blocks.
  bool Reserve(BlockTable& table, int64_t num_positions);
  // Returns all blocks of `table` to the free list and clears it.
  void Release(BlockTable& table);
  // Blocks needed to cover `num_positions` positions.
  int64_t BlocksFor(int64_t num_positions) const {
    return (num_positions + options_.block_tokens - 1) / options_.block_tokens;
  }

  DType dtype() const { return options_.dtype; }
  // Key / value vectors of all kv heads at `position` of `table` in `layer`:
  // [num_kv_heads, head_dim] elements of dtype(). `table` must cover `position`.
  void* Key(int32_t layer, const BlockTable& table, int64_t position) {
    return Slot(keys_.get(), layer, table, position);
  }
  void* Value(int32_t layer, const BlockTable& table, int64_t position) {
    return Slot(values_.get(), layer, table, position);
  }

 private:
  explicit KvCache(const KvCacheOptions& options);
  void* Slot(uint8_t* base, int32_t layer, const BlockTable& table, int64_t position) const {
    const int64_t block = table.blocks[position / options_.block_tokens];
    const int64_t offset = position % options_.block_tokens;
    return base +
           ((layer * options_.num_blocks + block) * options_.block_tokens + offset) * slot_bytes_;
  }

  KvCacheOptions options_;
  int64_t kv_dim_;
  int64_t slot_bytes_;                 // bytes of one position's [kv_heads, head_dim]
  std::unique_ptr<uint8_t[]> keys_;    // [layers, blocks, block_tokens, kv_dim]
  std::unique_ptr<uint8_t[]> values_;  // same layout as keys_
  std::vector<int32_t> free_;          // free block ids (stack)
};

}  // namespace lorad
