// Helpers for adapter tests: the ModelSpec of a tiny test model, and writing PEFT directories
// with arbitrary configs and tensors (to build both valid and broken adapters).
#pragma once

#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/model_spec.h"
#include "engine/base/safetensors_writer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fixtures/temp_dir.h"
#include "tests/fixtures/tiny_adapter.h"
#include "tests/fixtures/tiny_model.h"

namespace lorad::testing {

inline ModelSpec TinySpec(const TinyModelOptions& o) { return TinyModelSpec(o); }

// Rewrites `dir`/adapter_config.json through `edit`.
inline void PatchConfig(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  const std::string path = dir + "/adapter_config.json";
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in);
  edit(j);
  ASSERT_TRUE(WriteBytes(path, j.dump(2)));
}

// Rewrites `dir`/adapter_model.safetensors with `tensors` in `dtype`.
inline void WriteTensors(const std::string& dir, const std::vector<TinyTensor>& tensors,
                         DType dtype = DType::kF32) {
  SafetensorsWriter w;
  for (const TinyTensor& t : tensors) {
    ASSERT_TRUE(w.AddFromF32(t.name, dtype, t.shape, t.values.data()).ok()) << t.name;
  }
  ASSERT_TRUE(w.Write(dir + "/adapter_model.safetensors").ok());
}

// PEFT tensor name of a module's A or B.
inline std::string PeftName(int layer, const std::string& module, bool b) {
  const bool attn =
      module == "q_proj" || module == "k_proj" || module == "v_proj" || module == "o_proj";
  return absl::StrCat("base_model.model.model.layers.", layer, ".", attn ? "self_attn." : "mlp.",
                      module, b ? ".lora_B.weight" : ".lora_A.weight");
}

// Random A [rank, in] and B [out, rank] for one module.
inline std::vector<TinyTensor> ModuleTensors(const TinyModelOptions& base, int layer,
                                             const std::string& module, int rank,
                                             uint64_t seed = 3) {
  const auto [in, out] = TinyModuleShape(base, module);
  const std::string a = PeftName(layer, module, false), b = PeftName(layer, module, true);
  return {TinyTensor{a, {rank, in}, TinyRandomNormal(seed, a, rank * in, 0.1f)},
          TinyTensor{b, {out, rank}, TinyRandomNormal(seed, b, out * rank, 0.1f)}};
}

}  // namespace lorad::testing
