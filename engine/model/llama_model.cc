#include "engine/model/llama_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/kernels/vec_math.h"
#include "engine/kernels/vec_math_f16.h"
#include "engine/ops/lora_op.h"
#include "engine/ops/norm_op.h"
#include "engine/ops/pointwise_op.h"
#include "engine/ops/quant_matmul_op.h"
#include "engine/ops/rope_op.h"
#include "engine/quant/dequantize.h"

namespace lorad {
namespace {

// Writes n floats to a KV cache slot of `dtype` (F16 or F32).
void StoreKv(void* dst, const float* src, int64_t n, DType dtype) {
  if (dtype == DType::kF16) {
    vec::ToFp16(src, static_cast<uint16_t*>(dst), n);
  } else {
    std::memcpy(dst, src, sizeof(float) * n);
  }
}

template <typename T>
T* Grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LlamaModel>> LlamaModel::Create(
    std::unique_ptr<ModelWeights> weights, kernels::ThreadPool* pool) {
  if (weights == nullptr || pool == nullptr) {
    return absl::InvalidArgumentError("LlamaModel needs weights and a thread pool");
  }
  const ModelSpec& s = weights->spec;
  if (s.num_heads <= 0 || s.num_kv_heads <= 0 || s.num_heads % s.num_kv_heads != 0 ||
      s.head_dim <= 0 || s.head_dim % 2 != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("unsupported attention shape: heads=", s.num_heads,
                     " kv_heads=", s.num_kv_heads, " head_dim=", s.head_dim));
  }
  if (static_cast<int32_t>(weights->layers.size()) != s.num_layers) {
    return absl::FailedPreconditionError("layer count does not match the model spec");
  }
  return std::unique_ptr<LlamaModel>(new LlamaModel(std::move(weights), pool));
}

LlamaModel::LlamaModel(std::unique_ptr<ModelWeights> weights, kernels::ThreadPool* pool)
    : weights_(std::move(weights)),
      pool_(pool),
      cpu_{ops::Device::kCpu, pool},
      rope_(weights_->spec, weights_->rope_freq_factors) {}

KvCacheOptions LlamaModel::CacheOptions(int64_t num_blocks, int32_t block_tokens,
                                        DType dtype) const {
  KvCacheOptions o;
  o.num_layers = spec().num_layers;
  o.num_kv_heads = spec().num_kv_heads;
  o.head_dim = spec().head_dim;
  o.block_tokens = block_tokens;
  o.num_blocks = num_blocks;
  o.dtype = dtype;
  return o;
}

absl::Status LlamaModel::Validate(const ForwardBatch& b, const KvCache& cache) const {
  const size_t n = b.tokens.size();
  if (n == 0) return absl::InvalidArgumentError("empty forward batch");
  if (b.positions.size() != n || b.seq_index.size() != n) {
    return absl::InvalidArgumentError("tokens, positions and seq_index differ in length");
  }
  for (size_t i = 0; i < n; ++i) {
    if (b.tokens[i] < 0 || b.tokens[i] >= spec().vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", b.tokens[i], " at row ", i,
                                                     " is outside the vocabulary of ",
                                                     spec().vocab_size));
    }
    if (b.seq_index[i] < 0 || static_cast<size_t>(b.seq_index[i]) >= b.block_tables.size()) {
      return absl::InvalidArgumentError(absl::StrCat("row ", i, " has no block table"));
    }
    const BlockTable* t = b.block_tables[b.seq_index[i]];
    const int64_t capacity = static_cast<int64_t>(t->blocks.size()) * cache.block_tokens();
    if (b.positions[i] < 0 || b.positions[i] >= capacity) {
      return absl::InvalidArgumentError(absl::StrCat("position ", b.positions[i], " at row ", i,
                                                     " is outside its KV blocks (", capacity,
                                                     " positions)"));
    }
  }
  for (int32_t r : b.logit_rows) {
    if (r < 0 || static_cast<size_t>(r) >= n) {
      return absl::InvalidArgumentError(absl::StrCat("logit row ", r, " is outside the batch"));
    }
  }
  return absl::OkStatus();
}

