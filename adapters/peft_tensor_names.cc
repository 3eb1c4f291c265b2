#include "adapters/peft_tensor_names.h"

#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/peft_targets.h"

namespace lorad::adapters {
namespace {

absl::Status Refuse(const std::string& file, const std::string& name, absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat(file, ": tensor '", name, "': ", what, " is not supported"));
}

}  // namespace

absl::StatusOr<LoraTensorName> ParseLoraTensorName(const std::string& name,
                                                   const std::string& file) {
  static const std::regex kLayer(
      R"(base_model\.model\.model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_(A|B)\.(weight|bias))");
  static const std::regex kOtherLora(R"(base_model\.model\.(.+)\.lora_(A|B)\.weight)");
  if (absl::StrContains(name, "lora_magnitude_vector")) return Refuse(file, name, "DoRA");
  if (absl::StrContains(name, "lora_embedding_")) {
    return Refuse(file, name, "LoRA on the token embedding (embed_tokens)");
  }
  if (absl::StrContains(name, "modules_to_save") || absl::StrContains(name, "trainable_tokens")) {
    return Refuse(file, name, "a fully trained module (modules_to_save)");
  }
  std::smatch m;
  if (std::regex_match(name, m, kLayer)) {
    if (m[5] == "bias") return Refuse(file, name, "a LoRA bias (lora_bias)");
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const auto target = static_cast<LoraTarget>(t);
      if (m[3] == LoraTargetName(target) && m[2] == LoraTargetBlock(target)) {
        if (m[1].length() > 6) break;
        return LoraTensorName{std::stoi(m[1].str()), target, m[4] == "B"};
      }
    }
    return Refuse(file, name,
                  absl::StrCat("LoRA on module '", m[2].str(), ".", m[3].str(),
                               "' (lorad adapts q/k/v/o/gate/up/down projections)"));
  }
  if (std::regex_match(name, m, kOtherLora)) {
    return Refuse(file, name,
                  absl::StrCat("LoRA on module '", m[1].str(),
                               "' (lorad adapts q/k/v/o/gate/up/down projections)"));
  }
  if (absl::StartsWith(name, "base_model.model.") && !absl::StrContains(name, "lora_")) {
    return Refuse(file, name, "a full module weight (modules_to_save)");
  }
  return absl::InvalidArgumentError(
      absl::StrCat(file, ": tensor '", name, "' is not a PEFT LoRA tensor name"));
}

}  // namespace lorad::adapters
