#include "engine/model/rope.h"

#include <cmath>

namespace lorad {

Rope::Rope(const ModelSpec& spec, const std::vector<float>& freq_factors)
    : head_dim_(spec.head_dim),
      neox_(spec.rope_neox),
      freq_factor_(spec.head_dim / 2, 1.0f),
      theta_scale_(std::pow(spec.rope_theta, -2.0f / static_cast<float>(spec.head_dim))) {
  if (freq_factors.size() == freq_factor_.size()) freq_factor_ = freq_factors;
}

// The FMA clone fuses the rotations' first products in hardware; the default clone gets the same
// bits from the C library's fma().
__attribute__((target_clones("arch=x86-64-v3", "default"))) void Rope::Apply(
    float* v, int32_t num_heads, int64_t position) const {
  const int32_t half = head_dim_ / 2;
  // theta_i = position * base^(-2i/d), built by repeated multiplication as llama.cpp does, so
  // that greedy outputs track the reference implementation closely.
  float cos_sin[2 * 256];
  float* cs = half <= 256 ? cos_sin : new float[2 * half];
  float theta = static_cast<float>(position);
  for (int32_t i = 0; i < half; ++i) {
    const float t = theta / freq_factor_[i];
    cs[2 * i] = std::cos(t);
    cs[2 * i + 1] = std::sin(t);
    theta *= theta_scale_;
  }
  for (int32_t h = 0; h < num_heads; ++h) {
    float* x = v + static_cast<int64_t>(h) * head_dim_;
    for (int32_t i = 0; i < half; ++i) {
      const int32_t i0 = neox_ ? i : 2 * i;
      const int32_t i1 = neox_ ? i + half : 2 * i + 1;
      // x0*cos - x1*sin and x0*sin + x1*cos with the first product fused, as ggml's rope
      // compiles on FMA CPUs (llama.cpp's reference numbers).
      const float x0 = x[i0], x1 = x[i1];
      x[i0] = std::fma(x0, cs[2 * i], -(x1 * cs[2 * i + 1]));
      x[i1] = std::fma(x0, cs[2 * i + 1], x1 * cs[2 * i]);
    }
  }
  if (cs != cos_sin) delete[] cs;
}

}  // namespace lorad
