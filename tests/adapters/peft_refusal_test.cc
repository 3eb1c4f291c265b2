// Every adapter lorad must refuse, with its status code and a message naming the problem.
#include <cmath>
#include <fstream>
#include <limits>

#include "adapters/peft_adapter.h"
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
using ::lorad::testing::WriteBytes;
using ::lorad::testing::WriteTensors;
using Json = nlohmann::json;

struct RefusalCase {
  std::string name;
  std::function<void(const TinyModelOptions&, const std::string& dir)> make;
  absl::StatusCode code;
  std::string message;  // substring of the status message
};

void Plain(const TinyModelOptions& base, const std::string& dir) {
  ASSERT_TRUE(WriteTinyPeftAdapter(base, TinyAdapterOptions{}, dir).ok());
}
auto Config(std::function<void(Json&)> edit) {
  return [edit](const TinyModelOptions& base, const std::string& dir) {
    Plain(base, dir);
    PatchConfig(dir, edit);
  };
}
// The plain adapter's tensors plus `extra`, or with one value of one tensor replaced.
auto Tensors(std::vector<TinyTensor> extra, float poison = 0.0f) {
  return [extra, poison](const TinyModelOptions& base, const std::string& dir) {
    Plain(base, dir);
    auto ts = TinyAdapterTensors(base, TinyAdapterOptions{});
    if (poison != 0.0f) ts[3].values[7] = poison;
    for (const TinyTensor& t : extra) ts.push_back(t);
    WriteTensors(dir, ts);
  };
}
// An adapter written for another base shape.
auto OtherBase(std::function<void(TinyModelOptions&)> edit) {
  return [edit](const TinyModelOptions& base, const std::string& dir) {
    TinyModelOptions other = base;
    edit(other);
    ASSERT_TRUE(WriteTinyPeftAdapter(other, TinyAdapterOptions{}, dir).ok());
  };
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();
constexpr auto kFP = absl::StatusCode::kFailedPrecondition;
constexpr auto kIA = absl::StatusCode::kInvalidArgument;

std::vector<RefusalCase> Cases() {
  const TinyTensor vec{"x", {1, 1}, {1.0f}};
  auto named = [&](std::string name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return TinyTensor{std::move(name), shape, std::vector<float>(n, 0.01f)};
  };
  return {
      {"DoRA", Config([](Json& j) { j["use_dora"] = true; }), kFP, "DoRA"},
      {"DoRAMagnitude",
       Tensors(
           {named("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", {64})}),
       kFP, "DoRA"},
      {"ModulesToSave", Config([](Json& j) { j["modules_to_save"] = {"lm_head"}; }), kFP,
       "modules_to_save"},
      {"ModulesToSaveWeight", Tensors({named("base_model.model.lm_head.weight", {288, 64})}), kFP,
       "modules_to_save"},
      {"BiasAll", Config([](Json& j) { j["bias"] = "all"; }), kFP, "bias"},
      {"LoraBiasTensor",
       Tensors({named("base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias", {64})}), kFP,
       "lora_bias"},
      {"PeftType", Config([](Json& j) { j["peft_type"] = "IA3"; }), kFP, "peft_type"},
      {"LmHeadTarget", Config([](Json& j) {
         j["target_modules"] = {"q_proj", "v_proj", "lm_head"};
       }),
       kFP, "lm_head"},
      {"LmHeadTensor", Tensors({named("base_model.model.lm_head.lora_A.weight", {4, 64})}), kFP,
       "lm_head"},
      {"EmbedTensor",
       Tensors({named("base_model.model.model.embed_tokens.lora_embedding_A", {4, 288})}), kFP,
       "embed_tokens"},
      {"UnknownModule", Config([](Json& j) {
         j["target_modules"] = {"q_proj", "c_attn"};
       }),
       kFP, "c_attn"},
      {"LayerOutOfRange", Config([](Json& j) {
         j["layers_to_transform"] = {0, 5};
       }),
       kFP, "layers_to_transform"},
      {"WrongHidden", OtherBase([](TinyModelOptions& o) { o.hidden = 128; }), kFP,
       "in_features 64"},
      {"WrongKvHeads", OtherBase([](TinyModelOptions& o) { o.kv_heads = 4; }), kFP,
       "out_features 32"},
      {"MoreLayers", OtherBase([](TinyModelOptions& o) { o.num_layers = 4; }), kFP,
       "base model has 2 layers"},
      {"FewerLayers", OtherBase([](TinyModelOptions& o) { o.num_layers = 1; }), kFP,
       "LoRA weights for 1 layers"},
      {"NaN", Tensors({}, kNaN), kIA, "NaN"},
      {"Inf", Tensors({}, kInf), kIA, "an infinite value"},
      {"RankDisagrees", Config([](Json& j) { j["r"] = 8; }), kIA, "r = 8"},
      {"UntargetedTensor", Tensors(ModuleTensors(TinyModelOptions{}, 0, "up_proj", 4)), kIA,
       "does not target"},
      {"StrangeTensor", Tensors({named("foo.bar", {2, 2})}), kIA, "'foo.bar'"},
      {"BadRegex", Config([](Json& j) {
         j["rank_pattern"] = Json::object({{"q_proj(", 2}});
       }),
       kIA, "rank_pattern key 'q_proj(' is not a valid regex"},
      {"BadLayersPattern", Config([](Json& j) {
         j["layers_to_transform"] = {0};
         j["layers_pattern"] = "(";
       }),
       kIA, "regex"},
      {"BadTargetRegex", Config([](Json& j) { j["target_modules"] = "q_proj["; }), kIA, "regex"},
      {"BadRank", Config([](Json& j) { j["r"] = -1; }), kIA, "'r'"},
      {"NoTargets", Config([](Json& j) { j["target_modules"] = Json::array(); }), kIA,
       "target_modules"},
      {"BadJson",
       [](const TinyModelOptions& b, const std::string& d) {
         Plain(b, d);
         ASSERT_TRUE(WriteBytes(d + "/adapter_config.json", "{\"r\": 4,"));
       },
       kIA, "adapter_config.json: not valid JSON"},
      {"TruncatedSafetensors",
       [](const TinyModelOptions& b, const std::string& d) {
         Plain(b, d);
         const std::string p = d + "/adapter_model.safetensors";
         std::ifstream in(p, std::ios::binary);
         std::string bytes((std::istreambuf_iterator<char>(in)), {});
         ASSERT_TRUE(WriteBytes(p, bytes.substr(0, bytes.size() - 100)));
       },
       kIA, "adapter_model.safetensors"},
      {"MissingWeights",
       [](const TinyModelOptions& b, const std::string& d) {
         Plain(b, d);
         std::remove((d + "/adapter_model.safetensors").c_str());
       },
       absl::StatusCode::kNotFound, "adapter_model.safetensors"},
  };
}

class PeftRefusalTest : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(PeftRefusalTest, RefusedWithCodeAndMessage) {
  const RefusalCase& c = GetParam();
  TinyModelOptions base;
  ScopedTempDir dir;
  c.make(base, dir.path());
  auto a = ReadPeftAdapter(dir.path(), TinySpec(base));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), c.code) << a.status();
  EXPECT_NE(a.status().message().find(c.message), absl::string_view::npos) << a.status();
}

INSTANTIATE_TEST_SUITE_P(All, PeftRefusalTest, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace lorad::adapters
