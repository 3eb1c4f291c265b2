// CPU-only build of the dispatch queries (LORAD_WITH_CUDA=OFF): no CUDA headers needed.
#include "engine/kernels/cuda/cuda_available.h"

namespace lorad::cuda {

bool CudaKernelsBuilt() { return false; }
int CudaDeviceCount() { return 0; }
std::string CudaUnavailableReason() { return "built without CUDA"; }

}  // namespace lorad::cuda
