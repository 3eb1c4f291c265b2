// safetensors reader: an 8-byte little-endian header length, a JSON header of tensor entries
// {dtype, shape, data_offsets}, then the data section. The file is memory-mapped and tensors
// are viewed in place. Every header field is validated: a malformed file is an absl::Status
// naming the tensor and the problem. Supported dtypes: F32, F16, BF16.
// Thread-safety: immutable after Open(); all const methods may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/dtype.h"
#include "engine/base/mapped_file.h"

namespace lorad {

// Largest JSON header accepted (the reference implementation's limit).
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100ull << 20;

// One tensor view. `shape` is row-major (outermost first), as in the header. `data` points into
// the mapping and is NOT necessarily aligned to the element size (the header length need not
// be a multiple of 8): read it with memcpy or quant::DequantizeRow on x86.
struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  int64_t num_elements = 0;
  size_t bytes = 0;
  const void* data = nullptr;
};

class SafetensorsFile {
 public:
  // Maps and parses `path`. Errors are prefixed with the path: NOT_FOUND for a missing file,
  // INVALID_ARGUMENT for a malformed one (header length past the file or above 100 MB, bad JSON,
  // missing/mistyped fields, offsets outside the data section, byte size != product(shape) *
  // element size, overflow, tensors that overlap or leave bytes of the data section unused),
  // UNIMPLEMENTED for a dtype other than F32/F16/BF16 (naming the tensor and the dtype).
  // "__metadata__" (string -> string) is allowed.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Parses an already mapped file (errors as Open's, prefixed with file->path()).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(std::unique_ptr<MappedFile> file);

  const std::string& path() const { return file_->path(); }
  // The whole file as read (header and data), e.g. for a digest of exactly what was loaded.
  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(file_->data()), file_->size()};
  }
  // Tensors sorted by name.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(std::string_view name) const;
  // NOT_FOUND naming the tensor and the file when absent.
  absl::StatusOr<const SafetensorsTensor*> Get(std::string_view name) const;
  // The "__metadata__" entries (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  explicit SafetensorsFile(std::unique_ptr<MappedFile> file) : file_(std::move(file)) {}
  absl::Status Parse();

  std::unique_ptr<MappedFile> file_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Element size of a safetensors dtype name we support, or 0 ("F32" -> 4).
size_t SafetensorsElementBytes(std::string_view dtype);
// "F32", "F16", "BF16" for the supported DTypes; nullptr for others.
const char* SafetensorsDTypeName(DType type);

}  // namespace lorad
