#include "engine/base/gguf_types.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace lorad {
namespace {

// ggml_type names by id (ggml.h); empty slots are ids that were retired.
constexpr const char* kGgmlTypeNames[] = {
    "F32",    "F16",   "Q4_0",  "Q4_1",   "",      "",      "Q5_0",    "Q5_1",   "Q8_0",    "Q8_1",
    "Q2_K",   "Q3_K",  "Q4_K",  "Q5_K",   "Q6_K",  "Q8_K",  "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S",
    "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8",    "I16",   "I32",     "I64",    "F64",     "IQ1_M",
    "BF16",   "",      "",      "",       "TQ1_0", "TQ2_0", "",        "",       "",        "MXFP4",
};

struct GgmlDType {
  uint32_t id;
  DType type;
};
constexpr GgmlDType kSupported[] = {
    {0, DType::kF32},  {1, DType::kF16},  {30, DType::kBF16}, {8, DType::kQ8_0},  {2, DType::kQ4_0},
    {3, DType::kQ4_1}, {6, DType::kQ5_0}, {12, DType::kQ4_K}, {14, DType::kQ6_K},
};

}  // namespace

bool IsValidGgufType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

const char* GgufTypeName(GgufType t) {
  static constexpr const char* kNames[] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                           "int32",  "float32", "bool",   "string", "array",
                                           "uint64", "int64",   "float64"};
  const auto i = static_cast<uint32_t>(t);
  return i < sizeof(kNames) / sizeof(kNames[0]) ? kNames[i] : "type#?";
}

size_t GgufScalarBytes(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

bool IsGgufIntegerType(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

const char* GgmlTypeName(uint32_t ggml_type) {
  constexpr size_t kCount = sizeof(kGgmlTypeNames) / sizeof(kGgmlTypeNames[0]);
  if (ggml_type < kCount && kGgmlTypeNames[ggml_type][0] != '\0') {
    return kGgmlTypeNames[ggml_type];
  }
  return "unknown";
}

absl::StatusOr<DType> DTypeFromGgmlType(uint32_t ggml_type) {
  for (const GgmlDType& s : kSupported) {
    if (s.id == ggml_type) return s.type;
  }
  return absl::UnimplementedError(absl::StrCat("unsupported ggml tensor type ",
                                               GgmlTypeName(ggml_type), " (id ", ggml_type,
                                               "); supported: F32, F16, BF16, Q8_0, Q4_0, "
                                               "Q4_1, Q5_0, Q4_K, Q6_K"));
}

absl::StatusOr<uint32_t> GgmlTypeFromDType(DType type) {
  for (const GgmlDType& s : kSupported) {
    if (s.type == type) return s.id;
  }
  return absl::UnimplementedError(absl::StrCat(DTypeName(type), " has no GGUF tensor type"));
}

}  // namespace lorad
