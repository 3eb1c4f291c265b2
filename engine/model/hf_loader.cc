// LoadHfModel: HF safetensors directory -> ModelWeights with NF4 matrices (QLoRA quantization)
// and llama.cpp's q/k row permutation for llama/mistral (see model_weights.h).
#include <sys/stat.h>

#include <cstring>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/half.h"
#include "engine/base/mapped_file.h"
#include "engine/base/safetensors.h"
#include "engine/base/status_macros.h"
#include "engine/model/hf_config.h"
#include "engine/model/model_weights.h"
#include "engine/quant/quantize.h"
#include "nlohmann/json.hpp"

namespace lorad {
namespace {

using json = nlohmann::json;

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// All tensors of the checkpoint, across shards.
class TensorSet {
 public:
  absl::Status Open(const std::string& dir) {
    const std::string index_path = dir + "/model.safetensors.index.json";
    if (FileExists(index_path)) return OpenIndex(dir, index_path);
    const std::string single = dir + "/model.safetensors";
    if (!FileExists(single)) {
      return absl::NotFoundError(absl::StrCat(dir, ": no model.safetensors or ",
                                              "model.safetensors.index.json (only safetensors "
                                              "checkpoints are supported)"));
    }
    return AddFile(single);
  }

  // The tensor `name` checked to have row-major `shape`; NOT_FOUND / INVALID_ARGUMENT naming it.
  absl::StatusOr<const SafetensorsTensor*> Get(const std::string& name,
                                               const std::vector<int64_t>& shape) const {
    auto it = index_.find(name);
    if (it == index_.end()) {
      return absl::NotFoundError(absl::StrCat(dir_, ": tensor '", name, "' not found"));
    }
    if (it->second.tensor->shape != shape) {
      return absl::InvalidArgumentError(
          absl::StrCat(it->second.file->path(), ": tensor '", name, "' has shape [",
                       absl::StrJoin(it->second.tensor->shape, ", "), "], expected [",
                       absl::StrJoin(shape, ", "), "]"));
    }
    return it->second.tensor;
  }
  bool Has(const std::string& name) const { return index_.count(name) != 0; }

 private:
  struct Entry {
    const SafetensorsFile* file;
    const SafetensorsTensor* tensor;
  };

  absl::Status AddFile(const std::string& path) {
    LORAD_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> f, SafetensorsFile::Open(path));
    for (const SafetensorsTensor& t : f->tensors()) {
      if (!index_.emplace(t.name, Entry{f.get(), &t}).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": tensor '", t.name, "' also appears in another shard"));
      }
    }
    files_.push_back(std::move(f));
    return absl::OkStatus();
  }

  absl::Status OpenIndex(const std::string& dir, const std::string& index_path) {
    dir_ = dir;
    LORAD_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(index_path));
    const char* text = reinterpret_cast<const char*>(file->data());
    const json j = json::parse(text, text + file->size(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("weight_map") ||
        !j["weight_map"].is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": not a JSON object with a 'weight_map' object"));
    }
    std::map<std::string, std::string> wanted;  // tensor -> shard
    std::set<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      const std::string shard = it.value().is_string() ? it.value().get<std::string>() : "";
      if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..") {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": tensor '", it.key(),
                                                       "' maps to an invalid shard name ",
                                                       it.value().dump()));
      }
      wanted[it.key()] = shard;
      shards.insert(shard);
    }
    for (const std::string& shard : shards) LORAD_RETURN_IF_ERROR(AddFile(dir + "/" + shard));
    for (const auto& [name, shard] : wanted) {
      auto it = index_.find(name);
      if (it == index_.end() || it->second.file->path() != dir + "/" + shard) {
        return absl::InvalidArgumentError(
            absl::StrCat(index_path, ": tensor '", name, "' is not in shard '", shard, "'"));
      }
    }
    return absl::OkStatus();
  }

  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry> index_;
};

// Row `row` of a 2-D (or 1-D, row 0) tensor with `cols` columns, as fp32. Reads through
// memcpy: safetensors data need not be aligned.
void ReadRowF32(const SafetensorsTensor& t, int64_t row, int64_t cols, float* out) {
  const uint8_t* base = static_cast<const uint8_t*>(t.data);
  if (t.dtype == DType::kF32) {
    std::memcpy(out, base + row * cols * 4, cols * 4);
    return;
  }
  const uint8_t* p = base + row * cols * 2;
  for (int64_t c = 0; c < cols; ++c) {
    uint16_t h;
    std::memcpy(&h, p + 2 * c, 2);
    out[c] = t.dtype == DType::kF16 ? Fp16ToFp32(h) : Bf16ToFp32(h);
  }
}

class HfLoader {
 public:
  HfLoader(const std::string& dir, ModelWeights* w) : dir_(dir), w_(w) {}

