// LoadGgufModel on tiny fixtures in several weight types, and its errors.
#include <cmath>
#include <functional>
#include <map>

#include "engine/base/gguf_writer.h"
#include "engine/model/model_weights.h"
#include "engine/quant/dequantize.h"
#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"
#include "tests/fixtures/tiny_model.h"

namespace lorad {
namespace {

using ::lorad::testing::ScopedTempDir;
using ::lorad::testing::TinyModelOptions;
using ::lorad::testing::TinyModelTensors;
using ::lorad::testing::TinyTensor;
using ::lorad::testing::WriteTinyGguf;

std::map<std::string, TinyTensor> Master(const TinyModelOptions& o) {
  std::map<std::string, TinyTensor> m;
  for (TinyTensor& t : TinyModelTensors(o)) m[t.name] = std::move(t);
  return m;
}

std::vector<float> DequantRow(const WeightMatrix& w, int64_t r) {
  std::vector<float> out(w.cols);
  quant::DequantizeRow(w.type, w.Row(r), out.data(), w.cols);
  return out;
}

// Max |a - b| over row `r` of `w` against master row `src_row` of `m`.
float RowError(const WeightMatrix& w, int64_t r, const TinyTensor& m, int64_t src_row) {
  const std::vector<float> row = DequantRow(w, r);
  float err = 0;
  for (int64_t c = 0; c < w.cols; ++c) {
    err = std::max(err, std::fabs(row[c] - m.values[src_row * w.cols + c]));
  }
  return err;
}

struct TypeCase {
  DType type;
  float tolerance;  // max abs error vs master for N(0, 1/64) weights
};
void PrintTo(const TypeCase& c, std::ostream* os) { *os << DTypeName(c.type); }

class GgufLoaderTypeTest : public ::testing::TestWithParam<TypeCase> {};

TEST_P(GgufLoaderTypeTest, LoadsSpecShapesAndValues) {
  ScopedTempDir dir;
  TinyModelOptions o;
  o.weight_type = GetParam().type;
  const std::string path = dir.File("tiny.gguf");
  ASSERT_TRUE(WriteTinyGguf(o, path).ok());
  auto loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ModelWeights& w = **loaded;
  const ModelSpec& s = w.spec;
  EXPECT_EQ(w.source_format, "gguf");
  EXPECT_EQ(s.architecture, "llama");
  EXPECT_EQ(s.vocab_size, 288);
  EXPECT_EQ(s.hidden_size, 64);
  EXPECT_EQ(s.intermediate_size, 128);
  EXPECT_EQ(s.num_layers, 2);
  EXPECT_EQ(s.num_heads, 4);
  EXPECT_EQ(s.num_kv_heads, 2);
  EXPECT_EQ(s.head_dim, 16);
  EXPECT_EQ(s.max_position, 2048);
  EXPECT_FLOAT_EQ(s.rms_norm_eps, 1e-5f);
  EXPECT_FLOAT_EQ(s.rope_theta, 10000.0f);
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_FALSE(s.rope_neox);
  EXPECT_TRUE(w.rope_freq_factors.empty());
  ASSERT_EQ(w.layers.size(), 2u);
  EXPECT_EQ(w.output.data, w.token_embedding.data);
  EXPECT_EQ(w.token_embedding.type, GetParam().type);
  EXPECT_EQ(w.token_embedding.rows, 288);
  EXPECT_EQ(w.token_embedding.row_bytes, RowBytes(GetParam().type, 64));
  const LayerWeights& l = w.layers[1];
  EXPECT_EQ(l.wq.rows, 64);
  EXPECT_EQ(l.wk.rows, 32);
  EXPECT_EQ(l.wv.rows, 32);
  EXPECT_EQ(l.wo.cols, 64);
  EXPECT_EQ(l.w_gate.rows, 128);
  EXPECT_EQ(l.w_down.cols, 128);
  EXPECT_EQ(l.attn_norm.size(), 64u);
  EXPECT_TRUE(l.bq.empty());

  const auto m = Master(o);
  const float tol = GetParam().tolerance;
  const TinyTensor& emb = m.at("model.embed_tokens.weight");
  for (int64_t r : {0, 100, 287}) EXPECT_LE(RowError(w.token_embedding, r, emb, r), tol * 0.8);
  EXPECT_EQ(l.ffn_norm, m.at("model.layers.1.post_attention_layernorm.weight").values);
  const TinyTensor& up = m.at("model.layers.1.mlp.up_proj.weight");
  for (int64_t r = 0; r < 128; r += 17) EXPECT_LE(RowError(l.w_up, r, up, r), tol);
  // q/k rows are permuted as llama.cpp's converter does; v is not.
  const TinyTensor& q = m.at("model.layers.1.self_attn.q_proj.weight");
  for (int64_t r = 0; r < 64; ++r) {
    EXPECT_LE(RowError(l.wq, r, q, HfToGgufQkSourceRow(r, 16)), tol) << "q row " << r;
  }
  const TinyTensor& k = m.at("model.layers.1.self_attn.k_proj.weight");
  for (int64_t r = 0; r < 32; ++r) EXPECT_LE(RowError(l.wk, r, k, HfToGgufQkSourceRow(r, 16)), tol);
  const TinyTensor& v = m.at("model.layers.1.self_attn.v_proj.weight");
  for (int64_t r = 0; r < 32; ++r) EXPECT_LE(RowError(l.wv, r, v, r), tol);
}

INSTANTIATE_TEST_SUITE_P(
    WeightTypes, GgufLoaderTypeTest,
    ::testing::Values(TypeCase{DType::kF32, 0.0f}, TypeCase{DType::kF16, 2e-3f},
                      TypeCase{DType::kBF16, 1e-2f}, TypeCase{DType::kQ8_0, 0.01f},
                      TypeCase{DType::kQ5_0, 0.06f}, TypeCase{DType::kQ4_0, 0.12f},
                      TypeCase{DType::kQ4_1, 0.12f}),
    [](const auto& info) { return DTypeName(info.param.type); });

TEST(GgufLoaderTest, UntiedAndQwen2Bias) {
  ScopedTempDir dir;
  TinyModelOptions o;
  o.tied = false;
  o.qkv_bias = true;
  o.num_layers = 3;
  ASSERT_TRUE(WriteTinyGguf(o, dir.File("q.gguf")).ok());
  auto loaded = LoadGgufModel(dir.File("q.gguf"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ModelWeights& w = **loaded;
  EXPECT_EQ(w.spec.architecture, "qwen2");
  EXPECT_TRUE(w.spec.rope_neox);
  EXPECT_TRUE(w.spec.qkv_bias);
  EXPECT_FALSE(w.spec.tied_embeddings);
  EXPECT_EQ(w.spec.num_layers, 3);
  EXPECT_NE(w.output.data, w.token_embedding.data);
  const auto m = Master(o);
  EXPECT_EQ(RowError(w.output, 5, m.at("lm_head.weight"), 5), 0.0f);
  // qwen2: no permutation of rows or biases.
  EXPECT_EQ(w.layers[2].bq, m.at("model.layers.2.self_attn.q_proj.bias").values);
  EXPECT_EQ(w.layers[2].bk, m.at("model.layers.2.self_attn.k_proj.bias").values);
  EXPECT_EQ(w.layers[2].bv, m.at("model.layers.2.self_attn.v_proj.bias").values);
  EXPECT_EQ(RowError(w.layers[2].wq, 1, m.at("model.layers.2.self_attn.q_proj.weight"), 1), 0.0f);
}

// Rewrites `src` into `dst`, dropping tensor `drop` and applying `edit` to the metadata.
void Rewrite(const std::string& src, const std::string& dst, const std::string& drop,
             const std::function<void(GgufWriter*)>& edit) {
  auto f = GgufFile::Open(src);
  ASSERT_TRUE(f.ok()) << f.status();
  GgufWriter w;
  for (const GgufKeyValue& kv : (*f)->metadata()) {
    const GgufValue& v = kv.value;
    if (v.type == GgufType::kString) {
      w.SetString(kv.key, std::string(v.string));
    } else if (v.type == GgufType::kUint32) {
      w.SetUint32(kv.key, static_cast<uint32_t>(v.raw));
    } else if (v.type == GgufType::kFloat32) {
      w.SetFloat32(kv.key, static_cast<float>(*(*f)->GetFloat(kv.key)));
    }  // arrays and bools are not needed by the loader
  }
  edit(&w);
  for (const GgufTensor& t : (*f)->tensors()) {
    if (t.name == drop) continue;
    ASSERT_TRUE(w.AddTensor(t.name, t.dims, t.type, t.data, t.bytes).ok());
  }
  ASSERT_TRUE(w.Write(dst).ok());
}

TEST(GgufLoaderTest, ErrorsNameTheTensorOrKey) {
  ScopedTempDir dir;
  TinyModelOptions o;
  o.weight_type = DType::kQ8_0;
  const std::string src = dir.File("src.gguf");
  ASSERT_TRUE(WriteTinyGguf(o, src).ok());
  struct Case {
    const char* name;
    std::string drop;
    std::function<void(GgufWriter*)> edit;
    absl::StatusCode code;
    const char* part;
  };
  const std::vector<Case> cases = {
      {"missing_tensor", "blk.1.ffn_up.weight", [](GgufWriter*) {}, absl::StatusCode::kNotFound,
       "tensor 'blk.1.ffn_up.weight' not found"},
      {"missing_norm", "output_norm.weight", [](GgufWriter*) {}, absl::StatusCode::kNotFound,
       "'output_norm.weight'"},
      {"shape_mismatch", "", [](GgufWriter* w) { w->SetUint32("llama.feed_forward_length", 96); },
       absl::StatusCode::kInvalidArgument,
       "tensor 'blk.0.ffn_gate.weight' has dims [64, 128] (ggml order), expected [64, 96]"},
      {"vocab_mismatch", "", [](GgufWriter* w) { w->SetUint32("llama.vocab_size", 300); },
       absl::StatusCode::kInvalidArgument, "tensor 'token_embd.weight' has dims [64, 288]"},
      {"architecture", "", [](GgufWriter* w) { w->SetString("general.architecture", "gpt2"); },
       absl::StatusCode::kUnimplemented, "architecture 'gpt2' is not supported"},
      {"missing_key", "",
       [](GgufWriter* w) {
         w->SetString("general.architecture", "mistral");  // the llama.* keys no longer apply
       },
       absl::StatusCode::kNotFound, "metadata key 'mistral.embedding_length' not found"},
      {"bad_heads", "", [](GgufWriter* w) { w->SetUint32("llama.attention.head_count_kv", 3); },
       absl::StatusCode::kInvalidArgument, "num_kv_heads"},
      {"partial_rope", "", [](GgufWriter* w) { w->SetUint32("llama.rope.dimension_count", 8); },
       absl::StatusCode::kUnimplemented, "partial rotary"},
      {"rope_scaling", "", [](GgufWriter* w) { w->SetString("llama.rope.scaling.type", "yarn"); },
       absl::StatusCode::kUnimplemented, "RoPE scaling 'yarn'"},
      {"key_type", "", [](GgufWriter* w) { w->SetString("llama.block_count", "two"); },
       absl::StatusCode::kInvalidArgument, "'llama.block_count' is string"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dst = dir.File(std::string(c.name) + ".gguf");
    Rewrite(src, dst, c.drop, c.edit);
    auto loaded = LoadModel(dst);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), c.code) << loaded.status();
    EXPECT_NE(loaded.status().message().find(c.part), std::string::npos) << loaded.status();
  }
}

TEST(GgufLoaderTest, RopeFreqsTensorIsRead) {
  ScopedTempDir dir;
  TinyModelOptions o;
  const std::string src = dir.File("src.gguf"), dst = dir.File("freqs.gguf");
  ASSERT_TRUE(WriteTinyGguf(o, src).ok());
  const std::vector<float> freqs = {1, 1, 1, 2, 4, 8, 8, 8};
  Rewrite(src, dst, "", [&](GgufWriter* w) {
    ASSERT_TRUE(w->AddTensor("rope_freqs.weight", {8}, DType::kF32, freqs.data(), 32).ok());
  });
  auto loaded = LoadModel(dst);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->rope_freq_factors, freqs);
}

TEST(ModelLoaderTest, MissingPathIsNotFound) {
  auto loaded = LoadModel("/nonexistent/model.gguf");
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(loaded.status().message().find("/nonexistent/model.gguf"), std::string::npos);
}

TEST(ModelLoaderTest, QkPermutationAndLlama3Factors) {
  // head_dim 4: GGUF rows (0,1,2,3) come from HF rows (0,2,1,3).
  EXPECT_EQ(HfToGgufQkSourceRow(0, 4), 0);
  EXPECT_EQ(HfToGgufQkSourceRow(1, 4), 2);
  EXPECT_EQ(HfToGgufQkSourceRow(2, 4), 1);
  EXPECT_EQ(HfToGgufQkSourceRow(3, 4), 3);
  EXPECT_EQ(HfToGgufQkSourceRow(5, 4), 6);
  ModelSpec s;
  s.head_dim = 128;
  s.rope_theta = 500000.0f;
  EXPECT_TRUE(Llama3RopeFreqFactors(s).empty());
  s.rope_scaling_factor = 8.0f;
  s.rope_original_max_position = 8192;
  const std::vector<float> f = Llama3RopeFreqFactors(s);
  ASSERT_EQ(f.size(), 64u);
  EXPECT_FLOAT_EQ(f.front(), 1.0f);  // high frequencies are not scaled
  EXPECT_FLOAT_EQ(f.back(), 8.0f);   // low frequencies are scaled by the factor
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]);
}

}  // namespace
}  // namespace lorad
