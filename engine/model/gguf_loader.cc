// LoadGgufModel: llama-family GGUF (llama.cpp tensor names) -> ModelWeights viewing the mapping.
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/status_macros.h"
#include "engine/model/model_weights.h"
#include "engine/quant/dequantize.h"

namespace lorad {
namespace {

std::string DimsString(const std::vector<int64_t>& dims) {
  return absl::StrCat("[", absl::StrJoin(dims, ", "), "]");
}

absl::Status ShapeError(const GgufFile& f, const GgufTensor& t, const std::string& want) {
  return absl::InvalidArgumentError(absl::StrCat(f.path(), ": tensor '", t.name, "' has dims ",
                                                 DimsString(t.dims), " (ggml order), expected ",
                                                 want));
}

// The matrix `name` checked to be [rows, cols] (ggml dims {cols, rows}).
absl::StatusOr<WeightMatrix> Matrix(const GgufFile& f, const std::string& name, int64_t rows,
                                    int64_t cols) {
  LORAD_ASSIGN_OR_RETURN(const GgufTensor* t, f.GetTensor(name));
  if (t->dims.size() != 2 || t->dims[0] != cols || t->dims[1] != rows) {
    return ShapeError(f, *t, DimsString({cols, rows}));
  }
  return WeightMatrix{t->type, rows, cols, t->data, RowBytes(t->type, cols)};
}

// The vector `name` of `n` values, converted to fp32.
absl::StatusOr<std::vector<float>> Vector(const GgufFile& f, const std::string& name, int64_t n) {
  LORAD_ASSIGN_OR_RETURN(const GgufTensor* t, f.GetTensor(name));
  if (t->dims.size() != 1 || t->dims[0] != n) return ShapeError(f, *t, DimsString({n}));
  std::vector<float> out(n);
  quant::DequantizeRow(t->type, t->data, out.data(), n);
  return out;
}

absl::StatusOr<int32_t> Int32(const GgufFile& f, const std::string& key) {
  LORAD_ASSIGN_OR_RETURN(const int64_t v, f.GetInt(key));
  if (v < 0 || v > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.path(), ": ", key, " = ", v, " is out of range"));
  }
  return static_cast<int32_t>(v);
}

// The value of `key`, or `fallback` when it is absent (other errors propagate).
absl::StatusOr<int32_t> Int32Or(const GgufFile& f, const std::string& key, int32_t fallback) {
  if (!f.Has(key)) return fallback;
  return Int32(f, key);
}
absl::StatusOr<float> FloatOr(const GgufFile& f, const std::string& key, float fallback) {
  if (!f.Has(key)) return fallback;
  LORAD_ASSIGN_OR_RETURN(const double v, f.GetFloat(key));
  return static_cast<float>(v);
}

absl::StatusOr<ModelSpec> ReadSpec(const GgufFile& f) {
  ModelSpec s;
  LORAD_ASSIGN_OR_RETURN(s.architecture, f.GetString("general.architecture"));
  const std::string& a = s.architecture;
  if (a != "llama" && a != "mistral" && a != "qwen2") {
    return absl::UnimplementedError(absl::StrCat(f.path(), ": architecture '", a,
                                                 "' is not supported (llama, mistral, qwen2)"));
  }
  s.rope_neox = a == "qwen2";
  if (f.Has("general.name")) {
    LORAD_ASSIGN_OR_RETURN(s.name, f.GetString("general.name"));
  }
  LORAD_ASSIGN_OR_RETURN(s.hidden_size, Int32(f, a + ".embedding_length"));
  LORAD_ASSIGN_OR_RETURN(s.intermediate_size, Int32(f, a + ".feed_forward_length"));
  LORAD_ASSIGN_OR_RETURN(s.num_layers, Int32(f, a + ".block_count"));
  LORAD_ASSIGN_OR_RETURN(s.num_heads, Int32(f, a + ".attention.head_count"));
  LORAD_ASSIGN_OR_RETURN(s.num_kv_heads, Int32Or(f, a + ".attention.head_count_kv", s.num_heads));
  LORAD_ASSIGN_OR_RETURN(s.max_position, Int32(f, a + ".context_length"));
  LORAD_ASSIGN_OR_RETURN(s.rms_norm_eps,
                         FloatOr(f, a + ".attention.layer_norm_rms_epsilon", 1e-5f));
  LORAD_ASSIGN_OR_RETURN(s.rope_theta, FloatOr(f, a + ".rope.freq_base", 10000.0f));
  const int32_t default_head_dim = s.num_heads > 0 ? s.hidden_size / s.num_heads : 0;
  LORAD_ASSIGN_OR_RETURN(s.head_dim, Int32Or(f, a + ".attention.key_length", default_head_dim));
  LORAD_ASSIGN_OR_RETURN(const int32_t value_dim,
                         Int32Or(f, a + ".attention.value_length", s.head_dim));
  if (value_dim != s.head_dim) {
    return absl::UnimplementedError(
        absl::StrCat(f.path(), ": value_length ", value_dim, " != key_length ", s.head_dim));
  }
  LORAD_ASSIGN_OR_RETURN(const int32_t rope_dims,
                         Int32Or(f, a + ".rope.dimension_count", s.head_dim));
  if (rope_dims != s.head_dim) {
    return absl::UnimplementedError(absl::StrCat(f.path(), ": partial rotary embeddings (", a,
                                                 ".rope.dimension_count = ", rope_dims,
                                                 ", head_dim ", s.head_dim, ") are not supported"));
  }
  const std::string scaling_key = a + ".rope.scaling.type";
  if (f.Has(scaling_key)) {
    LORAD_ASSIGN_OR_RETURN(const std::string scaling, f.GetString(scaling_key));
    if (scaling != "none") {
      return absl::UnimplementedError(
          absl::StrCat(f.path(), ": RoPE scaling '", scaling, "' is not supported"));
    }
  }
  if (f.Has(a + ".vocab_size")) {
    LORAD_ASSIGN_OR_RETURN(s.vocab_size, Int32(f, a + ".vocab_size"));
  } else if (f.Has("tokenizer.ggml.tokens")) {
    LORAD_ASSIGN_OR_RETURN(const uint64_t n, f.GetArraySize("tokenizer.ggml.tokens"));
    s.vocab_size = static_cast<int32_t>(std::min<uint64_t>(n, INT32_MAX));
  } else {
    LORAD_ASSIGN_OR_RETURN(const GgufTensor* emb, f.GetTensor("token_embd.weight"));
    s.vocab_size = static_cast<int32_t>(std::min<int64_t>(emb->rows(), INT32_MAX));
  }
  LORAD_RETURN_IF_ERROR(ValidateModelSpec(s, f.path()));
  return s;
}

