// The real default model (SmolLM2-135M-Instruct Q4_1), when present: spec and tensor types.
// Skipped unless LORAD_DEFAULT_MODEL or $LORAD_SOURCE_DIR/data/models/... points at it.
#include <sys/stat.h>

#include <cmath>
#include <cstdlib>

#include "engine/model/model_weights.h"
#include "engine/quant/dequantize.h"
#include "gtest/gtest.h"

namespace lorad {
namespace {

std::string DefaultModelPath() {
  struct stat st;
  if (const char* p = std::getenv("LORAD_DEFAULT_MODEL"); p != nullptr && ::stat(p, &st) == 0) {
    return p;
  }
  if (const char* src = std::getenv("LORAD_SOURCE_DIR"); src != nullptr) {
    const std::string p = std::string(src) + "/data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
    if (::stat(p.c_str(), &st) == 0) return p;
  }
  return "";
}

TEST(DefaultModelTest, SmolLM2SpecAndTensorTypes) {
  const std::string path = DefaultModelPath();
  if (path.empty()) GTEST_SKIP() << "default model not present";
  auto loaded = LoadModel(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ModelWeights& w = **loaded;
  const ModelSpec& s = w.spec;
  EXPECT_EQ(s.architecture, "llama");
  EXPECT_EQ(s.num_layers, 30);
  EXPECT_EQ(s.hidden_size, 576);
  EXPECT_EQ(s.num_heads, 9);
  EXPECT_EQ(s.num_kv_heads, 3);
  EXPECT_EQ(s.head_dim, 64);
  EXPECT_EQ(s.intermediate_size, 1536);
  EXPECT_EQ(s.vocab_size, 49152);
  EXPECT_EQ(s.max_position, 8192);
  EXPECT_FLOAT_EQ(s.rope_theta, 100000.0f);
  EXPECT_FLOAT_EQ(s.rms_norm_eps, 1e-5f);
  EXPECT_TRUE(s.tied_embeddings);
  EXPECT_FALSE(s.qkv_bias);
  EXPECT_FALSE(s.rope_neox);
  EXPECT_TRUE(w.rope_freq_factors.empty());
  EXPECT_EQ(w.token_embedding.type, DType::kQ8_0);
  EXPECT_EQ(w.output.data, w.token_embedding.data);
  ASSERT_EQ(w.layers.size(), 30u);
  for (const LayerWeights& l : w.layers) {
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      EXPECT_EQ(m->type, DType::kQ4_1);
    }
    EXPECT_EQ(l.attn_norm.size(), 576u);
  }
  EXPECT_EQ(w.layers[0].wk.rows, 192);
  EXPECT_EQ(w.layers[0].w_down.cols, 1536);
  ASSERT_NE(w.gguf, nullptr);
  EXPECT_EQ(*w.gguf->GetString("tokenizer.ggml.model"), "gpt2");
  // Embedding rows decode to finite values of a sensible magnitude.
  std::vector<float> row(576);
  quant::DequantizeRow(w.token_embedding.type, w.token_embedding.Row(1000), row.data(), 576);
  double sum_sq = 0;
  for (float x : row) {
    ASSERT_TRUE(std::isfinite(x));
    sum_sq += x * x;
  }
  EXPECT_GT(sum_sq, 1e-3);
  EXPECT_LT(sum_sq, 1e4);
}

}  // namespace
}  // namespace lorad
