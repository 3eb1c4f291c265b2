#include "adapters/peft_targets.h"

#include <algorithm>
#include <cmath>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace lorad::adapters {
namespace {

// Modules of a Llama model that PEFT could target but lorad does not adapt.
constexpr const char* kUnsupportedKeys[] = {"lm_head", "model.embed_tokens"};

// Compiles `pattern`; errors quote `shown` (what the user wrote) under `field`.
absl::StatusOr<std::regex> Compile(const std::string& pattern, const std::string& file,
                                   const std::string& field, const std::string& shown) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": ", field, " '", shown, "' is not a valid regex: ", e.what()));
  }
}

// PEFT: key == name or key ends with "." + name.
bool ListMatches(const std::vector<std::string>& names, const std::string& key) {
  for (const std::string& n : names) {
    if (key == n || absl::EndsWith(key, absl::StrCat(".", n))) return true;
  }
  return false;
}

// A compiled target_modules / exclude_modules selector.
struct Selector {
  bool is_regex = false;
  bool all_linear = false;
  std::regex regex;
  const std::vector<std::string>* list = nullptr;

  bool Matches(const std::string& key) const {
    if (all_linear) return key != "lm_head" && absl::StartsWith(key, "model.layers.");
    if (is_regex) return std::regex_match(key, regex);
    return ListMatches(*list, key);
  }
};

absl::StatusOr<Selector> MakeSelector(bool is_regex, const std::string& regex,
                                      const std::vector<std::string>& list, const std::string& file,
                                      const std::string& field) {
  Selector s;
  s.is_regex = is_regex;
  s.list = &list;
  if (is_regex && regex == "all-linear" && field == "target_modules") {
    s.all_linear = true;
  } else if (is_regex) {
    LORAD_ASSIGN_OR_RETURN(s.regex, Compile(regex, file, field, regex));
  }
  return s;
}

// The layer index PEFT reads from `key` for layers_to_transform, or -1.
int32_t LayerIndex(const std::string& key, const std::vector<std::string>& patterns) {
  std::smatch m;
  if (patterns.empty()) {
    static const std::regex kDefault(R"(.*\.[^.]*\.(\d+)\..*)");
    if (std::regex_match(key, m, kDefault)) return std::stoi(m[1].str());
    return -1;
  }
  for (const std::string& p : patterns) {
    const std::regex re(absl::StrCat(".*\\.", p, "\\.(\\d+)\\..*"));
    if (std::regex_match(key, m, re)) return std::stoi(m[1].str());
  }
  return -1;
}

template <typename T>
struct Pattern {
  std::string key;
  std::regex regex;
  T value;
};

// PEFT's get_pattern_key: an exact key first, else the first key K with (.*\.)?(K)$ matching.
template <typename T>
T Lookup(const std::vector<Pattern<T>>& patterns, const std::string& key, T fallback) {
  for (const auto& p : patterns) {
    if (p.key == key) return p.value;
  }
  for (const auto& p : patterns) {
    if (std::regex_match(key, p.regex)) return p.value;
  }
  return fallback;
}

template <typename T>
absl::StatusOr<std::vector<Pattern<T>>> CompilePatterns(
    const std::vector<std::pair<std::string, T>>& in, const std::string& file,
    const std::string& field) {
  std::vector<Pattern<T>> out;
  for (const auto& [key, value] : in) {
    LORAD_ASSIGN_OR_RETURN(std::regex re, Compile(absl::StrCat("(.*\\.)?(", key, ")"), file,
                                                  absl::StrCat(field, " key"), key));
    out.push_back({key, std::move(re), value});
  }
  return out;
}

