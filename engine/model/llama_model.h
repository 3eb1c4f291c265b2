// The Llama-family forward pass over a flat batch of tokens from many sequences (prefill chunks
// and decode steps mixed), on 4-bit/8-bit weights used in place, a paged KV cache, and optional
// per-segment LoRA adapters. This is the optimized path; reference_forward.h is its definition.
// Thread-safety: one Forward() at a time (it owns scratch buffers); owned by the scheduler.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/kernels/thread_pool.h"
#include "engine/model/lora_binding.h"
#include "engine/model/model_weights.h"
#include "engine/ops/kv_cache.h"
#include "engine/ops/op_context.h"
#include "engine/ops/rope_op.h"

namespace lorad {

// One forward step. Token i of the batch is `tokens[i]` at `positions[i]` of the sequence whose
// block table is `block_tables[seq_index[i]]`; every position below `positions[i]` of that
// sequence is either already in the cache or earlier in this batch. Block tables must already
// cover every position of the batch (KvCache::Reserve).
struct ForwardBatch {
  absl::Span<const int32_t> tokens;
  absl::Span<const int32_t> positions;
  absl::Span<const int32_t> seq_index;
  absl::Span<const BlockTable* const> block_tables;
  // Batch rows whose logits are wanted, in the order the logits are written.
  absl::Span<const int32_t> logit_rows;
  // Adapters for this batch; null = base model for every token.
  const LoraBatch* lora = nullptr;
};

class LlamaModel {
 public:
  // `pool` must outlive the model.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Create(std::unique_ptr<ModelWeights> weights,
                                                            kernels::ThreadPool* pool);

  const ModelSpec& spec() const { return weights_->spec; }
  const ModelWeights& weights() const { return *weights_; }

  // Options for a KV cache that fits this model, with `num_blocks` blocks.
  KvCacheOptions CacheOptions(int64_t num_blocks, int32_t block_tokens = 16,
                              DType dtype = DType::kF16) const;

  // Runs the batch; writes logits [logit_rows.size(), vocab] to `logits` and every token's K/V
  // to `cache`. Fails (without touching the cache) on out-of-range tokens or positions.
  absl::Status Forward(const ForwardBatch& batch, KvCache& cache, float* logits);

 private:
  LlamaModel(std::unique_ptr<ModelWeights> weights, kernels::ThreadPool* pool);
  absl::Status Validate(const ForwardBatch& batch, const KvCache& cache) const;
  // y[n, w.rows] = x[n, w.cols] · Wᵀ, plus LoRA segments of `target` in `layer` when bound,
  // through the op layer on the CPU. An error here is a broken invariant (Validate passed).
  absl::Status Project(const WeightMatrix& w, const float* x, int64_t n, float* y,
                       const LoraBatch* lora, int32_t layer, LoraTarget target);
  void Attention(const ForwardBatch& batch, KvCache& cache, int32_t layer, int64_t n);

  std::unique_ptr<ModelWeights> weights_;
  kernels::ThreadPool* pool_;
  ops::OpContext cpu_;  // every op of the forward pass runs on the CPU with pool_
  ops::RopeTable rope_;
  // Scratch, grown on demand: activations of the current batch.
  std::vector<float> x_, h_, q_, k_, v_, att_, gate_, up_, rows_;
  std::vector<uint8_t> lora_workspace_;
};

}  // namespace lorad
