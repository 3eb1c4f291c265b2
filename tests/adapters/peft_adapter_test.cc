#include "adapters/peft_adapter.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "engine/base/half.h"
#include "engine/model/model_weights.h"
#include "gtest/gtest.h"
#include "tests/adapters/adapter_test_util.h"

namespace lorad::adapters {
namespace {

using ::lorad::testing::ModuleTensors;
using ::lorad::testing::PatchConfig;
using ::lorad::testing::ScopedTempDir;
using ::lorad::testing::TinyAdapterOptions;
using ::lorad::testing::TinyModelOptions;
using ::lorad::testing::TinySpec;
using ::lorad::testing::TinyTensor;
using ::lorad::testing::WriteTensors;
using Json = nlohmann::json;

float At(const LoraPair& p, const void* data, int64_t i) {
  if (p.dtype == DType::kF32) return static_cast<const float*>(data)[i];
  return Fp16ToFp32(static_cast<const uint16_t*>(data)[i]);
}

const TinyTensor& Find(const std::vector<TinyTensor>& ts, const std::string& name) {
  for (const TinyTensor& t : ts) {
    if (t.name == name) return t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return ts.front();
}

class PeftAdapterTest : public ::testing::Test {
 protected:
  TinyModelOptions base_;
  ScopedTempDir dir_;
};

TEST_F(PeftAdapterTest, ReadsPlainAdapterWithQkPermutation) {
  TinyAdapterOptions o;  // rank 4, alpha 8, q_proj + v_proj
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, dir_.path()).ok());
  auto a = ReadPeftAdapter(dir_.path(), TinySpec(base_), {DType::kF32});
  ASSERT_TRUE(a.ok()) << a.status();
  const PeftAdapter& ad = **a;
  EXPECT_EQ(ad.max_rank, 4);
  EXPECT_EQ(ad.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  ASSERT_EQ(ad.weights.layers.size(), 2u);
  const auto tensors = TinyAdapterTensors(base_, o);
  const int64_t hd = base_.hidden / base_.heads;
  for (int l = 0; l < 2; ++l) {
    const LoraPair& q = ad.weights.layers[l][static_cast<int>(LoraTarget::kQ)];
    const LoraPair& v = ad.weights.layers[l][static_cast<int>(LoraTarget::kV)];
    EXPECT_EQ(q.rank, 4);
    EXPECT_FLOAT_EQ(q.scale, 2.0f);
    EXPECT_EQ(q.dtype, DType::kF32);
    EXPECT_EQ(ad.weights.layers[l][static_cast<int>(LoraTarget::kK)].rank, 0);
    EXPECT_EQ(ad.weights.layers[l][static_cast<int>(LoraTarget::kDown)].rank, 0);
    const TinyTensor& qa = Find(tensors, ::lorad::testing::PeftName(l, "q_proj", false));
    const TinyTensor& qb = Find(tensors, ::lorad::testing::PeftName(l, "q_proj", true));
    const TinyTensor& vb = Find(tensors, ::lorad::testing::PeftName(l, "v_proj", true));
    for (size_t i = 0; i < qa.values.size(); ++i) ASSERT_EQ(At(q, q.a, i), qa.values[i]);
    for (size_t i = 0; i < vb.values.size(); ++i) ASSERT_EQ(At(v, v.b, i), vb.values[i]);
    for (int64_t r = 0; r < qb.shape[0]; ++r) {
      const int64_t src = QkPermutedSourceRow(r, hd);
      for (int c = 0; c < 4; ++c) ASSERT_EQ(At(q, q.b, r * 4 + c), qb.values[src * 4 + c]);
    }
  }
  EXPECT_EQ(ad.bytes, 2 * 4 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4));
}

TEST_F(PeftAdapterTest, QkPermutationMatchesTheModelLoaders) {
  for (int64_t hd : {4, 16, 64}) {
    for (int64_t row = 0; row < 3 * hd; ++row) {
      EXPECT_EQ(QkPermutedSourceRow(row, hd), HfToGgufQkSourceRow(row, hd)) << row;
    }
  }
}

TEST_F(PeftAdapterTest, NeoxBaseIsNotPermuted) {
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, {}, dir_.path()).ok());
  ModelSpec spec = TinySpec(base_);
  spec.rope_neox = true;
  auto a = ReadPeftAdapter(dir_.path(), spec, {DType::kF32});
  ASSERT_TRUE(a.ok()) << a.status();
  const auto tensors = TinyAdapterTensors(base_, {});
  const TinyTensor& qb = Find(tensors, ::lorad::testing::PeftName(0, "q_proj", true));
  const LoraPair& q = (*a)->weights.layers[0][0];
  for (size_t i = 0; i < qb.values.size(); ++i) ASSERT_EQ(At(q, q.b, i), qb.values[i]);
}