absl::Status LoadLayer(const GgufFile& f, const ModelSpec& s, int i, LayerWeights* l) {
  const std::string p = absl::StrCat("blk.", i, ".");
  const int64_t h = s.hidden_size, q = int64_t{s.num_heads} * s.head_dim;
  const int64_t kv = int64_t{s.num_kv_heads} * s.head_dim, ff = s.intermediate_size;
  LORAD_ASSIGN_OR_RETURN(l->attn_norm, Vector(f, p + "attn_norm.weight", h));
  LORAD_ASSIGN_OR_RETURN(l->ffn_norm, Vector(f, p + "ffn_norm.weight", h));
  LORAD_ASSIGN_OR_RETURN(l->wq, Matrix(f, p + "attn_q.weight", q, h));
  LORAD_ASSIGN_OR_RETURN(l->wk, Matrix(f, p + "attn_k.weight", kv, h));
  LORAD_ASSIGN_OR_RETURN(l->wv, Matrix(f, p + "attn_v.weight", kv, h));
  LORAD_ASSIGN_OR_RETURN(l->wo, Matrix(f, p + "attn_output.weight", h, q));
  LORAD_ASSIGN_OR_RETURN(l->w_gate, Matrix(f, p + "ffn_gate.weight", ff, h));
  LORAD_ASSIGN_OR_RETURN(l->w_up, Matrix(f, p + "ffn_up.weight", ff, h));
  LORAD_ASSIGN_OR_RETURN(l->w_down, Matrix(f, p + "ffn_down.weight", h, ff));
  if (s.qkv_bias) {
    LORAD_ASSIGN_OR_RETURN(l->bq, Vector(f, p + "attn_q.bias", q));
    LORAD_ASSIGN_OR_RETURN(l->bk, Vector(f, p + "attn_k.bias", kv));
    LORAD_ASSIGN_OR_RETURN(l->bv, Vector(f, p + "attn_v.bias", kv));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelWeights>> LoadGgufModel(const std::string& path) {
  auto w = std::make_unique<ModelWeights>();
  LORAD_ASSIGN_OR_RETURN(w->gguf, GgufFile::Open(path));
  const GgufFile& f = *w->gguf;
  LORAD_ASSIGN_OR_RETURN(w->spec, ReadSpec(f));
  ModelSpec& s = w->spec;
  s.qkv_bias = f.FindTensor("blk.0.attn_q.bias") != nullptr;
  s.tied_embeddings = f.FindTensor("output.weight") == nullptr;
  w->source_format = "gguf";
  w->source_path = path;
  LORAD_ASSIGN_OR_RETURN(w->token_embedding,
                         Matrix(f, "token_embd.weight", s.vocab_size, s.hidden_size));
  if (s.tied_embeddings) {
    w->output = w->token_embedding;
  } else {
    LORAD_ASSIGN_OR_RETURN(w->output, Matrix(f, "output.weight", s.vocab_size, s.hidden_size));
  }
  LORAD_ASSIGN_OR_RETURN(w->output_norm, Vector(f, "output_norm.weight", s.hidden_size));
  if (f.FindTensor("rope_freqs.weight") != nullptr) {
    LORAD_ASSIGN_OR_RETURN(w->rope_freq_factors, Vector(f, "rope_freqs.weight", s.head_dim / 2));
  }
  w->layers.resize(s.num_layers);
  for (int i = 0; i < s.num_layers; ++i) {
    LORAD_RETURN_IF_ERROR(LoadLayer(f, s, i, &w->layers[i]));
  }
  return w;
}

}  // namespace lorad
