// Device-dispatch queries of the CUDA kernel library, free of CUDA, Torch and Abseil types so
// any layer may include them in any build. A CPU-only build links cuda_available_stub.cc, which
// answers "built without CUDA"; op layers turn that into FAILED_PRECONDITION.
#pragma once

#include <string>

namespace lorad::cuda {

// True when this binary carries the CUDA kernels (LORAD_WITH_CUDA=ON).
bool CudaKernelsBuilt();

// Number of CUDA devices the kernels can run on: 0 when built without CUDA, without a driver,
// or when the driver reports none. Thread-safe.
int CudaDeviceCount();

// Why device tensors cannot reach the CUDA kernels ("built without CUDA", "no CUDA device:
// <driver message>"), or an empty string when they can. Thread-safe.
std::string CudaUnavailableReason();

}  // namespace lorad::cuda
