// Hugging Face config.json -> ModelSpec for LlamaForCausalLM, MistralForCausalLM and
// Qwen2ForCausalLM, including tie_word_embeddings and Llama-3 rope_scaling.
// Thread-safety: stateless functions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/base/model_spec.h"

namespace lorad {

// Reads and checks `config_path`. INVALID_ARGUMENT (naming the file and field) for malformed
// JSON or a missing/mistyped field; UNIMPLEMENTED for another architecture, rope_scaling other
// than llama3, mlp_bias, or Qwen2 sliding-window attention. spec.qkv_bias is left false (the
// loader sets it from the tensors present); spec.rope_neox is true for Qwen2 only.
absl::StatusOr<ModelSpec> ReadHfConfig(const std::string& config_path);

}  // namespace lorad