TEST_F(PeftAdapterTest, Fp16StorageHalvesBytesAndRoundsValues) {
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, {}, dir_.path()).ok());
  auto f32 = ReadPeftAdapter(dir_.path(), TinySpec(base_), {DType::kF32});
  auto f16 = ReadPeftAdapter(dir_.path(), TinySpec(base_));
  ASSERT_TRUE(f32.ok() && f16.ok());
  EXPECT_EQ((*f16)->bytes * 2, (*f32)->bytes);
  const LoraPair& h = (*f16)->weights.layers[1][2];
  const LoraPair& f = (*f32)->weights.layers[1][2];
  EXPECT_EQ(h.dtype, DType::kF16);
  for (int i = 0; i < 4 * 64; ++i) {
    const float x = At(f, f.a, i);
    EXPECT_EQ(At(h, h.a, i), Fp16ToFp32(Fp32ToFp16(x)));
  }
}

TEST_F(PeftAdapterTest, ReadsF16AndBf16Files) {
  for (DType dt : {DType::kF16, DType::kBF16}) {
    TinyAdapterOptions o;
    o.dtype = dt;
    ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, dir_.path()).ok());
    auto a = ReadPeftAdapter(dir_.path(), TinySpec(base_), {DType::kF32});
    ASSERT_TRUE(a.ok()) << a.status();
    const auto tensors = TinyAdapterTensors(base_, o);
    const TinyTensor& va = Find(tensors, ::lorad::testing::PeftName(0, "v_proj", false));
    const LoraPair& v = (*a)->weights.layers[0][2];
    const float want = dt == DType::kF16 ? Fp16ToFp32(Fp32ToFp16(va.values[5]))
                                         : Bf16ToFp32(Fp32ToBf16(va.values[5]));
    EXPECT_EQ(At(v, v.a, 5), want);
  }
}

// fp16 files kept in fp16 take a copying fast path: it must give exactly the bits the generic
// path (fp32 values rounded to fp16) gives, q/k row permutation included.
TEST_F(PeftAdapterTest, Fp16FileFastPathEqualsTheGenericPath) {
  TinyAdapterOptions o;
  o.dtype = DType::kF16;
  o.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, dir_.path()).ok());
  auto fast = ReadPeftAdapter(dir_.path(), TinySpec(base_));
  auto generic = ReadPeftAdapter(dir_.path(), TinySpec(base_), {DType::kF32});
  ASSERT_TRUE(fast.ok() && generic.ok()) << fast.status() << generic.status();
  EXPECT_EQ((*fast)->bytes * 2, (*generic)->bytes);
  const ModelSpec spec = TinySpec(base_);
  for (int l = 0; l < spec.num_layers; ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const LoraPair& h = (*fast)->weights.layers[l][t];
      const LoraPair& f = (*generic)->weights.layers[l][t];
      ASSERT_EQ(h.dtype, DType::kF16);
      const auto [in, out] = LoraModuleShapeOf(spec, static_cast<LoraTarget>(t));
      for (int64_t i = 0; i < h.rank * in; ++i) {
        ASSERT_EQ(static_cast<const uint16_t*>(h.a)[i], Fp32ToFp16(At(f, f.a, i))) << l << t;
      }
      for (int64_t i = 0; i < out * h.rank; ++i) {
        ASSERT_EQ(static_cast<const uint16_t*>(h.b)[i], Fp32ToFp16(At(f, f.b, i))) << l << t;
      }
    }
  }
}

TEST_F(PeftAdapterTest, Fp16FileWithNaNIsRefused) {
  TinyAdapterOptions o;
  o.dtype = DType::kF16;
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, dir_.path()).ok());
  // Overwrite the first element of the data section with an fp16 NaN.
  const std::string file = dir_.path() + "/adapter_model.safetensors";
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t header = 0;
  f.read(reinterpret_cast<char*>(&header), 8);
  f.seekp(static_cast<std::streamoff>(8 + header));
  const uint16_t nan = 0x7e00;
  f.write(reinterpret_cast<const char*>(&nan), 2);
  f.close();
  auto a = ReadPeftAdapter(dir_.path(), TinySpec(base_));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("NaN"), std::string::npos) << a.status();
}

TEST_F(PeftAdapterTest, RsLoraScale) {
  TinyAdapterOptions o;
  o.rank = 16;
  o.alpha = 8.0f;
  o.use_rslora = true;
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, dir_.path()).ok());
  auto a = ReadPeftAdapter(dir_.path(), TinySpec(base_));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FLOAT_EQ((*a)->weights.layers[0][0].scale, 2.0f);  // 8 / sqrt(16)
}

