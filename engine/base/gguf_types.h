// GGUF on-disk enumerations: metadata value types and ggml tensor type ids, and their mapping
// to lorad::DType. Shared by the GGUF reader and writer.
// Ids follow ggml.h / gguf.h of llama.cpp (GGUF v3).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/base/dtype.h"

namespace lorad {

// Metadata value types, numbered as on disk.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

inline constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian uint32
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;  // GGML_MAX_DIMS

// True for the 13 types above.
bool IsValidGgufType(uint32_t t);
// "uint8", "string", ...; "type#?" for an id past kFloat64.
const char* GgufTypeName(GgufType t);
// Bytes of one scalar of `t` on disk; 0 for kString and kArray (variable size).
size_t GgufScalarBytes(GgufType t);
bool IsGgufIntegerType(GgufType t);

// ggml tensor type id -> DType for F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K.
// Any other id is UNIMPLEMENTED naming the ggml type and id ("Q5_1 (id 7)").
absl::StatusOr<DType> DTypeFromGgmlType(uint32_t ggml_type);
// DType -> ggml tensor type id; NF4 has none (UNIMPLEMENTED).
absl::StatusOr<uint32_t> GgmlTypeFromDType(DType type);
// The ggml name of a tensor type id ("Q4_1"); "unknown" when the id is not a ggml type.
const char* GgmlTypeName(uint32_t ggml_type);

}  // namespace lorad
