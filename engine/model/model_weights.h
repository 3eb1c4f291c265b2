// Weights of a Llama-family model as the forward pass reads them, and the loaders that build
// them from a GGUF file (tensors used in place from the mapping) or a Hugging Face directory
// (safetensors quantized to NF4 at load, as QLoRA does).
// Thread-safety: a loaded ModelWeights is immutable and may be read from any thread.
//
// RoPE convention. llama.cpp's convert_hf_to_gguf.py permutes the rows of the q and k weights of
// llama-arch models (HF rotate-half layout -> interleaved pairs), so llama GGUF q/k are meant
// for RoPE on adjacent pairs (x[2i], x[2i+1]) of each head. LoadHfModel applies the SAME
// permutation to HF llama/mistral q/k weights (and q/k biases) before quantizing, so ONE
// convention serves both formats; spec.rope_neox is false for them. qwen2 is not permuted by
// llama.cpp and uses NeoX rotate-half pairs (x[i], x[i + head_dim/2]); both loaders leave its
// rows as they are and set spec.rope_neox = true. Either way, GGUF and HF loads of the same
// model produce the same q/k rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/dtype.h"
#include "engine/base/gguf.h"
#include "engine/base/model_spec.h"

namespace lorad {

// A weight matrix as stored: W [rows = out_features, cols = in_features], row-major, each row
// RowBytes(type, cols) bytes. y = W x. `data` is owned by the ModelWeights it belongs to.
struct WeightMatrix {
  DType type = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  size_t row_bytes = 0;

  const void* Row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes; }
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;  // [hidden] RMSNorm gains
  WeightMatrix wq;                         // [num_heads * head_dim, hidden]
  WeightMatrix wk, wv;                     // [num_kv_heads * head_dim, hidden]
  WeightMatrix wo;                         // [hidden, num_heads * head_dim]
  WeightMatrix w_gate, w_up;               // [intermediate, hidden]
  WeightMatrix w_down;                     // [hidden, intermediate]
  std::vector<float> bq, bk, bv;           // q/k/v biases (rows of wq/wk/wv); empty when no bias
};

struct ModelWeights {
  ModelSpec spec;
  WeightMatrix token_embedding;    // [vocab, hidden]; row t is the embedding of token t
  WeightMatrix output;             // [vocab, hidden]; equals token_embedding when tied
  std::vector<float> output_norm;  // [hidden]
  std::vector<LayerWeights> layers;
  // RoPE frequency divisors [head_dim / 2] (Llama-3 scaling: theta_i /= factors[i]); empty
  // when the model has none. GGUF: the rope_freqs.weight tensor; HF: computed from
  // config.json rope_scaling exactly as llama.cpp's converter does.
  std::vector<float> rope_freq_factors;
  std::string source_format;  // "gguf" or "hf"
  std::string source_path;    // the file or directory loaded

  // Storage the matrices point into: the GGUF mapping (also the tokenizer's metadata source),
  // or the NF4 buffers of an HF load. Do not modify.
  std::unique_ptr<GgufFile> gguf;
  std::vector<std::vector<uint8_t>> buffers;
};

// Loads a GGUF file or an HF model directory, decided by what `path` is. NOT_FOUND when it does
// not exist; otherwise the errors of LoadGgufModel / LoadHfModel.
absl::StatusOr<std::unique_ptr<ModelWeights>> LoadModel(const std::string& path);

// GGUF architectures "llama", "mistral" (llama layout) and "qwen2". Tensors are used in place
// (no copies); norms and biases are converted to fp32. Errors name the file and the key or
// tensor: NOT_FOUND for a missing required key/tensor, INVALID_ARGUMENT for a shape that does
// not match the spec or an inconsistent spec, UNIMPLEMENTED for an unsupported architecture,
// tensor type or RoPE variant.
absl::StatusOr<std::unique_ptr<ModelWeights>> LoadGgufModel(const std::string& path);

// An HF directory: config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM) and
// model.safetensors or model.safetensors.index.json shards in F32/F16/BF16. Every matrix,
// the embedding and lm_head included, is quantized to NF4 exactly as bitsandbytes does
// (blocks of 64 consecutive values, fp32 absmax, nearest code); cols must be a multiple of 64.
// (QLoRA keeps embeddings and lm_head in 16 bit; lorad quantizes them too to keep the base
// 4-bit end to end.) Norms and biases stay fp32. Errors name the file and tensor/field.
absl::StatusOr<std::unique_ptr<ModelWeights>> LoadHfModel(const std::string& dir);

// Checks a spec's internal consistency (positive sizes, heads % kv_heads == 0, even head_dim,
// sane upper bounds). INVALID_ARGUMENT naming the field; `source` prefixes the message.
absl::Status ValidateModelSpec(const ModelSpec& spec, const std::string& source);

// llama.cpp's q/k row permutation for a matrix of `n_heads` heads of `head_dim` rows:
// destination row h*head_dim + 2i + j takes source (HF) row h*head_dim + j*head_dim/2 + i.
// Returns the source row of destination row `row`.
int64_t HfToGgufQkSourceRow(int64_t row, int64_t head_dim);

// Llama-3 RoPE frequency divisors [head_dim/2] from spec.rope_theta, head_dim and the
// rope_scaling fields (as convert_hf_to_gguf.py computes rope_freqs); empty when
// spec.rope_scaling_factor is 0.
std::vector<float> Llama3RopeFreqFactors(const ModelSpec& spec);

}  // namespace lorad
