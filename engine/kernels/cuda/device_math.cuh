// Device helpers shared by the .cu files of this directory (not a public header): fp16/bf16
// <-> fp32 conversion and vector loads of activations.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace lorad::cuda::internal {

__device__ __forceinline__ float ToFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T FromFloat(float v);
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float2 Pair(uint32_t bits, const __half*) {
  __half2 h;
  memcpy(&h, &bits, sizeof(h));
  return __half22float2(h);
}
__device__ __forceinline__ float2 Pair(uint32_t bits, const __nv_bfloat16*) {
  __nv_bfloat162 h;
  memcpy(&h, &bits, sizeof(h));
  return __bfloat1622float2(h);
}

// Loads 8 consecutive activations; `p` must be 16-byte aligned.
template <typename T>
__device__ __forceinline__ void Load8(const T* p, float f[8]) {
  const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = Pair(w[i], p);
    f[2 * i] = t.x;
    f[2 * i + 1] = t.y;
  }
}

// Loads 4 consecutive activations; `p` must be 8-byte aligned.
template <typename T>
__device__ __forceinline__ void Load4(const T* p, float f[4]) {
  const uint2 u = __ldg(reinterpret_cast<const uint2*>(p));
  const float2 a = Pair(u.x, p);
  const float2 b = Pair(u.y, p);
  f[0] = a.x;
  f[1] = a.y;
  f[2] = b.x;
  f[3] = b.y;
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

}  // namespace lorad::cuda::internal
