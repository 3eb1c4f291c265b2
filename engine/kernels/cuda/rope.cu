#include <algorithm>
#include <type_traits>

#include "engine/kernels/cuda/device_math.cuh"
#include "engine/kernels/cuda/rope.cuh"

namespace lorad::cuda {
namespace {

using internal::FromFloat;
using internal::ToFloat;

constexpr int kRopeThreads = 256;

// One thread per (row, head, pair).
template <typename T>
__global__ void RopeKernel(RopeParams p, T* x, int64_t pairs, int32_t num_heads,
                           const int32_t* positions) {
  const int32_t half = p.head_dim / 2;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < pairs;
       t += int64_t{gridDim.x} * blockDim.x) {
    const int32_t i = static_cast<int32_t>(t % half);
    const int64_t head = t / half;  // row * num_heads + h
    const int64_t row = head / num_heads;
    const float theta = static_cast<float>(positions[row]) *
                        powf(p.theta_scale, static_cast<float>(i)) / p.freq_factor[i];
    float s, c;
    sincosf(theta, &s, &c);
    T* v = x + head * p.head_dim;
    const int32_t i0 = p.neox ? i : 2 * i;
    const int32_t i1 = p.neox ? i + half : 2 * i + 1;
    const float x0 = ToFloat(v[i0]), x1 = ToFloat(v[i1]);
    v[i0] = FromFloat<T>(x0 * c - x1 * s);
    v[i1] = FromFloat<T>(x0 * s + x1 * c);
  }
}

}  // namespace

cudaError_t Rope(DType act_dtype, const RopeParams& params, void* x, int64_t rows,
                 int32_t num_heads, const int32_t* positions, cudaStream_t stream) {
  if ((act_dtype != DType::kF16 && act_dtype != DType::kBF16) || rows < 0 || num_heads < 1 ||
      params.head_dim < 2 || params.head_dim % 2 != 0 || params.head_dim > kRopeMaxHeadDim ||
      x == nullptr || (rows > 0 && positions == nullptr)) {
    return cudaErrorInvalidValue;
  }
  const int64_t pairs = rows * num_heads * (params.head_dim / 2);
  if (pairs == 0) return cudaSuccess;
  const auto blocks = static_cast<unsigned>(
      std::min<int64_t>((pairs + kRopeThreads - 1) / kRopeThreads, int64_t{1} << 16));
  if (act_dtype == DType::kF16) {
    RopeKernel<__half><<<blocks, kRopeThreads, 0, stream>>>(params, static_cast<__half*>(x), pairs,
                                                            num_heads, positions);
  } else {
    RopeKernel<__nv_bfloat16><<<blocks, kRopeThreads, 0, stream>>>(
        params, static_cast<__nv_bfloat16*>(x), pairs, num_heads, positions);
  }
  return cudaGetLastError();
}

}  // namespace lorad::cuda
