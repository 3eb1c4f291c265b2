// CUDA build of the dispatch queries: asks the runtime once per call (cheap after the first).
#include "engine/kernels/cuda/cuda_available.h"

#include <cuda_runtime_api.h>

namespace lorad::cuda {

bool CudaKernelsBuilt() { return true; }

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  return count;
}

std::string CudaUnavailableReason() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: ") + cudaGetErrorString(err);
  }
  if (count == 0) return "no CUDA device: the driver reports none";
  return "";
}

}  // namespace lorad::cuda
