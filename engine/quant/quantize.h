// Reference quantizers: fp32 rows -> stored formats. Used to quantize HF checkpoints to NF4 at
// load (exactly as bitsandbytes does for QLoRA) and by test fixtures to write GGUF models.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "engine/base/dtype.h"

namespace lorad::quant {

// Encodes `n` floats from `src` into `dst` (RowBytes(type, n) bytes). `n` must be a multiple
// of BlockElements(type). Supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, NF4; the K-quants
// answer UNIMPLEMENTED.
absl::Status QuantizeRow(DType type, const float* src, void* dst, size_t n);

// The NF4 code (0..15) nearest to `x` (already divided by the block absmax), with ties going
// to the lower code, as bitsandbytes' dQuantizeNF4 decides.
int NearestNF4(float x);

}  // namespace lorad::quant
