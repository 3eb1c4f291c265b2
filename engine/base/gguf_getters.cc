// Typed metadata getters of GgufFile. Array bounds were validated at Open(), so decoding here
// only converts element types.
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/gguf.h"
#include "engine/base/status_macros.h"

namespace lorad {
namespace {

// Decodes one integer scalar of type `t` from little-endian `p`. Sets *too_big for a uint64
// above INT64_MAX.
int64_t DecodeInt(GgufType t, const uint8_t* p, bool* too_big) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kBool:
      return p[0];
    case GgufType::kInt8:
      return static_cast<int8_t>(p[0]);
    case GgufType::kUint16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case GgufType::kInt16: {
      int16_t v;
      std::memcpy(&v, p, 2);
      return v;
    }
    case GgufType::kUint32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case GgufType::kInt32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case GgufType::kUint64: {
      uint64_t v;
      std::memcpy(&v, p, 8);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) *too_big = true;
      return static_cast<int64_t>(v);
    }
    case GgufType::kInt64: {
      int64_t v;
      std::memcpy(&v, p, 8);
      return v;
    }
    default:
      return 0;
  }
}

bool IsIntLike(GgufType t) { return IsGgufIntegerType(t) || t == GgufType::kBool; }
bool IsFloat(GgufType t) { return t == GgufType::kFloat32 || t == GgufType::kFloat64; }

double DecodeFloat(GgufType t, const uint8_t* p) {
  if (t == GgufType::kFloat32) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
  if (t == GgufType::kFloat64) {
    double v;
    std::memcpy(&v, p, 8);
    return v;
  }
  bool too_big = false;
  const int64_t i = DecodeInt(t, p, &too_big);
  return too_big ? static_cast<double>(static_cast<uint64_t>(i)) : static_cast<double>(i);
}

const uint8_t* RawBytes(const GgufValue& v) { return reinterpret_cast<const uint8_t*>(&v.raw); }

}  // namespace

absl::StatusOr<const GgufValue*> GgufFile::Lookup(std::string_view key) const {
  const GgufValue* v = FindValue(key);
  if (v == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path(), ": metadata key '", std::string(key), "' not found"));
  }
  return v;
}

namespace {
absl::Status WrongType(const std::string& path, std::string_view key, const GgufValue& v,
                       const char* wanted) {
  std::string have = GgufTypeName(v.type);
  if (v.type == GgufType::kArray) have = absl::StrCat("array of ", GgufTypeName(v.array_type));
  return absl::InvalidArgumentError(absl::StrCat(path, ": metadata key '", std::string(key),
                                                 "' is ", have, ", expected ", wanted));
}
}  // namespace

absl::StatusOr<std::string> GgufFile::GetString(std::string_view key) const {
  LORAD_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(key));
  if (v->type != GgufType::kString) return WrongType(path(), key, *v, "string");
  return std::string(v->string);
}

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  LORAD_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(key));
  if (!IsIntLike(v->type)) return WrongType(path(), key, *v, "an integer");
  bool too_big = false;
  const int64_t i = DecodeInt(v->type, RawBytes(*v), &too_big);
  if (too_big) {
    return absl::OutOfRangeError(absl::StrCat(path(), ": metadata key '", std::string(key),
                                              "' = ", v->raw, " exceeds int64"));
  }
  return i;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  LORAD_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(key));
  if (!IsFloat(v->type) && !IsGgufIntegerType(v->type)) {
    return WrongType(path(), key, *v, "a number");
  }
  return DecodeFloat(v->type, RawBytes(*v));
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  LORAD_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(key));
  if (v->type != GgufType::kBool) return WrongType(path(), key, *v, "bool");
  return v->raw != 0;
}

absl::StatusOr<uint64_t> GgufFile::GetArraySize(std::string_view key) const {
  LORAD_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(key));
  if (v->type != GgufType::kArray) return WrongType(path(), key, *v, "an array");
  return v->array_size;
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  LORAD_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(key));
  if (v->type != GgufType::kArray || v->array_type != GgufType::kString) {
    return WrongType(path(), key, *v, "array of string");
  }
  std::vector<std::string> out;
  out.reserve(v->array_size);
  const uint8_t* p = v->array_data;
  for (uint64_t i = 0; i < v->array_size; ++i) {
    uint64_t len;
    std::memcpy(&len, p, 8);
    out.emplace_back(reinterpret_cast<const char*>(p + 8), len);
    p += 8 + len;
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  LORAD_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(key));
  if (v->type != GgufType::kArray || !IsIntLike(v->array_type)) {
    return WrongType(path(), key, *v, "array of integers");
  }
  const size_t elem = GgufScalarBytes(v->array_type);
  std::vector<int64_t> out(v->array_size);
  bool too_big = false;
  for (uint64_t i = 0; i < v->array_size; ++i) {
    out[i] = DecodeInt(v->array_type, v->array_data + i * elem, &too_big);
  }
  if (too_big) {
    return absl::OutOfRangeError(absl::StrCat(path(), ": metadata key '", std::string(key),
                                              "' has uint64 elements above int64"));
  }
  return out;
}

absl::StatusOr<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  LORAD_ASSIGN_OR_RETURN(const GgufValue* v, Lookup(key));
  if (v->type != GgufType::kArray ||
      (!IsFloat(v->array_type) && !IsGgufIntegerType(v->array_type))) {
    return WrongType(path(), key, *v, "array of numbers");
  }
  const size_t elem = GgufScalarBytes(v->array_type);
  std::vector<float> out(v->array_size);
  for (uint64_t i = 0; i < v->array_size; ++i) {
    out[i] = static_cast<float>(DecodeFloat(v->array_type, v->array_data + i * elem));
  }
  return out;
}

}  // namespace lorad
