// Where an operator runs: the device of its tensors and the resources the device's kernels
// need. The op layer validates arguments, then dispatches on `device`: CPU kernels
// (engine/kernels) or CUDA kernels (engine/kernels/cuda). A build without CUDA, or a machine
// without a CUDA device, answers FAILED_PRECONDITION from the dispatch point ("built without
// CUDA", "no CUDA device: ...").
#pragma once

#include <cstddef>

#include "engine/kernels/thread_pool.h"

namespace lorad::ops {

enum class Device { kCpu, kCuda };

// "cpu" / "cuda".
const char* DeviceName(Device device);

struct OpContext {
  Device device = Device::kCpu;
  kernels::ThreadPool* pool = nullptr;  // CPU: worker threads (null: the calling thread only)
  void* cuda_stream = nullptr;          // CUDA: the cudaStream_t to launch on (null: default)
  // Caller-owned scratch in the device's memory, at least the op's *WorkspaceBytes() query.
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

}  // namespace lorad::ops
