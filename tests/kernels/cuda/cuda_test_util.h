// Shared helpers of the CUDA kernel tests: device detection, RAII device buffers and fp16/bf16
// host conversion. Plain C++ (compiled by the host compiler, linked against cudart).
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/base/dtype.h"
#include "engine/base/half.h"

namespace lorad::cuda::testing {

inline bool HasCudaDevice() {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  if (!ok) cudaGetLastError();
  return ok;
}

#define LORAD_SKIP_WITHOUT_CUDA()                                                   \
  do {                                                                              \
    if (!::lorad::cuda::testing::HasCudaDevice()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

#define LORAD_CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << cudaGetErrorString(expr)

// Owns `bytes` of device memory; freed on destruction.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes_ > 0 && cudaMalloc(&ptr_, bytes_) != cudaSuccess) ptr_ = nullptr;
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  template <typename T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  uint8_t* bytes() const { return static_cast<uint8_t*>(ptr_); }
  size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

template <typename T>
cudaError_t Upload(void* dst, const std::vector<T>& src) {
  return cudaMemcpy(dst, src.data(), src.size() * sizeof(T), cudaMemcpyHostToDevice);
}
template <typename T>
cudaError_t Download(std::vector<T>* dst, const void* src) {
  return cudaMemcpy(dst->data(), src, dst->size() * sizeof(T), cudaMemcpyDeviceToHost);
}

// Activation storage of kF16 / kBF16 on the host.
inline uint16_t ToAct(DType t, float v) { return t == DType::kF16 ? Fp32ToFp16(v) : Fp32ToBf16(v); }
inline float FromAct(DType t, uint16_t v) {
  return t == DType::kF16 ? Fp16ToFp32(v) : Bf16ToFp32(v);
}
// Relative rounding bound of one stored result (one ulp at the value, generous).
inline double OutputEps(DType t) { return t == DType::kF16 ? 1.0 / 1024 : 1.0 / 128; }

// Poison pattern for outputs: all-ones bits are NaN in fp16, bf16 and fp32.
inline constexpr uint16_t kPoison16 = 0xffff;
inline constexpr uint32_t kPoison32 = 0xffffffffu;
inline uint32_t FloatBits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

}  // namespace lorad::cuda::testing