  absl::Status Load() {
    LORAD_ASSIGN_OR_RETURN(w_->spec, ReadHfConfig(dir_ + "/config.json"));
    LORAD_RETURN_IF_ERROR(tensors_.Open(dir_));
    ModelSpec& s = w_->spec;
    s.qkv_bias = tensors_.Has("model.layers.0.self_attn.q_proj.bias");
    if (!s.tied_embeddings && !tensors_.Has("lm_head.weight")) {
      return absl::NotFoundError(
          absl::StrCat(dir_, ": lm_head.weight not found and tie_word_embeddings is false"));
    }
    permute_qk_ = !s.rope_neox;
    w_->rope_freq_factors = Llama3RopeFreqFactors(s);
    const int64_t vocab = s.vocab_size, h = s.hidden_size;
    LORAD_ASSIGN_OR_RETURN(w_->token_embedding, Matrix("model.embed_tokens.weight", vocab, h, 0));
    if (s.tied_embeddings) {
      w_->output = w_->token_embedding;
    } else {
      LORAD_ASSIGN_OR_RETURN(w_->output, Matrix("lm_head.weight", vocab, h, 0));
    }
    LORAD_ASSIGN_OR_RETURN(w_->output_norm, Vector("model.norm.weight", h, 0));
    w_->layers.resize(s.num_layers);
    for (int i = 0; i < s.num_layers; ++i) LORAD_RETURN_IF_ERROR(LoadLayer(i, &w_->layers[i]));
    return absl::OkStatus();
  }

 private:
  // Quantizes [rows, cols] tensor `name` to NF4. `head_dim` > 0 applies the q/k permutation.
  absl::StatusOr<WeightMatrix> Matrix(const std::string& name, int64_t rows, int64_t cols,
                                      int64_t head_dim) {
    LORAD_ASSIGN_OR_RETURN(const SafetensorsTensor* t, tensors_.Get(name, {rows, cols}));
    if (cols % static_cast<int64_t>(BlockElements(DType::kNF4)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(dir_, ": tensor '", name, "' has ", cols,
                                                     " columns, not a multiple of the NF4 block "
                                                     "size ",
                                                     BlockElements(DType::kNF4)));
    }
    const size_t row_bytes = RowBytes(DType::kNF4, cols);
    std::vector<uint8_t>& buf = w_->buffers.emplace_back(row_bytes * rows);
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t src = head_dim > 0 ? HfToGgufQkSourceRow(r, head_dim) : r;
      ReadRowF32(*t, src, cols, row.data());
      LORAD_RETURN_IF_ERROR(
          quant::QuantizeRow(DType::kNF4, row.data(), buf.data() + r * row_bytes, cols));
    }
    return WeightMatrix{DType::kNF4, rows, cols, buf.data(), row_bytes};
  }

  // The 1-D tensor `name` of `n` values as fp32, permuted like q/k rows when `head_dim` > 0.
  absl::StatusOr<std::vector<float>> Vector(const std::string& name, int64_t n, int64_t head_dim) {
    LORAD_ASSIGN_OR_RETURN(const SafetensorsTensor* t, tensors_.Get(name, {n}));
    std::vector<float> v(n);
    ReadRowF32(*t, 0, n, v.data());
    if (head_dim == 0) return v;
    std::vector<float> p(n);
    for (int64_t r = 0; r < n; ++r) p[r] = v[HfToGgufQkSourceRow(r, head_dim)];
    return p;
  }

  absl::Status LoadLayer(int i, LayerWeights* l) {
    const ModelSpec& s = w_->spec;
    const std::string p = absl::StrCat("model.layers.", i, ".");
    const int64_t h = s.hidden_size, q = int64_t{s.num_heads} * s.head_dim;
    const int64_t kv = int64_t{s.num_kv_heads} * s.head_dim, ff = s.intermediate_size;
    const int64_t qk_perm = permute_qk_ ? s.head_dim : 0;
    LORAD_ASSIGN_OR_RETURN(l->attn_norm, Vector(p + "input_layernorm.weight", h, 0));
    LORAD_ASSIGN_OR_RETURN(l->ffn_norm, Vector(p + "post_attention_layernorm.weight", h, 0));
    LORAD_ASSIGN_OR_RETURN(l->wq, Matrix(p + "self_attn.q_proj.weight", q, h, qk_perm));
    LORAD_ASSIGN_OR_RETURN(l->wk, Matrix(p + "self_attn.k_proj.weight", kv, h, qk_perm));
    LORAD_ASSIGN_OR_RETURN(l->wv, Matrix(p + "self_attn.v_proj.weight", kv, h, 0));
    LORAD_ASSIGN_OR_RETURN(l->wo, Matrix(p + "self_attn.o_proj.weight", h, q, 0));
    LORAD_ASSIGN_OR_RETURN(l->w_gate, Matrix(p + "mlp.gate_proj.weight", ff, h, 0));
    LORAD_ASSIGN_OR_RETURN(l->w_up, Matrix(p + "mlp.up_proj.weight", ff, h, 0));
    LORAD_ASSIGN_OR_RETURN(l->w_down, Matrix(p + "mlp.down_proj.weight", h, ff, 0));
    if (s.qkv_bias) {
      LORAD_ASSIGN_OR_RETURN(l->bq, Vector(p + "self_attn.q_proj.bias", q, qk_perm));
      LORAD_ASSIGN_OR_RETURN(l->bk, Vector(p + "self_attn.k_proj.bias", kv, qk_perm));
      LORAD_ASSIGN_OR_RETURN(l->bv, Vector(p + "self_attn.v_proj.bias", kv, 0));
    }
    return absl::OkStatus();
  }

  const std::string dir_;
  ModelWeights* w_;
  TensorSet tensors_;
  bool permute_qk_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ModelWeights>> LoadHfModel(const std::string& dir) {
  auto w = std::make_unique<ModelWeights>();
  w->source_format = "hf";
  w->source_path = dir;
  HfLoader loader(dir, w.get());
  LORAD_RETURN_IF_ERROR(loader.Load());
  return w;
}

}  // namespace lorad