absl::Status CheckTargetsExist(const PeftConfig& c, const Selector& target, int32_t num_layers,
                               const std::string& file) {
  for (const char* key : kUnsupportedKeys) {
    if ((c.target_is_regex && !target.all_linear && target.Matches(key)) ||
        (!c.target_is_regex && ListMatches(c.target_list, key))) {
      return absl::FailedPreconditionError(
          absl::StrCat(file, ": target_modules includes '", key,
                       "'; lorad adapts only q/k/v/o/gate/up/down projections"));
    }
  }
  for (const std::string& name : c.target_list) {
    bool found = false;
    for (int32_t l = 0; l < num_layers && !found; ++l) {
      for (int t = 0; t < kNumLoraTargets && !found; ++t) {
        found = ListMatches({name}, LoraModuleKey(l, static_cast<LoraTarget>(t)));
      }
    }
    if (!found) {
      return absl::FailedPreconditionError(absl::StrCat(
          file, ": target module '", name, "' is not a projection of this ", num_layers,
          "-layer Llama-family base (lorad adapts q/k/v/o/gate/up/down projections)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

namespace {

absl::StatusOr<std::vector<LayerPlan>> PlanModulesOrThrow(const PeftConfig& c, int32_t num_layers,
                                                          const std::string& file) {
  LORAD_ASSIGN_OR_RETURN(Selector target, MakeSelector(c.target_is_regex, c.target_regex,
                                                       c.target_list, file, "target_modules"));
  LORAD_ASSIGN_OR_RETURN(Selector exclude, MakeSelector(c.exclude_is_regex, c.exclude_regex,
                                                        c.exclude_list, file, "exclude_modules"));
  const bool has_exclude = c.exclude_is_regex || !c.exclude_list.empty();
  LORAD_RETURN_IF_ERROR(CheckTargetsExist(c, target, num_layers, file));
  for (int32_t layer : c.layers_to_transform) {
    if (layer >= num_layers) {
      return absl::FailedPreconditionError(absl::StrCat(file, ": layers_to_transform names layer ",
                                                        layer, " but the base has ", num_layers));
    }
  }
  LORAD_ASSIGN_OR_RETURN(auto ranks, CompilePatterns(c.rank_pattern, file, "rank_pattern"));
  LORAD_ASSIGN_OR_RETURN(auto alphas, CompilePatterns(c.alpha_pattern, file, "alpha_pattern"));

  std::vector<LayerPlan> plan(num_layers);
  bool any = false;
  for (int32_t l = 0; l < num_layers; ++l) {
    for (int t = 0; t < kNumLoraTargets; ++t) {
      const std::string key = LoraModuleKey(l, static_cast<LoraTarget>(t));
      if (has_exclude && exclude.Matches(key)) continue;
      bool hit = target.Matches(key);
      // PEFT applies layers_to_transform only to list targets that are not exact keys.
      if (hit && !c.target_is_regex && !c.layers_to_transform.empty() &&
          std::find(c.target_list.begin(), c.target_list.end(), key) == c.target_list.end()) {
        const int32_t index = LayerIndex(key, c.layers_pattern);
        hit = index >= 0 && std::find(c.layers_to_transform.begin(), c.layers_to_transform.end(),
                                      index) != c.layers_to_transform.end();
      }
      if (!hit) continue;
      ModulePlan& m = plan[l][t];
      m.targeted = true;
      m.rank = Lookup(ranks, key, c.r);
      m.alpha = Lookup(alphas, key, c.lora_alpha);
      m.scale = c.use_rslora ? m.alpha / std::sqrt(static_cast<float>(m.rank))
                             : m.alpha / static_cast<float>(m.rank);
      any = true;
    }
  }
  if (!any) {
    return absl::FailedPreconditionError(
        absl::StrCat(file, ": the config targets no projection of the base model"));
  }
  return plan;
}

}  // namespace

absl::StatusOr<std::vector<LayerPlan>> PlanModules(const PeftConfig& c, int32_t num_layers,
                                                   const std::string& file) {
  // Patterns come from the adapter's files: std::regex may throw on layers_pattern or on
  // pathological matches (error_complexity / error_stack).
  try {
    return PlanModulesOrThrow(c, num_layers, file);
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": a module pattern could not be evaluated as a regex: ", e.what()));
  }
}

}  // namespace lorad::adapters
