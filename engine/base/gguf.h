// GGUF v2/v3 reader: metadata key/values and tensor infos of a memory-mapped GGUF file, with
// tensor data viewed in place (no copies). Every count, length and offset in the file is
// validated against the file size before use: a malformed file is an absl::Status naming the
// key or tensor and the problem, never a crash or a large allocation.
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
#include "engine/base/gguf_types.h"
#include "engine/base/mapped_file.h"

namespace lorad {

// One metadata value, viewing the mapping. Valid while its GgufFile lives.
struct GgufValue {
  GgufType type = GgufType::kUint8;
  // Scalars (not string/array): the value's little-endian bytes, zero-extended to 64 bits.
  uint64_t raw = 0;
  // kString: the bytes of the string (not NUL-terminated).
  std::string_view string;
  // kArray: element type, element count, and the first element's bytes in the mapping.
  // Elements are laid out as on disk (strings: uint64 length + bytes each). Nested arrays
  // are rejected at Open().
  GgufType array_type = GgufType::kUint8;
  uint64_t array_size = 0;
  const uint8_t* array_data = nullptr;
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
};

// One tensor info. `dims` are in ggml order: dims[0] is the contiguous (innermost) extent, so
// a weight W[out, in] stored row-major has dims {in, out}.
struct GgufTensor {
  std::string name;
  std::vector<int64_t> dims;
  uint32_t ggml_type = 0;
  DType type = DType::kF32;
  uint64_t offset = 0;  // from the start of the data section; a multiple of the alignment
  size_t bytes = 0;     // RowBytes(type, dims[0]) * product(dims[1..])
  int64_t num_elements = 0;
  const void* data = nullptr;  // into the mapping; aligned to alignment() within the file

  int64_t cols() const { return dims.empty() ? 1 : dims[0]; }
  // Product of dims[1..] (1 for a vector).
  int64_t rows() const { return dims.empty() ? 1 : num_elements / dims[0]; }
};

class GgufFile {
 public:
  // Maps and parses `path`. Errors (all prefixed with the path): NOT_FOUND for a missing file;
  // INVALID_ARGUMENT for a malformed file (bad magic, truncation, lengths/counts past the end,
  // duplicate keys or tensor names, misaligned or out-of-range tensor data, dims overflow);
  // UNIMPLEMENTED for a version other than 2/3 or a tensor type other than F32, F16, BF16,
  // Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K (naming the tensor and the ggml type).
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::string& path() const { return file_->path(); }
  // File offset of the tensor data section.
  size_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<GgufKeyValue>& metadata() const { return metadata_; }
  const GgufValue* FindValue(std::string_view key) const;
  bool Has(std::string_view key) const { return FindValue(key) != nullptr; }

  // Typed getters. NOT_FOUND when the key is absent; INVALID_ARGUMENT (naming the key, the
  // wanted and the stored type) when the value has another type.
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  // Any integer type (and bool); OUT_OF_RANGE for a uint64 above INT64_MAX.
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  // float32 or float64, or any integer type (converted).
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  // Element count of an array value.
  absl::StatusOr<uint64_t> GetArraySize(std::string_view key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(std::string_view key) const;
  // Arrays of any integer type (or bool).
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;
  // Arrays of float32/float64 (or any integer type, converted).
  absl::StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;

  // Tensors in file order.
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  // nullptr when absent.
  const GgufTensor* FindTensor(std::string_view name) const;
  // NOT_FOUND naming the tensor and the file when absent.
  absl::StatusOr<const GgufTensor*> GetTensor(std::string_view name) const;

 private:
  friend class GgufParser;
  explicit GgufFile(std::unique_ptr<MappedFile> file) : file_(std::move(file)) {}
  absl::StatusOr<const GgufValue*> Lookup(std::string_view key) const;

  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kGgufDefaultAlignment;
  size_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::map<std::string, size_t, std::less<>> key_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace lorad
