// safetensors writer (F32/F16/BF16 tensors plus optional __metadata__), written atomically:
// temporary file in the same directory, fsync, rename. The JSON header is padded with spaces to
// a multiple of 8 bytes so that tensor data is 8-byte aligned in the file.
// Thread-safety: not thread-safe; one writer per thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/base/dtype.h"

namespace lorad {

class SafetensorsWriter {
 public:
  // Adds a tensor of `dtype` (F32, F16 or BF16) with row-major `shape`; `data` holds exactly
  // product(shape) * element-size bytes, which are copied. INVALID_ARGUMENT for a duplicate or
  // empty name, "__metadata__", a negative dim or a byte count mismatch; UNIMPLEMENTED for
  // another dtype.
  absl::Status Add(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                   const void* data, size_t bytes);
  // Adds fp32 `values` (product(shape) of them) converted to `dtype` (F32, F16 or BF16, round
  // to nearest even).
  absl::Status AddFromF32(const std::string& name, DType dtype, const std::vector<int64_t>& shape,
                          const float* values);
  // Sets a "__metadata__" entry.
  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // The complete file image.
  std::string Serialize() const;
  // Writes the file atomically.
  absl::Status Write(const std::string& path) const;

 private:
  struct Tensor {
    DType dtype;
    std::vector<int64_t> shape;
    std::string data;
  };
  std::string Header() const;

  std::map<std::string, Tensor> tensors_;  // sorted by name, as the data section is laid out
  std::map<std::string, std::string> metadata_;
};

}  // namespace lorad
