#include "engine/ops/kv_cache.h"

#include <algorithm>
#include <new>

#include "absl/strings/str_cat.h"

namespace lorad {

absl::StatusOr<std::unique_ptr<KvCache>> KvCache::Create(const KvCacheOptions& options) {
  if (options.num_layers <= 0 || options.num_kv_heads <= 0 || options.head_dim <= 0 ||
      options.block_tokens <= 0 || options.num_blocks <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache needs positive sizes; got layers=", options.num_layers,
                     " kv_heads=", options.num_kv_heads, " head_dim=", options.head_dim,
                     " block_tokens=", options.block_tokens, " blocks=", options.num_blocks));
  }
  if (options.dtype != DType::kF16 && options.dtype != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache dtype must be F16 or F32, got ", DTypeName(options.dtype)));
  }
  if (options.num_blocks > (int64_t{1} << 31) - 1) {
    return absl::InvalidArgumentError("KV cache block count exceeds 2^31");
  }
  std::unique_ptr<KvCache> cache(new KvCache(options));
  const size_t n = static_cast<size_t>(options.num_layers) * options.num_blocks *
                   options.block_tokens * cache->slot_bytes_;
  // Uninitialized: pages are committed on first write, so an idle cache costs no RSS.
  cache->keys_.reset(new (std::nothrow) uint8_t[n]);
  cache->values_.reset(new (std::nothrow) uint8_t[n]);
  if (!cache->keys_ || !cache->values_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", 2 * n, " bytes of KV cache"));
  }
  return cache;
}

KvCache::KvCache(const KvCacheOptions& options)
    : options_(options),
      kv_dim_(int64_t{options.num_kv_heads} * options.head_dim),
      slot_bytes_(kv_dim_ * static_cast<int64_t>(BlockBytes(options.dtype))) {
  free_.reserve(options.num_blocks);
  for (int64_t b = options.num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

size_t KvBytesPerToken(const KvCacheOptions& options) {
  return 2 * static_cast<size_t>(options.num_layers) * options.num_kv_heads * options.head_dim *
         BlockBytes(options.dtype);
}

int64_t KvBlocksForBudget(const KvCacheOptions& options, int64_t budget_bytes) {
  const auto per_block =
      static_cast<int64_t>(KvBytesPerToken(options)) * std::max(1, options.block_tokens);
  return std::max<int64_t>(1, budget_bytes / std::max<int64_t>(1, per_block));
}

size_t KvCache::bytes_per_token() const { return KvBytesPerToken(options_); }

bool KvCache::Reserve(BlockTable& table, int64_t num_positions) {
  const int64_t need = BlocksFor(num_positions) - static_cast<int64_t>(table.blocks.size());
  if (need <= 0) return true;
  if (need > free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i) {
    table.blocks.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvCache::Release(BlockTable& table) {
  for (int32_t b : table.blocks) free_.push_back(b);
  table.blocks.clear();
}

}  // namespace lorad
