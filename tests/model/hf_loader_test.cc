// LoadHfModel on tiny HF directories: NF4 quantization, q/k permutation consistent with GGUF,
// shards, dtypes, and errors.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "engine/model/hf_config.h"
#include "engine/model/model_weights.h"
#include "engine/quant/dequantize.h"
#include "engine/quant/quantize.h"
#include "gtest/gtest.h"
#include "tests/fixtures/temp_dir.h"
#include "tests/fixtures/tiny_model.h"

namespace lorad {
namespace {

using ::lorad::testing::ScopedTempDir;
using ::lorad::testing::TinyModelOptions;
using ::lorad::testing::WriteTinyGguf;
using ::lorad::testing::WriteTinyHfDir;

// NF4 of `gguf` row r (F32) must equal the HF load's row r byte for byte: same values, same
// row order (so the permutation matches llama.cpp's), same quantizer.
void ExpectSameNf4(const WeightMatrix& hf, const WeightMatrix& gguf, const std::string& what) {
  ASSERT_EQ(hf.type, DType::kNF4) << what;
  ASSERT_EQ(gguf.type, DType::kF32) << what;
  ASSERT_EQ(hf.rows, gguf.rows) << what;
  ASSERT_EQ(hf.cols, gguf.cols) << what;
  std::vector<uint8_t> want(hf.row_bytes);
  for (int64_t r = 0; r < hf.rows; ++r) {
    ASSERT_TRUE(quant::QuantizeRow(DType::kNF4, static_cast<const float*>(gguf.Row(r)), want.data(),
                                   gguf.cols)
                    .ok());
    ASSERT_EQ(std::memcmp(hf.Row(r), want.data(), hf.row_bytes), 0) << what << " row " << r;
  }
}

void ExpectSameModel(const ModelWeights& hf, const ModelWeights& gguf) {
  EXPECT_EQ(hf.spec.architecture, gguf.spec.architecture);
  EXPECT_EQ(hf.spec.vocab_size, gguf.spec.vocab_size);
  EXPECT_EQ(hf.spec.hidden_size, gguf.spec.hidden_size);
  EXPECT_EQ(hf.spec.intermediate_size, gguf.spec.intermediate_size);
  EXPECT_EQ(hf.spec.num_layers, gguf.spec.num_layers);
  EXPECT_EQ(hf.spec.num_heads, gguf.spec.num_heads);
  EXPECT_EQ(hf.spec.num_kv_heads, gguf.spec.num_kv_heads);
  EXPECT_EQ(hf.spec.head_dim, gguf.spec.head_dim);
  EXPECT_EQ(hf.spec.max_position, gguf.spec.max_position);
  EXPECT_FLOAT_EQ(hf.spec.rms_norm_eps, gguf.spec.rms_norm_eps);
  EXPECT_FLOAT_EQ(hf.spec.rope_theta, gguf.spec.rope_theta);
  EXPECT_EQ(hf.spec.tied_embeddings, gguf.spec.tied_embeddings);
  EXPECT_EQ(hf.spec.qkv_bias, gguf.spec.qkv_bias);
  EXPECT_EQ(hf.spec.rope_neox, gguf.spec.rope_neox);
  ExpectSameNf4(hf.token_embedding, gguf.token_embedding, "embedding");
  ExpectSameNf4(hf.output, gguf.output, "output");
  EXPECT_EQ(hf.output_norm, gguf.output_norm);
  ASSERT_EQ(hf.layers.size(), gguf.layers.size());
  for (size_t i = 0; i < hf.layers.size(); ++i) {
    const LayerWeights& a = hf.layers[i];
    const LayerWeights& b = gguf.layers[i];
    const std::string l = "layer " + std::to_string(i) + " ";
    ExpectSameNf4(a.wq, b.wq, l + "wq");
    ExpectSameNf4(a.wk, b.wk, l + "wk");
    ExpectSameNf4(a.wv, b.wv, l + "wv");
    ExpectSameNf4(a.wo, b.wo, l + "wo");
    ExpectSameNf4(a.w_gate, b.w_gate, l + "w_gate");
    ExpectSameNf4(a.w_up, b.w_up, l + "w_up");
    ExpectSameNf4(a.w_down, b.w_down, l + "w_down");
    EXPECT_EQ(a.attn_norm, b.attn_norm);
    EXPECT_EQ(a.ffn_norm, b.ffn_norm);
    EXPECT_EQ(a.bq, b.bq);
    EXPECT_EQ(a.bk, b.bk);
    EXPECT_EQ(a.bv, b.bv);
  }
}

struct HfCase {
  const char* name;
  bool tied;
  bool qkv_bias;
  int shards;
};
void PrintTo(const HfCase& c, std::ostream* os) { *os << c.name; }

class HfMatchesGgufTest : public ::testing::TestWithParam<HfCase> {};

TEST_P(HfMatchesGgufTest, SameWeightsAfterNf4) {
  ScopedTempDir dir;
  TinyModelOptions o;
  o.seed = 42;
  o.tied = GetParam().tied;
  o.qkv_bias = GetParam().qkv_bias;
  o.hf_shards = GetParam().shards;
  ASSERT_TRUE(WriteTinyGguf(o, dir.File("m.gguf")).ok());
  ASSERT_TRUE(WriteTinyHfDir(o, dir.File("hf")).ok());
  auto gguf = LoadModel(dir.File("m.gguf"));
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto hf = LoadModel(dir.File("hf"));
  ASSERT_TRUE(hf.ok()) << hf.status();
  EXPECT_EQ((*hf)->source_format, "hf");
  EXPECT_EQ((*hf)->spec.tied_embeddings, o.tied);
  EXPECT_EQ((*hf)->output.data == (*hf)->token_embedding.data, o.tied);
  ExpectSameModel(**hf, **gguf);
}

INSTANTIATE_TEST_SUITE_P(Layouts, HfMatchesGgufTest,
                         ::testing::Values(HfCase{"TiedLlama", true, false, 1},
                                           HfCase{"UntiedLlamaSharded", false, false, 3},
                                           HfCase{"Qwen2Bias", true, true, 2}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(HfLoaderTest, HalfDtypesLoadCloseToMaster) {
  for (DType dt : {DType::kF16, DType::kBF16}) {
    ScopedTempDir dir;
    TinyModelOptions o;
    o.hf_dtype = dt;
    ASSERT_TRUE(WriteTinyHfDir(o, dir.path()).ok());
    auto hf = LoadHfModel(dir.path());
    ASSERT_TRUE(hf.ok()) << hf.status();
    ASSERT_EQ((*hf)->layers.size(), 2u);
    const WeightMatrix& up = (*hf)->layers[0].w_up;
    std::vector<float> row(up.cols);
    quant::DequantizeRow(DType::kNF4, up.Row(3), row.data(), up.cols);
    const auto master = ::lorad::testing::TinyModelTensors(o);
    for (const auto& t : master) {
      if (t.name != "model.layers.0.mlp.up_proj.weight") continue;
      for (int64_t c = 0; c < up.cols; ++c) EXPECT_NEAR(row[c], t.values[3 * 64 + c], 0.06);
    }
    for (const auto& t : master) {
      if (t.name == "model.norm.weight") EXPECT_NEAR((*hf)->output_norm[0], t.values[0], 0.01);
    }
  }
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void ReplaceInFile(const std::string& path, const std::string& from, const std::string& to) {
  std::string text = ReadText(path);
  const size_t pos = text.find(from);
  ASSERT_NE(pos, std::string::npos) << from;
  text.replace(pos, from.size(), to);
  WriteText(path, text);
}

struct ErrorCase {
  const char* name;
  std::function<void(const std::string& dir)> corrupt;
  absl::StatusCode code;
  const char* part;
};

TEST(HfLoaderTest, ErrorsNameTheFileAndField) {
  namespace fs = std::filesystem;
  const std::vector<ErrorCase> cases = {
      {"no_config", [](const std::string& d) { fs::remove(d + "/config.json"); },
       absl::StatusCode::kNotFound, "config.json"},
      {"bad_json", [](const std::string& d) { WriteText(d + "/config.json", "{oops"); },
       absl::StatusCode::kInvalidArgument, "config.json: not a JSON object"},
      {"architecture",
       [](const std::string& d) {
         ReplaceInFile(d + "/config.json", "LlamaForCausalLM", "GPTNeoXForCausalLM");
       },
       absl::StatusCode::kUnimplemented, "'GPTNeoXForCausalLM' is not supported"},
      {"missing_field",
       [](const std::string& d) {
         ReplaceInFile(d + "/config.json", "\"hidden_size\"", "\"hidden_sizes\"");
       },
       absl::StatusCode::kInvalidArgument, "missing integer field 'hidden_size'"},
      {"field_type",
       [](const std::string& d) {
         ReplaceInFile(d + "/config.json", "\"num_hidden_layers\": 2",
                       "\"num_hidden_layers\": \"2\"");
       },
       absl::StatusCode::kInvalidArgument, "'num_hidden_layers' = \"2\" is not a valid integer"},
      {"rope_scaling",
       [](const std::string& d) {
         ReplaceInFile(d + "/config.json", "\"rope_scaling\": null",
                       "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}");
       },
       absl::StatusCode::kUnimplemented, "rope_scaling type 'linear'"},
      {"shape_mismatch",
       [](const std::string& d) {
         ReplaceInFile(d + "/config.json", "\"intermediate_size\": 128",
                       "\"intermediate_size\": 192");
       },
       absl::StatusCode::kInvalidArgument,
       "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [128, 64], expected [192, 64]"},
      {"no_weights", [](const std::string& d) { fs::remove(d + "/model.safetensors"); },
       absl::StatusCode::kNotFound, "no model.safetensors"},
      {"untied_without_lm_head",
       [](const std::string& d) {
         ReplaceInFile(d + "/config.json", "\"tie_word_embeddings\": true",
                       "\"tie_word_embeddings\": false");
       },
       absl::StatusCode::kNotFound, "lm_head.weight not found"},
      {"corrupt_safetensors",
       [](const std::string& d) { WriteText(d + "/model.safetensors", "12345678{}"); },
       absl::StatusCode::kInvalidArgument, "model.safetensors: header length"},
      {"bad_shard_name",
       [](const std::string& d) {
         WriteText(d + "/model.safetensors.index.json",
                   R"({"weight_map": {"model.norm.weight": "../evil.safetensors"}})");
       },
       absl::StatusCode::kInvalidArgument, "invalid shard name"},
      {"index_points_to_wrong_shard",
       [](const std::string& d) {
         WriteText(d + "/model.safetensors.index.json",
                   R"({"weight_map": {"model.norm.weight": "model.safetensors",
                                      "extra.weight": "model.safetensors"}})");
       },
       absl::StatusCode::kInvalidArgument, "tensor 'extra.weight' is not in shard"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    ScopedTempDir dir;
    ASSERT_TRUE(WriteTinyHfDir(TinyModelOptions{}, dir.path()).ok());
    c.corrupt(dir.path());
    auto loaded = LoadModel(dir.path());
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), c.code) << loaded.status();
    EXPECT_NE(loaded.status().message().find(c.part), std::string::npos) << loaded.status();
  }
}

TEST(HfLoaderTest, ColumnsNotMultipleOf64AreRefused) {
  ScopedTempDir dir;
  TinyModelOptions o;
  o.hidden = 96;
  o.heads = 6;
  o.kv_heads = 2;
  ASSERT_TRUE(WriteTinyHfDir(o, dir.path()).ok());
  auto loaded = LoadHfModel(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("'model.embed_tokens.weight' has 96 columns"),
            std::string::npos)
      << loaded.status();
}

TEST(HfConfigTest, Llama3RopeScaling) {
  ScopedTempDir dir;
  WriteText(dir.File("config.json"), R"({
    "architectures": ["LlamaForCausalLM"], "vocab_size": 1000, "hidden_size": 256,
    "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 2,
    "num_key_value_heads": 1, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0, "tie_word_embeddings": true,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}})");
  auto spec = ReadHfConfig(dir.File("config.json"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->head_dim, 128);
  EXPECT_EQ(spec->num_kv_heads, 1);
  EXPECT_FLOAT_EQ(spec->rope_scaling_factor, 8.0f);
  EXPECT_EQ(spec->rope_original_max_position, 8192);
  EXPECT_FALSE(spec->rope_neox);
  EXPECT_EQ(Llama3RopeFreqFactors(*spec).size(), 64u);
}

}  // namespace
}  // namespace lorad
