// fp16 vector primitives for the KV cache: keys and values are stored as IEEE fp16 (as
// llama.cpp's default KV cache), halving its memory. F16C/AVX2 unless the active kernel level
// (kernels::ActiveIsa) is scalar; a portable scalar path otherwise. Both paths give identical
// results.
#pragma once

#include <cstdint>

#include "engine/kernels/ggml_width.h"

namespace lorad::vec {

// y[i] = fp16(x[i]) (round to nearest even).
void ToFp16(const float* x, uint16_t* y, int64_t n);
// x[i] = fp32(fp16(x[i])): the value fp16 storage would keep.
void RoundToFp16(float* x, int64_t n);
// sum_i a[i] * fp32(b[i]), summed in the fixed order of ggml's fp16 dot for the active width
// (ggml_width.h; the orders are spelled out in the .cc), so that attention scores equal
// llama.cpp's bit for bit when a[] holds fp16 values.
float DotF16(const float* a, const uint16_t* b, int64_t n);
// DotF16 in the order of `width`, whatever the active level.
float DotF16InOrder(GgmlWidth width, const float* a, const uint16_t* b, int64_t n);
// y[i] = fma(a, fp32(x[i]), y[i]).
void AxpyF16(float a, const uint16_t* x, float* y, int64_t n);

}  // namespace lorad::vec
