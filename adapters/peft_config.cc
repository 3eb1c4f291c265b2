#include "adapters/peft_config.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace lorad::adapters {
namespace {

using Json = nlohmann::ordered_json;

absl::Status Bad(const std::string& file, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", what));
}
absl::Status Refuse(const std::string& file, absl::string_view what) {
  return absl::FailedPreconditionError(absl::StrCat(file, ": ", what, " is not supported"));
}

// Null, false, "", [] and {} all mean "feature off".
bool IsOff(const Json& v) {
  return v.is_null() || (v.is_boolean() && !v.get<bool>()) ||
         (v.is_string() && v.get<std::string>().empty()) ||
         ((v.is_array() || v.is_object()) && v.empty());
}

absl::StatusOr<int32_t> PositiveInt(const Json& v, const std::string& file,
                                    const std::string& field) {
  if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (1 << 20)) {
    return Bad(file, absl::StrCat("'", field, "' must be a positive integer, got ", v.dump()));
  }
  return static_cast<int32_t>(v.get<int64_t>());
}

absl::StatusOr<float> FiniteNumber(const Json& v, const std::string& file,
                                   const std::string& field) {
  if (!v.is_number() || !std::isfinite(v.get<double>())) {
    return Bad(file, absl::StrCat("'", field, "' must be a finite number, got ", v.dump()));
  }
  return v.get<float>();
}

// A string or a list of strings (the two shapes PEFT accepts for module selectors).
absl::Status ModuleSelector(const Json& v, const std::string& file, const std::string& field,
                            bool* is_regex, std::string* regex, std::vector<std::string>* list) {
  if (v.is_null()) return absl::OkStatus();
  if (v.is_string()) {
    *is_regex = true;
    *regex = v.get<std::string>();
    return absl::OkStatus();
  }
  if (!v.is_array()) return Bad(file, absl::StrCat("'", field, "' must be a string or a list"));
  for (const Json& e : v) {
    if (!e.is_string() || e.get<std::string>().empty()) {
      return Bad(file, absl::StrCat("'", field, "' entries must be non-empty strings"));
    }
    list->push_back(e.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status CheckFeatures(const Json& j, const std::string& file) {
  if (j.contains("peft_type") && !(j["peft_type"].is_string() && j["peft_type"] == "LORA")) {
    return Refuse(file, absl::StrCat("peft_type ", j["peft_type"].dump(), " (only LORA)"));
  }
  if (j.contains("bias") && !(j["bias"].is_string() && j["bias"] == "none")) {
    return Refuse(file, absl::StrCat("bias ", j["bias"].dump(), " (bias training; only \"none\")"));
  }
  // Each of these changes the model beyond W + scale * B * A.
  static constexpr const char* kRefused[][2] = {
      {"use_dora", "DoRA (use_dora)"},
      {"lora_bias", "lora_bias"},
      {"modules_to_save", "modules_to_save"},
      {"trainable_token_indices", "trainable_token_indices"},
      {"layer_replication", "layer_replication"},
      {"target_parameters", "target_parameters"},
      {"megatron_config", "megatron_config"},
      {"use_qalora", "QA-LoRA (use_qalora)"},
      {"alora_invocation_tokens", "activated LoRA (alora_invocation_tokens)"},
  };
  for (const auto& [key, name] : kRefused) {
    if (j.contains(key) && !IsOff(j[key])) return Refuse(file, name);
  }
  return absl::OkStatus();
}

absl::Status ParseLayers(const Json& j, const std::string& file, PeftConfig* c) {
  if (j.contains("layers_to_transform") && !j["layers_to_transform"].is_null()) {
    const Json& v = j["layers_to_transform"];
    const Json list = v.is_array() ? v : Json::array({v});
    for (const Json& e : list) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > (1 << 20)) {
        return Bad(file, absl::StrCat("'layers_to_transform' has invalid entry ", e.dump()));
      }
      c->layers_to_transform.push_back(static_cast<int32_t>(e.get<int64_t>()));
    }
  }
  if (j.contains("layers_pattern") && !j["layers_pattern"].is_null()) {
    const Json& v = j["layers_pattern"];
    const Json list = v.is_array() ? v : Json::array({v});
    for (const Json& e : list) {
      if (!e.is_string()) return Bad(file, "'layers_pattern' must be a string or list of strings");
      if (!e.get<std::string>().empty()) c->layers_pattern.push_back(e.get<std::string>());
    }
  }
  return absl::OkStatus();
}

absl::Status ParsePatterns(const Json& j, const std::string& file, PeftConfig* c) {
  for (const char* field : {"rank_pattern", "alpha_pattern"}) {
    if (!j.contains(field) || j[field].is_null()) continue;
    if (!j[field].is_object()) return Bad(file, absl::StrCat("'", field, "' must be an object"));
    for (const auto& [key, value] : j[field].items()) {
      const std::string name = absl::StrCat(field, "[\"", key, "\"]");
      if (key.empty()) return Bad(file, absl::StrCat("'", field, "' has an empty key"));
      if (field[0] == 'r') {
        LORAD_ASSIGN_OR_RETURN(int32_t r, PositiveInt(value, file, name));
        c->rank_pattern.emplace_back(key, r);
      } else {
        LORAD_ASSIGN_OR_RETURN(float a, FiniteNumber(value, file, name));
        c->alpha_pattern.emplace_back(key, a);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PeftConfig> ParsePeftConfig(absl::string_view text, const std::string& file) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(file, "not valid JSON");
  if (!j.is_object()) return Bad(file, "must hold a JSON object");
  LORAD_RETURN_IF_ERROR(CheckFeatures(j, file));
  PeftConfig c;
  if (j.contains("r")) {
    LORAD_ASSIGN_OR_RETURN(c.r, PositiveInt(j["r"], file, "r"));
  }
  if (j.contains("lora_alpha")) {
    LORAD_ASSIGN_OR_RETURN(c.lora_alpha, FiniteNumber(j["lora_alpha"], file, "lora_alpha"));
  }
  for (auto [field, out] :
       {std::pair{"use_rslora", &c.use_rslora}, std::pair{"fan_in_fan_out", &c.fan_in_fan_out}}) {
    if (!j.contains(field) || j[field].is_null()) continue;
    if (!j[field].is_boolean()) return Bad(file, absl::StrCat("'", field, "' must be a boolean"));
    *out = j[field].get<bool>();
  }
  if (!j.contains("target_modules") || IsOff(j["target_modules"])) {
    return Bad(file, "'target_modules' is missing or empty");
  }
  LORAD_RETURN_IF_ERROR(ModuleSelector(j["target_modules"], file, "target_modules",
                                       &c.target_is_regex, &c.target_regex, &c.target_list));
  if (j.contains("exclude_modules")) {
    LORAD_RETURN_IF_ERROR(ModuleSelector(j["exclude_modules"], file, "exclude_modules",
                                         &c.exclude_is_regex, &c.exclude_regex, &c.exclude_list));
  }
  LORAD_RETURN_IF_ERROR(ParseLayers(j, file, &c));
  LORAD_RETURN_IF_ERROR(ParsePatterns(j, file, &c));
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string()) {
    c.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
  }
  return c;
}

}  // namespace lorad::adapters
