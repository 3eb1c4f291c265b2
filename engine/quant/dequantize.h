// Scalar reference dequantization: the definition of what each stored format means.
// Optimized kernels are tested against these.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/base/dtype.h"

namespace lorad::quant {

// Writes `n` floats decoded from `src` (stored as `type`) to `dst`. `n` must be a multiple of
// BlockElements(type); `src` must hold RowBytes(type, n) bytes.
void DequantizeRow(DType type, const void* src, float* dst, size_t n);

}  // namespace lorad::quant
