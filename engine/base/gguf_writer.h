// GGUF v3 (or v2) writer: metadata key/values of every type and tensors of any DType with a
// ggml type, laid out with the alignment llama.cpp expects. Used by test fixtures, converters
// and the fine-tune job. Holds everything in memory until Write().
// Thread-safety: not thread-safe; one writer per thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/dtype.h"
#include "engine/base/gguf_types.h"

namespace lorad {

class GgufWriter {
 public:
  // `alignment` must be a power of two; a value other than 32 is recorded as
  // general.alignment (uint32) just before Write(), as llama.cpp does.
  explicit GgufWriter(uint32_t alignment = kGgufDefaultAlignment) : alignment_(alignment) {}

  // GGUF version written into the header: 3 (default) or 2 (same layout).
  void set_version(uint32_t version) { version_ = version; }

  // Scalar setters. Setting an existing key replaces its value in place (order is kept).
  void SetUint8(const std::string& key, uint8_t v);
  void SetInt8(const std::string& key, int8_t v);
  void SetUint16(const std::string& key, uint16_t v);
  void SetInt16(const std::string& key, int16_t v);
  void SetUint32(const std::string& key, uint32_t v);
  void SetInt32(const std::string& key, int32_t v);
  void SetUint64(const std::string& key, uint64_t v);
  void SetInt64(const std::string& key, int64_t v);
  void SetFloat32(const std::string& key, float v);
  void SetFloat64(const std::string& key, double v);
  void SetBool(const std::string& key, bool v);
  void SetString(const std::string& key, const std::string& v);

  // Array setters.
  void SetStringArray(const std::string& key, const std::vector<std::string>& v);
  void SetInt32Array(const std::string& key, const std::vector<int32_t>& v);
  void SetFloat32Array(const std::string& key, const std::vector<float>& v);
  // An array of `count` scalars of `elem_type` (any type but string/array), given as their
  // little-endian bytes. INVALID_ARGUMENT for string/array element types.
  absl::Status SetArray(const std::string& key, GgufType elem_type, const void* elems,
                        size_t count);

  // Adds a tensor; `dims` in ggml order (dims[0] = contiguous extent, so W[out, in] is
  // {in, out}); `data` holds exactly RowBytes(type, dims[0]) * product(dims[1..]) bytes, which
  // are copied. INVALID_ARGUMENT for a duplicate name, 0 or >4 dims, a non-positive dim, a
  // row length not a multiple of the block size, or a byte count mismatch; UNIMPLEMENTED for a
  // DType without a ggml type (NF4).
  absl::Status AddTensor(const std::string& name, const std::vector<int64_t>& dims, DType type,
                         const void* data, size_t bytes);

  // The complete file image (header, metadata, tensor infos, padded data).
  std::string Serialize() const;
  // Writes the file atomically (temporary file + fsync + rename).
  absl::Status Write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    uint32_t ggml_type;
    std::string data;
  };
  void SetEncoded(const std::string& key, std::string encoded);
  template <typename T>
  void SetScalar(const std::string& key, GgufType type, T v);
  std::string Header() const;

  uint32_t alignment_;
  uint32_t version_ = 3;
  std::vector<std::pair<std::string, std::string>> kvs_;  // key -> type id + payload
  std::vector<Tensor> tensors_;
};

}  // namespace lorad
