// Portable expand kernel of SegmentedLora: each B row is decoded once, then used by every
// token of the segment.
#include <vector>

#include "engine/kernels/segmented_lora_kernels.h"

namespace lorad::kernels::internal {

void LoraExpandScalar(const float* tmp, int64_t ld, const LoraSegment& s, int64_t o_begin,
                      int64_t o_end, float* y, int64_t d_out, PrefetchStream* /*pf*/) {
  thread_local std::vector<float> brow;
  brow.resize(static_cast<size_t>(s.rank));
  for (int64_t o = o_begin; o < o_end; ++o) {
    for (int32_t j = 0; j < s.rank; ++j) brow[j] = LoraWeightAt(s.dtype, s.b, o * s.rank + j);
    for (int64_t t = s.token_begin; t < s.token_end; ++t) {
      const float* h = tmp + t * ld;
      float acc = 0.0f;
      for (int32_t j = 0; j < s.rank; ++j) acc += h[j] * brow[j];
      y[t * d_out + o] += s.scale * acc;
    }
  }
}

}  // namespace lorad::kernels::internal
