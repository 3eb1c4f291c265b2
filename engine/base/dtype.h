// Element types of tensors the engine stores: float types and block-quantized weight formats.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lorad {

// Storage type of a tensor. Quantized types store blocks of `BlockElements()` values in
// `BlockBytes()` bytes; float types are blocks of one element.
enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kQ8_0,  // GGUF: 32 values, fp16 scale, int8 quants
  kQ4_0,  // GGUF: 32 values, fp16 scale, 4-bit quants centred on 8
  kQ4_1,  // GGUF: 32 values, fp16 scale and min, 4-bit quants
  kQ5_0,  // GGUF: 32 values, fp16 scale, 5-bit quants centred on 16
  kQ4_K,  // GGUF: 256-value super-block, 6-bit sub-block scales and mins
  kQ6_K,  // GGUF: 256-value super-block, 6-bit quants, int8 sub-block scales
  kNF4,   // QLoRA: 64 values, fp32 absmax, 4-bit NormalFloat code book indices
};

// Number of values in one block of `t` (1 for float types).
size_t BlockElements(DType t);
// Bytes of one block of `t`.
size_t BlockBytes(DType t);
// Bytes needed to store `n` values of `t`; `n` must be a multiple of BlockElements(t).
inline size_t RowBytes(DType t, size_t n) { return n / BlockElements(t) * BlockBytes(t); }
const char* DTypeName(DType t);
bool IsQuantized(DType t);

}  // namespace lorad
