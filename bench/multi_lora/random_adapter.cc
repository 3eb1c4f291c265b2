#include "bench/multi_lora/random_adapter.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "absl/strings/str_cat.h"
#include "adapters/peft_adapter.h"
#include "adapters/peft_targets.h"
#include "engine/base/atomic_file.h"
#include "engine/base/safetensors_writer.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace lorad::bench {

absl::Status WriteRandomAdapter(const ModelSpec& base, const RandomAdapterOptions& o,
                                const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  std::mt19937_64 rng(o.seed);
  SafetensorsWriter st;
  for (int32_t l = 0; l < base.num_layers; ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const auto target = static_cast<LoraTarget>(t);
      if (std::find(o.modules.begin(), o.modules.end(), LoraTargetName(target)) ==
          o.modules.end()) {
        continue;
      }
      const auto [in, out] = LoraModuleShapeOf(base, target);
      std::uniform_real_distribution<float> ua(-1.0f / std::sqrt(float(in)),
                                               1.0f / std::sqrt(float(in)));
      std::uniform_real_distribution<float> ub(-o.b_scale, o.b_scale);
      std::vector<float> a(static_cast<size_t>(o.rank * in)), b(static_cast<size_t>(out * o.rank));
      for (float& x : a) x = ua(rng);
      for (float& x : b) x = ub(rng);
      LORAD_RETURN_IF_ERROR(st.AddFromF32(
          absl::StrCat("base_model.model.", LoraModuleKey(l, target), ".lora_A.weight"),
          DType::kF16, {o.rank, in}, a.data()));
      LORAD_RETURN_IF_ERROR(st.AddFromF32(
          absl::StrCat("base_model.model.", LoraModuleKey(l, target), ".lora_B.weight"),
          DType::kF16, {out, o.rank}, b.data()));
    }
  }
  LORAD_RETURN_IF_ERROR(st.Write(dir + "/" + adapters::kPeftWeightsFile));
  nlohmann::ordered_json c;
  c["peft_type"] = "LORA";
  c["r"] = o.rank;
  c["lora_alpha"] = o.alpha;
  c["target_modules"] = o.modules;
  c["bias"] = "none";
  c["use_rslora"] = false;
  c["use_dora"] = false;
  c["modules_to_save"] = nullptr;
  return WriteFileAtomically(dir + "/" + adapters::kPeftConfigFile, {c.dump(2)});
}

}  // namespace lorad::bench
