#include "engine/base/gguf_writer.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/atomic_file.h"
#include "engine/base/status_macros.h"

namespace lorad {
namespace {

template <typename T>
void Append(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

void AppendString(std::string* out, const std::string& s) {
  Append<uint64_t>(out, s.size());
  out->append(s);
}

size_t Padding(size_t n, size_t align) { return (align - n % align) % align; }

}  // namespace

void GgufWriter::SetEncoded(const std::string& key, std::string encoded) {
  for (auto& kv : kvs_) {
    if (kv.first == key) {
      kv.second = std::move(encoded);
      return;
    }
  }
  kvs_.emplace_back(key, std::move(encoded));
}

template <typename T>
void GgufWriter::SetScalar(const std::string& key, GgufType type, T v) {
  std::string e;
  Append<uint32_t>(&e, static_cast<uint32_t>(type));
  Append<T>(&e, v);
  SetEncoded(key, std::move(e));
}

void GgufWriter::SetUint8(const std::string& k, uint8_t v) { SetScalar(k, GgufType::kUint8, v); }
void GgufWriter::SetInt8(const std::string& k, int8_t v) { SetScalar(k, GgufType::kInt8, v); }
void GgufWriter::SetUint16(const std::string& k, uint16_t v) { SetScalar(k, GgufType::kUint16, v); }
void GgufWriter::SetInt16(const std::string& k, int16_t v) { SetScalar(k, GgufType::kInt16, v); }
void GgufWriter::SetUint32(const std::string& k, uint32_t v) { SetScalar(k, GgufType::kUint32, v); }
void GgufWriter::SetInt32(const std::string& k, int32_t v) { SetScalar(k, GgufType::kInt32, v); }
void GgufWriter::SetUint64(const std::string& k, uint64_t v) { SetScalar(k, GgufType::kUint64, v); }
void GgufWriter::SetInt64(const std::string& k, int64_t v) { SetScalar(k, GgufType::kInt64, v); }
void GgufWriter::SetFloat32(const std::string& k, float v) { SetScalar(k, GgufType::kFloat32, v); }
void GgufWriter::SetFloat64(const std::string& k, double v) { SetScalar(k, GgufType::kFloat64, v); }
void GgufWriter::SetBool(const std::string& k, bool v) {
  SetScalar<uint8_t>(k, GgufType::kBool, v ? 1 : 0);
}

void GgufWriter::SetString(const std::string& key, const std::string& v) {
  std::string e;
  Append<uint32_t>(&e, static_cast<uint32_t>(GgufType::kString));
  AppendString(&e, v);
  SetEncoded(key, std::move(e));
}

void GgufWriter::SetStringArray(const std::string& key, const std::vector<std::string>& v) {
  std::string e;
  Append<uint32_t>(&e, static_cast<uint32_t>(GgufType::kArray));
  Append<uint32_t>(&e, static_cast<uint32_t>(GgufType::kString));
  Append<uint64_t>(&e, v.size());
  for (const std::string& s : v) AppendString(&e, s);
  SetEncoded(key, std::move(e));
}

absl::Status GgufWriter::SetArray(const std::string& key, GgufType elem_type, const void* elems,
                                  size_t count) {
  const size_t size = GgufScalarBytes(elem_type);
  if (size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GGUF key '", key, "': SetArray takes ", "scalar elements, not ", GgufTypeName(elem_type)));
  }
  std::string e;
  Append<uint32_t>(&e, static_cast<uint32_t>(GgufType::kArray));
  Append<uint32_t>(&e, static_cast<uint32_t>(elem_type));
  Append<uint64_t>(&e, count);
  e.append(static_cast<const char*>(elems), count * size);
  SetEncoded(key, std::move(e));
  return absl::OkStatus();
}

void GgufWriter::SetInt32Array(const std::string& key, const std::vector<int32_t>& v) {
  SetArray(key, GgufType::kInt32, v.data(), v.size()).IgnoreError();
}

void GgufWriter::SetFloat32Array(const std::string& key, const std::vector<float>& v) {
  SetArray(key, GgufType::kFloat32, v.data(), v.size()).IgnoreError();
}

absl::Status GgufWriter::AddTensor(const std::string& name, const std::vector<int64_t>& dims,
                                   DType type, const void* data, size_t bytes) {
  const std::string where = absl::StrCat("GGUF tensor '", name, "'");
  for (const Tensor& t : tensors_) {
    if (t.name == name) return absl::InvalidArgumentError(absl::StrCat("duplicate ", where));
  }
  LORAD_ASSIGN_OR_RETURN(const uint32_t ggml_type, GgmlTypeFromDType(type));
  if (dims.empty() || dims.size() > static_cast<size_t>(kGgufMaxDims)) {
    return absl::InvalidArgumentError(absl::StrCat(where, " has ", dims.size(), " dims"));
  }
  size_t elements = 1;
  for (int64_t d : dims) {
    if (d <= 0) return absl::InvalidArgumentError(absl::StrCat(where, " has a dim ", d));
    elements *= static_cast<size_t>(d);
  }
  if (dims[0] % static_cast<int64_t>(BlockElements(type)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": row length ", dims[0],
                                                   " is not a multiple of the ", DTypeName(type),
                                                   " block size"));
  }
  const size_t want = elements / BlockElements(type) * BlockBytes(type);
  if (bytes != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", bytes, " bytes given, ", want, " expected"));
  }
  tensors_.push_back(
      Tensor{name, dims, ggml_type, std::string(static_cast<const char*>(data), bytes)});
  return absl::OkStatus();
}

std::string GgufWriter::Header() const {
  std::vector<std::pair<std::string, std::string>> kvs = kvs_;
  if (alignment_ != kGgufDefaultAlignment) {
    std::string e;
    Append<uint32_t>(&e, static_cast<uint32_t>(GgufType::kUint32));
    Append<uint32_t>(&e, alignment_);
    bool replaced = false;
    for (auto& kv : kvs) {
      if (kv.first == "general.alignment") kv.second = e, replaced = true;
    }
    if (!replaced) kvs.emplace_back("general.alignment", e);
  }
  std::string h;
  Append<uint32_t>(&h, kGgufMagic);
  Append<uint32_t>(&h, version_);
  Append<uint64_t>(&h, tensors_.size());
  Append<uint64_t>(&h, kvs.size());
  for (const auto& kv : kvs) {
    AppendString(&h, kv.first);
    h.append(kv.second);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    AppendString(&h, t.name);
    Append<uint32_t>(&h, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Append<uint64_t>(&h, static_cast<uint64_t>(d));
    Append<uint32_t>(&h, t.ggml_type);
    Append<uint64_t>(&h, offset);
    offset += t.data.size() + Padding(t.data.size(), alignment_);
  }
  h.append(Padding(h.size(), alignment_), '\0');
  return h;
}

std::string GgufWriter::Serialize() const {
  std::string out = Header();
  for (const Tensor& t : tensors_) {
    out.append(t.data);
    out.append(Padding(t.data.size(), alignment_), '\0');
  }
  return out;
}

absl::Status GgufWriter::Write(const std::string& path) const {
  const std::string header = Header();
  const std::string zeros(alignment_, '\0');
  std::vector<std::string_view> chunks = {header};
  for (const Tensor& t : tensors_) {
    chunks.push_back(t.data);
    chunks.push_back(std::string_view(zeros).substr(0, Padding(t.data.size(), alignment_)));
  }
  return WriteFileAtomically(path, chunks);
}

}  // namespace lorad
