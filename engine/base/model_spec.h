// Plain description of a Llama-family model: shapes and hyper-parameters, no weights.
#pragma once

#include <cstdint>
#include <string>

namespace lorad {

struct ModelSpec {
  std::string architecture = "llama";  // "llama", "qwen2", "mistral"...
  std::string name;                    // human-readable model name from metadata
  int32_t vocab_size = 0;
  int32_t hidden_size = 0;        // d_model
  int32_t intermediate_size = 0;  // SwiGLU inner width
  int32_t num_layers = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;  // grouped-query attention: num_heads % num_kv_heads == 0
  int32_t head_dim = 0;      // usually hidden_size / num_heads
  int32_t max_position = 0;  // context length the model was trained for
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  // Llama-3 RoPE frequency scaling; factor 0 means none.
  float rope_scaling_factor = 0.0f;
  float rope_low_freq_factor = 1.0f;
  float rope_high_freq_factor = 4.0f;
  int32_t rope_original_max_position = 8192;
  bool tied_embeddings = false;  // output projection reuses the token embedding
  bool qkv_bias = false;         // Qwen2-style biases on q/k/v projections
  // RoPE pairing of the loaded q/k weights. false: GGML "normal" mode, rotating adjacent pairs
  // (x[2i], x[2i+1]) of each head, which is what llama-arch GGUF files (q/k rows permuted by
  // llama.cpp's converter) and lorad's HF loader (which applies the same permutation) give.
  // true: NeoX rotate-half, pairs (x[i], x[i + head_dim/2]), as qwen2 weights need.
  bool rope_neox = false;
};

}  // namespace lorad
