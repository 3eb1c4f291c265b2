#include "engine/base/safetensors_writer.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/atomic_file.h"
#include "engine/base/half.h"
#include "engine/base/safetensors.h"
#include "nlohmann/json.hpp"

namespace lorad {

absl::Status SafetensorsWriter::Add(const std::string& name, DType dtype,
                                    const std::vector<int64_t>& shape, const void* data,
                                    size_t bytes) {
  const std::string where = absl::StrCat("safetensors tensor '", name, "'");
  if (name.empty() || name == "__metadata__") {
    return absl::InvalidArgumentError(absl::StrCat(where, ": reserved or empty name"));
  }
  if (tensors_.count(name) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("duplicate ", where));
  }
  const char* dtype_name = SafetensorsDTypeName(dtype);
  if (dtype_name == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat(where, ": dtype ", DTypeName(dtype), " cannot be stored (F32, F16, BF16)"));
  }
  size_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat(where, " has a dim ", d));
    elements *= static_cast<size_t>(d);
  }
  const size_t want = elements * SafetensorsElementBytes(dtype_name);
  if (bytes != want) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", bytes, " bytes given, ", want, " expected"));
  }
  tensors_[name] = Tensor{dtype, shape, std::string(static_cast<const char*>(data), bytes)};
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::AddFromF32(const std::string& name, DType dtype,
                                           const std::vector<int64_t>& shape, const float* values) {
  size_t n = 1;
  for (int64_t d : shape) n *= d < 0 ? 0 : static_cast<size_t>(d);
  if (dtype == DType::kF32) return Add(name, dtype, shape, values, n * sizeof(float));
  if (dtype != DType::kF16 && dtype != DType::kBF16) return Add(name, dtype, shape, nullptr, 0);
  std::vector<uint16_t> half(n);
  for (size_t i = 0; i < n; ++i) {
    half[i] = dtype == DType::kF16 ? Fp32ToFp16(values[i]) : Fp32ToBf16(values[i]);
  }
  return Add(name, dtype, shape, half.data(), n * sizeof(uint16_t));
}

std::string SafetensorsWriter::Header() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata_) meta[k] = v;
    header["__metadata__"] = meta;
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors_) {
    header[name] = {{"dtype", SafetensorsDTypeName(t.dtype)},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t len = text.size();
  std::memcpy(out.data(), &len, 8);
  return out + text;
}

std::string SafetensorsWriter::Serialize() const {
  std::string out = Header();
  for (const auto& [name, t] : tensors_) out.append(t.data);
  return out;
}

absl::Status SafetensorsWriter::Write(const std::string& path) const {
  const std::string header = Header();
  std::vector<std::string_view> chunks = {header};
  for (const auto& [name, t] : tensors_) chunks.push_back(t.data);
  return WriteFileAtomically(path, chunks);
}

}  // namespace lorad
