// The PEFT adapter fixture writes what PEFT writes: adapter_config.json fields and
// lora_A [r, in] / lora_B [out, r] tensors under PEFT names.
#include "tests/fixtures/tiny_adapter.h"
#include "engine/base/mapped_file.h"
#include "engine/base/safetensors.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fixtures/temp_dir.h"

namespace lorad {
namespace {

using ::lorad::testing::ScopedTempDir;
using ::lorad::testing::TinyAdapterOptions;
using ::lorad::testing::TinyModelOptions;

TEST(TinyAdapterTest, WritesPeftConfigAndTensors) {
  ScopedTempDir dir;
  TinyModelOptions base;
  TinyAdapterOptions o;
  o.rank = 8;
  o.alpha = 16;
  o.use_rslora = true;
  o.target_modules = {"q_proj", "k_proj", "o_proj", "down_proj"};
  o.layers_to_transform = {1};
  o.dtype = DType::kBF16;
  ASSERT_TRUE(WriteTinyPeftAdapter(base, o, dir.path()).ok());

  auto cfg_file = MappedFile::Open(dir.File("adapter_config.json"));
  ASSERT_TRUE(cfg_file.ok()) << cfg_file.status();
  const char* text = reinterpret_cast<const char*>((*cfg_file)->data());
  const auto cfg = nlohmann::json::parse(text, text + (*cfg_file)->size());
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 8);
  EXPECT_EQ(cfg["lora_alpha"], 16.0);
  EXPECT_EQ(cfg["bias"], "none");
  EXPECT_EQ(cfg["use_rslora"], true);
  EXPECT_EQ(cfg["use_dora"], false);
  EXPECT_EQ(cfg["target_modules"].size(), 4u);
  EXPECT_EQ(cfg["layers_to_transform"], nlohmann::json::array({1}));
  EXPECT_EQ(cfg["base_model_name_or_path"], "tiny-llama");

  auto st = SafetensorsFile::Open(dir.File("adapter_model.safetensors"));
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_EQ((*st)->tensors().size(), 8u);  // 4 modules x (A, B), layer 1 only
  const std::string p = "base_model.model.model.layers.1.";
  const SafetensorsTensor* qa = (*st)->Find(p + "self_attn.q_proj.lora_A.weight");
  const SafetensorsTensor* kb = (*st)->Find(p + "self_attn.k_proj.lora_B.weight");
  const SafetensorsTensor* da = (*st)->Find(p + "mlp.down_proj.lora_A.weight");
  const SafetensorsTensor* ob = (*st)->Find(p + "self_attn.o_proj.lora_B.weight");
  ASSERT_TRUE(qa && kb && da && ob);
  EXPECT_EQ(qa->shape, (std::vector<int64_t>{8, 64}));
  EXPECT_EQ(kb->shape, (std::vector<int64_t>{32, 8}));
  EXPECT_EQ(da->shape, (std::vector<int64_t>{8, 128}));
  EXPECT_EQ(ob->shape, (std::vector<int64_t>{64, 8}));
  EXPECT_EQ(kb->dtype, DType::kBF16);
  EXPECT_EQ((*st)->Find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"), nullptr);
  // B is random, not PEFT's zero init.
  const auto tensors = TinyAdapterTensors(base, o);
  bool nonzero_b = false;
  for (const auto& t : tensors) {
    if (t.name.find("lora_B") == std::string::npos) continue;
    for (float v : t.values) nonzero_b |= v != 0.0f;
  }
  EXPECT_TRUE(nonzero_b);
}

TEST(TinyAdapterTest, RejectsBadOptions) {
  ScopedTempDir dir;
  TinyAdapterOptions o;
  o.target_modules = {"lm_head"};
  EXPECT_EQ(WriteTinyPeftAdapter(TinyModelOptions{}, o, dir.path()).code(),
            absl::StatusCode::kInvalidArgument);
  o.target_modules = {"q_proj"};
  o.layers_to_transform = {2};
  EXPECT_EQ(WriteTinyPeftAdapter(TinyModelOptions{}, o, dir.path()).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace lorad
