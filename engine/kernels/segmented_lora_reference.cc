// SegmentedLoraReference: the plain definition the optimized operator is tested against.
#include <vector>

#include "engine/kernels/segmented_lora.h"
#include "engine/kernels/segmented_lora_kernels.h"

namespace lorad::kernels {

void SegmentedLoraReference(const float* x, int64_t d_in, float* y, int64_t d_out,
                            absl::Span<const LoraSegment> segs, void* /*workspace*/,
                            ThreadPool* /*pool*/) {
  for (const LoraSegment& s : segs) {
    std::vector<float> h(static_cast<size_t>(s.rank));
    for (int64_t t = s.token_begin; t < s.token_end; ++t) {
      for (int32_t j = 0; j < s.rank; ++j) {
        float acc = 0.0f;
        for (int64_t k = 0; k < d_in; ++k) {
          acc += x[t * d_in + k] * internal::LoraWeightAt(s.dtype, s.a, j * d_in + k);
        }
        h[j] = acc;
      }
      for (int64_t o = 0; o < d_out; ++o) {
        float acc = 0.0f;
        for (int32_t j = 0; j < s.rank; ++j) {
          acc += h[j] * internal::LoraWeightAt(s.dtype, s.b, o * s.rank + j);
        }
        y[t * d_out + o] += s.scale * acc;
      }
    }
  }
}

}  // namespace lorad::kernels