absl::Status LlamaModel::Project(const WeightMatrix& w, const float* x, int64_t n, float* y,
                                 const LoraBatch* lora, int32_t layer, LoraTarget target) {
  ops::OpContext ctx = cpu_;
  LORAD_RETURN_IF_ERROR(ops::QuantMatMul(ctx, w.type, w.data, static_cast<int64_t>(w.row_bytes),
                                         w.rows, w.cols, DType::kF32, x, n, y));
  if (lora == nullptr || layer >= static_cast<int32_t>(lora->layers.size())) {
    return absl::OkStatus();
  }
  const auto& segs = lora->layers[layer][static_cast<int>(target)];
  if (segs.empty()) return absl::OkStatus();
  ctx.workspace_bytes = ops::ApplyLoraWorkspaceBytes(ops::Device::kCpu, n, segs);
  ctx.workspace = Grow(lora_workspace_, ctx.workspace_bytes);
  return ops::ApplyLora(ctx, DType::kF32, x, w.cols, y, w.rows, n, segs);
}

void LlamaModel::Attention(const ForwardBatch& b, KvCache& cache, int32_t layer, int64_t n) {
  const ModelSpec& s = spec();
  const int32_t hd = s.head_dim;
  const int32_t kvh = s.num_kv_heads;
  const int32_t group = s.num_heads / kvh;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const bool f16 = cache.dtype() == DType::kF16;
  const size_t elem = f16 ? sizeof(uint16_t) : sizeof(float);
  float* q = q_.data();
  // With an fp16 cache, queries and attention weights are rounded to fp16 too, as llama.cpp's
  // CPU attention does (its K*Q and V*softmax products take fp16 operands).
  if (f16) vec::RoundToFp16(q, n * s.num_heads * hd);
  float* att = att_.data();
  pool_->ParallelFor(n * kvh, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t i = task / kvh;
      const int32_t g = static_cast<int32_t>(task % kvh);
      const int64_t len = b.positions[i] + 1;
      const BlockTable& table = *b.block_tables[b.seq_index[i]];
      scores.resize(static_cast<size_t>(group) * len);
      for (int64_t j = 0; j < len; ++j) {
        const void* key = static_cast<const uint8_t*>(cache.Key(layer, table, j)) + g * hd * elem;
        for (int32_t h = 0; h < group; ++h) {
          const float* qh = q + (i * s.num_heads + g * group + h) * hd;
          scores[h * len + j] = (f16 ? vec::DotF16(qh, static_cast<const uint16_t*>(key), hd)
                                     : vec::Dot(qh, static_cast<const float*>(key), hd)) *
                                scale;
        }
      }
      for (int32_t h = 0; h < group; ++h) {
        float* sc = scores.data() + h * len;
        float* out = att + (i * s.num_heads + g * group + h) * hd;
        std::memset(out, 0, sizeof(float) * hd);
        if (!f16) {
          vec::Softmax(sc, len);
          for (int64_t j = 0; j < len; ++j) {
            const void* val =
                static_cast<const uint8_t*>(cache.Value(layer, table, j)) + g * hd * elem;
            vec::Axpy(sc[j], static_cast<const float*>(val), out, hd);
          }
          continue;
        }
        // fp16 cache: online softmax with an fp16 accumulator, as llama.cpp's CPU flash
        // attention computes it (each update of the accumulator is rounded to fp16).
        float running_max = -INFINITY, sum = 0.0f;
        for (int64_t j = 0; j < len; ++j) {
          const auto* val = reinterpret_cast<const uint16_t*>(
              static_cast<const uint8_t*>(cache.Value(layer, table, j)) + g * hd * elem);
          float ms = 1.0f, vs = 1.0f;
          if (sc[j] > running_max) {
            ms = std::exp(running_max - sc[j]);
            running_max = sc[j];
            for (int32_t d = 0; d < hd; ++d) out[d] *= ms;
            vec::RoundToFp16(out, hd);
          } else {
            vs = std::exp(sc[j] - running_max);
          }
          vec::AxpyF16(vs, val, out, hd);
          vec::RoundToFp16(out, hd);
          sum = std::fma(sum, ms, vs);  // fused, as llama.cpp's compiled S = S*ms + vs
        }
        const float inv = 1.0f / sum;
        for (int32_t d = 0; d < hd; ++d) out[d] *= inv;
      }
    }
  });
}

