// adapter_config.json of a PEFT LoRA adapter, parsed and checked for features lorad serves.
// Only plain LoRA on the seven Llama projections is accepted; every other PEFT feature that
// changes the model (DoRA, modules_to_save, bias training, ...) is refused, never ignored.
// Thread-safety: plain data and a stateless function.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lorad::adapters {

struct PeftConfig {
  int32_t r = 8;            // default rank (PEFT's default when absent)
  float lora_alpha = 8.0f;  // default alpha (PEFT's default when absent)
  bool use_rslora = false;  // scale alpha / sqrt(r) instead of alpha / r
  bool fan_in_fan_out = false;
  // target_modules: either a list of names (a module matches when its key equals a name or
  // ends with "." + name) or one regex that must match the whole key ("all-linear" = every
  // projection). Keys look like "model.layers.3.self_attn.q_proj".
  bool target_is_regex = false;
  std::string target_regex;
  std::vector<std::string> target_list;
  // exclude_modules, same two forms; empty = nothing excluded.
  bool exclude_is_regex = false;
  std::string exclude_regex;
  std::vector<std::string> exclude_list;
  // layers_to_transform (empty = all layers) and layers_pattern (empty = PEFT's default).
  std::vector<int32_t> layers_to_transform;
  std::vector<std::string> layers_pattern;
  // rank_pattern / alpha_pattern in file order: the first key that matches a module wins.
  std::vector<std::pair<std::string, int32_t>> rank_pattern;
  std::vector<std::pair<std::string, float>> alpha_pattern;
  std::string base_model_name_or_path;
};

// Parses the text of adapter_config.json. `file` names the file in messages.
// INVALID_ARGUMENT: bad JSON or a field of the wrong type/range (naming the field).
// FAILED_PRECONDITION: a feature lorad does not serve, naming it: peft_type other than LORA,
// use_dora, bias other than "none", lora_bias, modules_to_save, trainable_token_indices,
// layer_replication, target_parameters, megatron_config, use_qalora, alora_invocation_tokens.
absl::StatusOr<PeftConfig> ParsePeftConfig(absl::string_view text, const std::string& file);

}  // namespace lorad::adapters