TEST_F(PeftAdapterTest, RankAndAlphaPatterns) {
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, {}, dir_.path()).ok());
  PatchConfig(dir_.path(), [](Json& j) {
    j["target_modules"] = {"q_proj", "v_proj", "down_proj"};
    j["rank_pattern"] = Json::object({{"v_proj", 2}, {"layers.1.self_attn.q_proj", 8}});
    j["alpha_pattern"] = Json::object({{"mlp\\.down_proj", 32}});
  });
  std::vector<TinyTensor> ts;
  for (int l = 0; l < 2; ++l) {
    for (auto [m, r] : std::vector<std::pair<std::string, int>>{
             {"q_proj", l == 1 ? 8 : 4}, {"v_proj", 2}, {"down_proj", 4}}) {
      for (TinyTensor& t : ModuleTensors(base_, l, m, r)) ts.push_back(std::move(t));
    }
  }
  WriteTensors(dir_.path(), ts);
  auto a = ReadPeftAdapter(dir_.path(), TinySpec(base_));
  ASSERT_TRUE(a.ok()) << a.status();
  const auto& L = (*a)->weights.layers;
  EXPECT_EQ(L[0][0].rank, 4);
  EXPECT_FLOAT_EQ(L[0][0].scale, 2.0f);
  EXPECT_EQ(L[1][0].rank, 8);
  EXPECT_FLOAT_EQ(L[1][0].scale, 1.0f);
  EXPECT_EQ(L[0][2].rank, 2);
  EXPECT_FLOAT_EQ(L[1][2].scale, 4.0f);
  EXPECT_EQ(L[1][6].rank, 4);
  EXPECT_FLOAT_EQ(L[1][6].scale, 8.0f);
  EXPECT_EQ((*a)->max_rank, 8);
  EXPECT_EQ((*a)->target_modules, (std::vector<std::string>{"q_proj", "v_proj", "down_proj"}));
}

TEST_F(PeftAdapterTest, LayersToTransformAndPattern) {
  TinyAdapterOptions o;
  o.layers_to_transform = {1};
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, dir_.path()).ok());
  for (Json pattern : {Json(nullptr), Json("layers"), Json::array({"h", "layers"})}) {
    PatchConfig(dir_.path(), [&](Json& j) { j["layers_pattern"] = pattern; });
    auto a = ReadPeftAdapter(dir_.path(), TinySpec(base_));
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ((*a)->weights.layers[0][0].rank, 0);
    EXPECT_EQ((*a)->weights.layers[1][0].rank, 4);
  }
  // An int layers_to_transform is one layer; a pattern that matches no key targets nothing.
  PatchConfig(dir_.path(), [](Json& j) {
    j["layers_to_transform"] = 1;
    j["layers_pattern"] = nullptr;
  });
  EXPECT_TRUE(ReadPeftAdapter(dir_.path(), TinySpec(base_)).ok());
  PatchConfig(dir_.path(), [](Json& j) { j["layers_pattern"] = "h"; });
  EXPECT_EQ(ReadPeftAdapter(dir_.path(), TinySpec(base_)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(PeftAdapterTest, FanInFanOutDoesNotTransposeLinearLayers) {
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, {}, dir_.path()).ok());
  auto plain = ReadPeftAdapter(dir_.path(), TinySpec(base_), {DType::kF32});
  PatchConfig(dir_.path(), [](Json& j) { j["fan_in_fan_out"] = true; });
  auto fifo = ReadPeftAdapter(dir_.path(), TinySpec(base_), {DType::kF32});
  ASSERT_TRUE(plain.ok() && fifo.ok()) << fifo.status();
  EXPECT_TRUE((*fifo)->config.fan_in_fan_out);
  const LoraPair& p = (*plain)->weights.layers[0][0];
  const LoraPair& f = (*fifo)->weights.layers[0][0];
  EXPECT_EQ(0, std::memcmp(p.a, f.a, 4 * 64 * 4));
  EXPECT_EQ(0, std::memcmp(p.b, f.b, 64 * 4 * 4));
}

TEST_F(PeftAdapterTest, AllLinearAndRegexTargets) {
  TinyAdapterOptions o;
  o.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, dir_.path()).ok());
  PatchConfig(dir_.path(), [](Json& j) { j["target_modules"] = "all-linear"; });
  auto a = ReadPeftAdapter(dir_.path(), TinySpec(base_));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->target_modules.size(), 7u);

  o.target_modules = {"q_proj", "k_proj"};
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, dir_.path()).ok());
  PatchConfig(dir_.path(), [](Json& j) {
    j["target_modules"] = R"(model\.layers\.\d+\.self_attn\.(q|k)_proj)";
  });
  a = ReadPeftAdapter(dir_.path(), TinySpec(base_));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->target_modules, (std::vector<std::string>{"q_proj", "k_proj"}));
}

TEST_F(PeftAdapterTest, ExcludeModules) {
  TinyAdapterOptions o;
  o.target_modules = {"q_proj"};
  o.layers_to_transform = {0};
  ASSERT_TRUE(WriteTinyPeftAdapter(base_, o, dir_.path()).ok());
  PatchConfig(dir_.path(), [](Json& j) {
    j["layers_to_transform"] = nullptr;
    j["exclude_modules"] = {"model.layers.1.self_attn.q_proj"};
  });
  auto a = ReadPeftAdapter(dir_.path(), TinySpec(base_));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->weights.layers[1][0].rank, 0);
}

}  // namespace
}  // namespace lorad::adapters
