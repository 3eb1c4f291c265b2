#include <algorithm>
#include <type_traits>

#include "engine/kernels/cuda/device_math.cuh"
#include "engine/kernels/cuda/pointwise.cuh"

namespace lorad::cuda {
namespace {

using internal::FromFloat;
using internal::ToFloat;

constexpr int kNormThreads = 256;
constexpr int kPointwiseThreads = 256;

// One block per row: a strided sum of squares, a shared-memory tree reduction, then the scale.
template <typename T>
__global__ void __launch_bounds__(kNormThreads)
    RmsNormKernel(const T* x, const float* w, float eps, int64_t dim, T* y) {
  __shared__ float partial[kNormThreads];
  const T* xr = x + blockIdx.x * dim;
  T* yr = y + blockIdx.x * dim;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += kNormThreads) {
    const float v = ToFloat(xr[i]);
    sum += v * v;
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kNormThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  const float inv = rsqrtf(partial[0] / static_cast<float>(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += kNormThreads) {
    yr[i] = FromFloat<T>(ToFloat(xr[i]) * inv * w[i]);
  }
}

template <typename T>
__global__ void SiluMulKernel(T* g, const T* u, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const float a = ToFloat(g[i]);
    g[i] = FromFloat<T>(a / (1.0f + __expf(-a)) * ToFloat(u[i]));
  }
}

template <typename T>
__global__ void AddKernel(const T* x, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    y[i] = FromFloat<T>(ToFloat(y[i]) + ToFloat(x[i]));
  }
}

template <typename T>
__global__ void AddBiasKernel(const float* bias, T* y, int64_t n, int64_t dim) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    y[i] = FromFloat<T>(ToFloat(y[i]) + bias[i % dim]);
  }
}

unsigned PointwiseBlocks(int64_t n) {
  return static_cast<unsigned>(
      std::min<int64_t>((n + kPointwiseThreads - 1) / kPointwiseThreads, int64_t{1} << 16));
}

bool Supported(DType act_dtype) { return act_dtype == DType::kF16 || act_dtype == DType::kBF16; }

// Launches F<__half> or F<__nv_bfloat16> by `act_dtype`, then reports the launch's error.
template <typename Launch>
cudaError_t Dispatch(DType act_dtype, Launch launch) {
  if (act_dtype == DType::kF16) {
    launch(static_cast<__half*>(nullptr));
  } else {
    launch(static_cast<__nv_bfloat16*>(nullptr));
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t RmsNorm(DType act_dtype, const void* x, const float* w, float eps, int64_t rows,
                    int64_t dim, void* y, cudaStream_t stream) {
  if (!Supported(act_dtype) || rows < 0 || dim < 1 || rows > 0x7fffffff || x == nullptr ||
      w == nullptr || y == nullptr) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0) return cudaSuccess;
  return Dispatch(act_dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    RmsNormKernel<T><<<static_cast<unsigned>(rows), kNormThreads, 0, stream>>>(
        static_cast<const T*>(x), w, eps, dim, static_cast<T*>(y));
  });
}

cudaError_t SiluMul(DType act_dtype, void* g, const void* u, int64_t n, cudaStream_t stream) {
  if (!Supported(act_dtype) || n < 0 || g == nullptr || u == nullptr) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  return Dispatch(act_dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    SiluMulKernel<T><<<PointwiseBlocks(n), kPointwiseThreads, 0, stream>>>(
        static_cast<T*>(g), static_cast<const T*>(u), n);
  });
}

cudaError_t Add(DType act_dtype, const void* x, void* y, int64_t n, cudaStream_t stream) {
  if (!Supported(act_dtype) || n < 0 || x == nullptr || y == nullptr) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  return Dispatch(act_dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    AddKernel<T><<<PointwiseBlocks(n), kPointwiseThreads, 0, stream>>>(static_cast<const T*>(x),
                                                                       static_cast<T*>(y), n);
  });
}

cudaError_t AddBias(DType act_dtype, const float* bias, void* y, int64_t rows, int64_t dim,
                    cudaStream_t stream) {
  if (!Supported(act_dtype) || rows < 0 || dim < 1 || bias == nullptr || y == nullptr) {
    return cudaErrorInvalidValue;
  }
  const int64_t n = rows * dim;
  if (n == 0) return cudaSuccess;
  return Dispatch(act_dtype, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    AddBiasKernel<T>
        <<<PointwiseBlocks(n), kPointwiseThreads, 0, stream>>>(bias, static_cast<T*>(y), n, dim);
  });
}

}  // namespace lorad::cuda
