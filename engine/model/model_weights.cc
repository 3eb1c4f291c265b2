#include "engine/model/model_weights.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lorad {

absl::StatusOr<std::unique_ptr<ModelWeights>> LoadModel(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("model path '", path, "' does not exist: ", std::strerror(errno)));
  }
  if (S_ISDIR(st.st_mode)) return LoadHfModel(path);
  return LoadGgufModel(path);
}

absl::Status ValidateModelSpec(const ModelSpec& s, const std::string& source) {
  auto check = [&source](bool ok, const char* field, int64_t value) -> absl::Status {
    if (ok) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(source, ": invalid ", field, " = ", value));
  };
  constexpr int32_t kMaxDim = 1 << 18;
  const absl::Status checks[] = {
      check(s.vocab_size > 0 && s.vocab_size <= (1 << 24), "vocab_size", s.vocab_size),
      check(s.hidden_size > 0 && s.hidden_size <= kMaxDim, "hidden_size", s.hidden_size),
      check(s.intermediate_size > 0 && s.intermediate_size <= kMaxDim, "intermediate_size",
            s.intermediate_size),
      check(s.num_layers > 0 && s.num_layers <= 4096, "num_layers", s.num_layers),
      check(s.num_heads > 0 && s.num_heads <= 4096, "num_heads", s.num_heads),
      check(s.num_kv_heads > 0 && s.num_kv_heads <= s.num_heads &&
                s.num_heads % std::max(s.num_kv_heads, 1) == 0,
            "num_kv_heads (must divide num_heads)", s.num_kv_heads),
      check(s.head_dim > 0 && s.head_dim % 2 == 0 && s.head_dim <= 4096, "head_dim (must be even)",
            s.head_dim),
      check(s.max_position > 0, "max_position", s.max_position),
      check(s.rms_norm_eps > 0 && std::isfinite(s.rms_norm_eps), "rms_norm_eps (x1e9)",
            static_cast<int64_t>(s.rms_norm_eps * 1e9)),
      check(s.rope_theta > 0 && std::isfinite(s.rope_theta), "rope_theta",
            static_cast<int64_t>(s.rope_theta)),
  };
  for (const absl::Status& st : checks) {
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

int64_t HfToGgufQkSourceRow(int64_t row, int64_t head_dim) {
  const int64_t h = row / head_dim, r = row % head_dim;
  const int64_t i = r / 2, j = r % 2;
  return h * head_dim + j * (head_dim / 2) + i;
}

std::vector<float> Llama3RopeFreqFactors(const ModelSpec& spec) {
  std::vector<float> factors;
  if (spec.rope_scaling_factor == 0.0f) return factors;
  const double factor = spec.rope_scaling_factor;
  const double low = spec.rope_low_freq_factor, high = spec.rope_high_freq_factor;
  const double old_len = spec.rope_original_max_position;
  const double low_wavelen = old_len / low, high_wavelen = old_len / high;
  for (int i = 0; i < spec.head_dim; i += 2) {
    // float32 arithmetic as torch computes the base frequencies.
    const float freq = 1.0f / std::pow(spec.rope_theta, static_cast<float>(i) / spec.head_dim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < high_wavelen) {
      factors.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      factors.push_back(static_cast<float>(factor));
    } else {
      const double smooth = (old_len / wavelen - low) / (high - low);
      factors.push_back(static_cast<float>(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return factors;
}

}  // namespace lorad
