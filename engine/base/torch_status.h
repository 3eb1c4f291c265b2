// The boundary between LibTorch and the rest of lorad: LibTorch reports errors by throwing
// c10::Error; callers of torch code wrap it in TorchCall so that no exception crosses a module
// boundary and every failure becomes an absl::Status that names what went wrong.
// Header-light: includes no Torch headers; link lorad_engine_base_torch.
#pragma once

#include <functional>

#include "absl/status/status.h"

namespace lorad {

// Runs `fn`; a c10::Error becomes INVALID_ARGUMENT when it is a shape/type/index/value error
// (c10::IndexError, TypeError, ValueError, NotImplementedError -> UNIMPLEMENTED) and INTERNAL
// otherwise; std::bad_alloc becomes RESOURCE_EXHAUSTED and any other std::exception INTERNAL.
// The message is "<what>: <torch's first message line>".
absl::Status TorchCall(const char* what, const std::function<void()>& fn);

}  // namespace lorad
