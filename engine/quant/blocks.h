// Byte layouts of the block-quantized weight formats. GGUF blocks match llama.cpp's on-disk
// layout bit for bit (so tensors are used in place from the file); NF4 is lorad's own packing
// of the QLoRA format (bitsandbytes nibble order: element 2i in the high nibble).
#pragma once

#include <cstdint>

namespace lorad::quant {

inline constexpr int kQK = 32;        // values per Q8_0/Q4_0/Q4_1/Q5_0 block
inline constexpr int kQKK = 256;      // values per K-quant super-block
inline constexpr int kNF4Block = 64;  // values per NF4 block (QLoRA's blocksize)

struct BlockQ8_0 {
  uint16_t d;  // fp16 scale: value = qs[i] * d
  int8_t qs[kQK];
};
struct BlockQ4_0 {
  uint16_t d;           // fp16 scale: value = (nibble - 8) * d
  uint8_t qs[kQK / 2];  // byte j: element j in the low nibble, element j+16 in the high nibble
};
struct BlockQ4_1 {
  uint16_t d;           // fp16 scale
  uint16_t m;           // fp16 min: value = nibble * d + m
  uint8_t qs[kQK / 2];  // same nibble order as Q4_0
};
struct BlockQ5_0 {
  uint16_t d;     // fp16 scale: value = (5-bit q - 16) * d
  uint8_t qh[4];  // bit j of the little-endian uint32: 5th bit of element j
  uint8_t qs[kQK / 2];
};
struct BlockQ4_K {
  uint16_t d;            // fp16 super-block scale of the 6-bit sub-block scales
  uint16_t dmin;         // fp16 super-block scale of the 6-bit sub-block mins
  uint8_t scales[12];    // 8 sub-blocks of 32: 6-bit scale and min each, packed
  uint8_t qs[kQKK / 2];  // per 64 values: 32 bytes, low nibbles first sub-block, high second
};
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];      // low 4 bits
  uint8_t qh[kQKK / 4];      // high 2 bits
  int8_t scales[kQKK / 16];  // one per 16 values
  uint16_t d;                // fp16 super-block scale
};
struct BlockNF4 {
  float absmax;               // per-block absolute maximum (QLoRA, no double quantization)
  uint8_t qs[kNF4Block / 2];  // byte i: code of element 2i (high nibble), 2i+1 (low nibble)
};

static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockNF4) == 36);

// The NF4 code book of QLoRA (bitsandbytes), indexed by the 4-bit code.
inline constexpr float kNF4Codebook[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

}  // namespace lorad::quant
