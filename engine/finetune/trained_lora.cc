#include "engine/finetune/trained_lora.h"

#include "absl/strings/str_cat.h"
#include "engine/base/atomic_file.h"
#include "engine/base/safetensors_writer.h"
#include "engine/base/status_macros.h"
#include "engine/model/model_weights.h"
#include "nlohmann/json.hpp"

namespace lorad::finetune {
absl::Status WritePeftAdapter(const std::string& dir, const TrainedLora& lora,
                              const ModelSpec& spec, const std::string& base_model_name) {
  if (static_cast<int32_t>(lora.layers.size()) != spec.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("adapter has ", lora.layers.size(), " layers, the base ", spec.num_layers));
  }
  SafetensorsWriter writer;
  std::vector<std::string> modules;
  for (int t = 0; t < kNumLoraTargets; ++t) {
    const auto target = static_cast<LoraTarget>(t);
    const LoraModuleShape shape = LoraModuleShapeOf(spec, target);
    bool used = false;
    for (int32_t l = 0; l < spec.num_layers; ++l) {
      const TrainedLoraPair& p = lora.layers[l][t];
      if (p.rank == 0) continue;
      used = true;
      if (p.a.size() != static_cast<size_t>(p.rank * shape.in) ||
          p.b.size() != static_cast<size_t>(p.rank * shape.out)) {
        return absl::InvalidArgumentError(absl::StrCat("layer ", l, " ", LoraTargetName(target),
                                                       ": A/B sizes do not match rank ", p.rank));
      }
      // Engine q/k rows are in llama.cpp's order when the base uses adjacent-pair RoPE; PEFT
      // files hold Hugging Face's order.
      std::vector<float> b = p.b;
      if (!spec.rope_neox && (target == LoraTarget::kQ || target == LoraTarget::kK)) {
        for (int64_t r = 0; r < shape.out; ++r) {
          const int64_t hf_row = HfToGgufQkSourceRow(r, spec.head_dim);
          std::copy_n(p.b.data() + r * p.rank, p.rank, b.data() + hf_row * p.rank);
        }
      }
      const std::string prefix = "base_model.model." + LoraModuleKey(l, target);
      LORAD_RETURN_IF_ERROR(writer.AddFromF32(absl::StrCat(prefix, ".lora_A.weight"), DType::kF32,
                                              {p.rank, shape.in}, p.a.data()));
      LORAD_RETURN_IF_ERROR(writer.AddFromF32(absl::StrCat(prefix, ".lora_B.weight"), DType::kF32,
                                              {shape.out, p.rank}, b.data()));
    }
    if (used) modules.push_back(LoraTargetName(target));
  }
  if (modules.empty()) return absl::InvalidArgumentError("adapter adapts no module");
  writer.SetMetadata("format", "pt");
  nlohmann::json config = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model_name},
      {"r", lora.rank},
      {"lora_alpha", lora.alpha},
      {"lora_dropout", lora.dropout},
      {"target_modules", modules},
      {"bias", "none"},
      {"use_rslora", lora.use_rslora},
      {"use_dora", false},
      {"fan_in_fan_out", false},
      {"init_lora_weights", true},
      {"inference_mode", true},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
  };
  LORAD_RETURN_IF_ERROR(writer.Write(absl::StrCat(dir, "/adapter_model.safetensors")));
  const std::string text = config.dump(2) + "\n";
  return WriteFileAtomically(absl::StrCat(dir, "/adapter_config.json"), {text});
}

}  // namespace lorad::finetune
