#include "engine/model/hf_config.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/mapped_file.h"
#include "engine/base/status_macros.h"
#include "engine/model/model_weights.h"
#include "nlohmann/json.hpp"

namespace lorad {
namespace {

using json = nlohmann::json;

class ConfigReader {
 public:
  ConfigReader(const json& j, const std::string& path) : j_(j), path_(path) {}

  absl::Status Invalid(const std::string& msg) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ", msg));
  }
  const std::string& path() const { return path_; }
  bool Has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  // Integer field; `fallback` < 0 means required.
  absl::StatusOr<int32_t> Int(const char* key, int64_t fallback = -1) const {
    if (!Has(key)) {
      if (fallback >= 0) return static_cast<int32_t>(fallback);
      return Invalid(absl::StrCat("missing integer field '", key, "'"));
    }
    const json& v = j_[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
      return Invalid(absl::StrCat("field '", key, "' = ", v.dump(), " is not a valid integer"));
    }
    return static_cast<int32_t>(v.get<int64_t>());
  }
  absl::StatusOr<float> Float(const json& obj, const char* key, double fallback) const {
    if (!obj.contains(key) || obj[key].is_null()) return static_cast<float>(fallback);
    if (!obj[key].is_number()) {
      return Invalid(absl::StrCat("field '", key, "' = ", obj[key].dump(), " is not a number"));
    }
    return obj[key].get<float>();
  }
  absl::StatusOr<bool> Bool(const char* key, bool fallback) const {
    if (!Has(key)) return fallback;
    if (!j_[key].is_boolean()) return Invalid(absl::StrCat("field '", key, "' is not a bool"));
    return j_[key].get<bool>();
  }

 private:
  const json& j_;
  const std::string& path_;
};

// RoPE scaling: transformers < 5 writes a top-level "rope_scaling" object; transformers >= 5
// writes "rope_parameters" {rope_type, rope_theta, factor, ...} instead.
absl::Status ReadRopeScaling(const json& j, const ConfigReader& r, ModelSpec* s) {
  const char* key = "rope_scaling";
  if (!j.contains(key) || j[key].is_null()) key = "rope_parameters";
  if (!j.contains(key) || j[key].is_null()) return absl::OkStatus();
  const json& rs = j[key];
  if (!rs.is_object()) return r.Invalid(absl::StrCat(key, " is not an object"));
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    if (rs.contains(key) && rs[key].is_string()) type = rs[key].get<std::string>();
  }
  if (type == "default") return absl::OkStatus();
  if (type != "llama3") {
    return absl::UnimplementedError(absl::StrCat(r.Invalid("").message(), "rope_scaling type '",
                                                 type, "' is not supported (llama3 only)"));
  }
  LORAD_ASSIGN_OR_RETURN(s->rope_scaling_factor, r.Float(rs, "factor", 8.0));
  LORAD_ASSIGN_OR_RETURN(s->rope_low_freq_factor, r.Float(rs, "low_freq_factor", 1.0));
  LORAD_ASSIGN_OR_RETURN(s->rope_high_freq_factor, r.Float(rs, "high_freq_factor", 4.0));
  LORAD_ASSIGN_OR_RETURN(const float orig, r.Float(rs, "original_max_position_embeddings", 8192.0));
  s->rope_original_max_position = static_cast<int32_t>(orig);
  if (s->rope_scaling_factor <= 0 || s->rope_high_freq_factor <= s->rope_low_freq_factor ||
      s->rope_low_freq_factor <= 0 || s->rope_original_max_position <= 0) {
    return r.Invalid("rope_scaling llama3 parameters are inconsistent");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelSpec> ReadHfConfig(const std::string& config_path) {
  LORAD_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(config_path));
  const char* text = reinterpret_cast<const char*>(file->data());
  const json j = json::parse(text, text + file->size(), nullptr, /*allow_exceptions=*/false);
  const ConfigReader r(j, config_path);
  if (j.is_discarded() || !j.is_object()) return r.Invalid("not a JSON object");
  ModelSpec s;
  std::string arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    arch = j["architectures"][0].get<std::string>();
  }
  if (arch == "LlamaForCausalLM") {
    s.architecture = "llama";
  } else if (arch == "MistralForCausalLM") {
    s.architecture = "mistral";
  } else if (arch == "Qwen2ForCausalLM") {
    s.architecture = "qwen2";
    s.rope_neox = true;
  } else {
    return absl::UnimplementedError(absl::StrCat(
        config_path, ": architectures[0] '", arch,
        "' is not supported (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)"));
  }
  if (j.contains("_name_or_path") && j["_name_or_path"].is_string()) {
    s.name = j["_name_or_path"].get<std::string>();
  }
  LORAD_ASSIGN_OR_RETURN(s.vocab_size, r.Int("vocab_size"));
  LORAD_ASSIGN_OR_RETURN(s.hidden_size, r.Int("hidden_size"));
  LORAD_ASSIGN_OR_RETURN(s.intermediate_size, r.Int("intermediate_size"));
  LORAD_ASSIGN_OR_RETURN(s.num_layers, r.Int("num_hidden_layers"));
  LORAD_ASSIGN_OR_RETURN(s.num_heads, r.Int("num_attention_heads"));
  LORAD_ASSIGN_OR_RETURN(s.num_kv_heads, r.Int("num_key_value_heads", s.num_heads));
  LORAD_ASSIGN_OR_RETURN(s.head_dim,
                         r.Int("head_dim", s.num_heads > 0 ? s.hidden_size / s.num_heads : 0));
  LORAD_ASSIGN_OR_RETURN(s.max_position, r.Int("max_position_embeddings", 2048));
  LORAD_ASSIGN_OR_RETURN(s.rms_norm_eps, r.Float(j, "rms_norm_eps", 1e-6));
  // rope_theta: top level (transformers < 5) or inside rope_parameters (transformers >= 5).
  const bool nested_theta = j.contains("rope_parameters") && j["rope_parameters"].is_object() &&
                            j["rope_parameters"].contains("rope_theta");
  LORAD_ASSIGN_OR_RETURN(s.rope_theta,
                         r.Float(nested_theta ? j["rope_parameters"] : j, "rope_theta", 10000.0));
  LORAD_ASSIGN_OR_RETURN(s.tied_embeddings, r.Bool("tie_word_embeddings", false));
  LORAD_ASSIGN_OR_RETURN(const bool mlp_bias, r.Bool("mlp_bias", false));
  if (mlp_bias) return absl::UnimplementedError(config_path + ": mlp_bias is not supported");
  LORAD_ASSIGN_OR_RETURN(const bool sliding, r.Bool("use_sliding_window", false));
  if (sliding && s.architecture == "qwen2") {
    return absl::UnimplementedError(config_path + ": sliding-window attention is not supported");
  }
  LORAD_RETURN_IF_ERROR(ReadRopeScaling(j, r, &s));
  LORAD_RETURN_IF_ERROR(ValidateModelSpec(s, config_path));
  return s;
}

}  // namespace lorad