absl::Status LlamaModel::Forward(const ForwardBatch& b, KvCache& cache, float* logits) {
  LORAD_RETURN_IF_ERROR(Validate(b, cache));
  const ModelSpec& s = spec();
  const int64_t n = static_cast<int64_t>(b.tokens.size());
  const int64_t hidden = s.hidden_size;
  const int64_t q_dim = int64_t{s.num_heads} * s.head_dim;
  const int64_t kv_dim = int64_t{s.num_kv_heads} * s.head_dim;
  const int64_t inter = s.intermediate_size;
  float* x = Grow(x_, n * hidden);
  float* h = Grow(h_, n * std::max(hidden, q_dim));
  float* q = Grow(q_, n * q_dim);
  float* k = Grow(k_, n * kv_dim);
  float* v = Grow(v_, n * kv_dim);
  Grow(att_, n * q_dim);
  float* gate = Grow(gate_, n * inter);
  float* up = Grow(up_, n * inter);

  const WeightMatrix& emb = weights_->token_embedding;
  for (int64_t i = 0; i < n; ++i) {
    const auto* row = static_cast<const uint8_t*>(emb.data) + b.tokens[i] * emb.row_bytes;
    quant::DequantizeRow(emb.type, row, x + i * hidden, hidden);
  }

  const ops::OpContext& cpu = cpu_;
  constexpr DType kAct = DType::kF32;
  for (int32_t l = 0; l < s.num_layers; ++l) {
    const LayerWeights& lw = weights_->layers[l];
    LORAD_RETURN_IF_ERROR(
        ops::RmsNorm(cpu, kAct, x, lw.attn_norm.data(), s.rms_norm_eps, n, hidden, h));
    LORAD_RETURN_IF_ERROR(Project(lw.wq, h, n, q, b.lora, l, LoraTarget::kQ));
    LORAD_RETURN_IF_ERROR(Project(lw.wk, h, n, k, b.lora, l, LoraTarget::kK));
    LORAD_RETURN_IF_ERROR(Project(lw.wv, h, n, v, b.lora, l, LoraTarget::kV));
    if (!lw.bq.empty()) {
      LORAD_RETURN_IF_ERROR(ops::AddBias(cpu, kAct, lw.bq.data(), q, n, q_dim));
    }
    if (!lw.bk.empty()) {
      LORAD_RETURN_IF_ERROR(ops::AddBias(cpu, kAct, lw.bk.data(), k, n, kv_dim));
    }
    if (!lw.bv.empty()) {
      LORAD_RETURN_IF_ERROR(ops::AddBias(cpu, kAct, lw.bv.data(), v, n, kv_dim));
    }
    LORAD_RETURN_IF_ERROR(ops::ApplyRope(cpu, rope_, kAct, q, n, s.num_heads, b.positions.data()));
    LORAD_RETURN_IF_ERROR(
        ops::ApplyRope(cpu, rope_, kAct, k, n, s.num_kv_heads, b.positions.data()));
    for (int64_t i = 0; i < n; ++i) {
      const BlockTable& table = *b.block_tables[b.seq_index[i]];
      StoreKv(cache.Key(l, table, b.positions[i]), k + i * kv_dim, kv_dim, cache.dtype());
      StoreKv(cache.Value(l, table, b.positions[i]), v + i * kv_dim, kv_dim, cache.dtype());
    }
    Attention(b, cache, l, n);
    LORAD_RETURN_IF_ERROR(Project(lw.wo, att_.data(), n, h, b.lora, l, LoraTarget::kO));
    LORAD_RETURN_IF_ERROR(ops::Add(cpu, kAct, h, x, n * hidden));
    LORAD_RETURN_IF_ERROR(
        ops::RmsNorm(cpu, kAct, x, lw.ffn_norm.data(), s.rms_norm_eps, n, hidden, h));
    LORAD_RETURN_IF_ERROR(Project(lw.w_gate, h, n, gate, b.lora, l, LoraTarget::kGate));
    LORAD_RETURN_IF_ERROR(Project(lw.w_up, h, n, up, b.lora, l, LoraTarget::kUp));
    LORAD_RETURN_IF_ERROR(ops::SiluMul(cpu, kAct, gate, up, n * inter));
    LORAD_RETURN_IF_ERROR(Project(lw.w_down, gate, n, h, b.lora, l, LoraTarget::kDown));
    LORAD_RETURN_IF_ERROR(ops::Add(cpu, kAct, h, x, n * hidden));
  }

  const int64_t m = static_cast<int64_t>(b.logit_rows.size());
  if (m == 0) return absl::OkStatus();
  float* rows = Grow(rows_, m * hidden);
  for (int64_t j = 0; j < m; ++j) {
    vec::RmsNorm(x + b.logit_rows[j] * hidden, weights_->output_norm.data(), s.rms_norm_eps, hidden,
                 rows + j * hidden);
  }
  const WeightMatrix& out = weights_->output;
  return ops::QuantMatMul(cpu, out.type, out.data, static_cast<int64_t>(out.row_bytes), out.rows,
                          out.cols, kAct, rows, m, logits);
}

}  // namespace lorad
