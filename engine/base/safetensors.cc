#include "engine/base/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"

namespace lorad {
namespace {

using json = nlohmann::json;

absl::StatusOr<DType> ParseDType(const std::string& name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  return absl::UnimplementedError(
      absl::StrCat("dtype ", name, " is not supported (F32, F16, BF16)"));
}

// Reads a JSON number that must be a non-negative integer.
bool GetUint(const json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

}  // namespace

size_t SafetensorsElementBytes(std::string_view dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 0;
}

const char* SafetensorsDTypeName(DType type) {
  switch (type) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    default:
      return nullptr;
  }
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  LORAD_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path));
  return Open(std::move(mapped));
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(
    std::unique_ptr<MappedFile> mapped) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(std::move(mapped)));
  try {
    LORAD_RETURN_IF_ERROR(file->Parse());
  } catch (const json::exception& e) {  // defensive: Parse() checks types before reading
    return absl::InvalidArgumentError(absl::StrCat(file->path(), ": malformed header: ", e.what()));
  }
  return file;
}

absl::Status SafetensorsFile::Parse() {
  const std::string& p = file_->path();
  auto invalid = [&p](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat(p, ": ", msg));
  };
  const size_t size = file_->size();
  if (size < 8) return invalid(absl::StrCat("file of ", size, " bytes has no header length"));
  uint64_t header_len;
  std::memcpy(&header_len, file_->data(), 8);
  if (header_len > kSafetensorsMaxHeaderBytes) {
    return invalid(absl::StrCat("header length ", header_len, " exceeds the limit of ",
                                kSafetensorsMaxHeaderBytes, " bytes"));
  }
  if (header_len > size - 8) {
    return invalid(absl::StrCat("header length ", header_len, " is past the end of the file (",
                                size, " bytes)"));
  }
  const char* text = reinterpret_cast<const char*>(file_->data() + 8);
  const json header = json::parse(text, text + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return invalid("header is not valid JSON");
  if (!header.is_object()) return invalid("header is not a JSON object");
  const size_t data_size = size - 8 - header_len;
  const uint8_t* data = file_->data() + 8 + header_len;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return invalid("__metadata__ is not an object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          return invalid(absl::StrCat("__metadata__ value of '", m.key(), "' is not a string"));
        }
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = absl::StrCat("tensor '", name, "'");
    if (!entry.is_object()) return invalid(absl::StrCat(where, " is not a JSON object"));
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      return invalid(absl::StrCat(where, " has no string 'dtype'"));
    }
    if (shape_it == entry.end() || !shape_it->is_array()) {
      return invalid(absl::StrCat(where, " has no array 'shape'"));
    }
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      return invalid(absl::StrCat(where, " has no 'data_offsets' [begin, end]"));
    }
    SafetensorsTensor t;
    t.name = name;
    const std::string dtype_name = dtype_it->get<std::string>();
    auto dtype = ParseDType(dtype_name);
    if (!dtype.ok()) {
      return absl::UnimplementedError(absl::StrCat(p, ": ", where, ": ", dtype.status().message()));
    }
    t.dtype = *dtype;
    uint64_t elements = 1;
    for (const json& d : *shape_it) {
      uint64_t dim;
      if (!GetUint(d, &dim) || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(elements, dim, &elements) ||
          elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return invalid(absl::StrCat(where, ": shape ", shape_it->dump(),
                                    " has a negative, non-integer or overflowing dimension"));
      }
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    t.num_elements = static_cast<int64_t>(elements);
    uint64_t begin, end;
    if (!GetUint((*offsets_it)[0], &begin) || !GetUint((*offsets_it)[1], &end) || begin > end) {
      return invalid(absl::StrCat(where, ": data_offsets ", offsets_it->dump(),
                                  " are not non-negative integers with begin <= end"));
    }
    if (end > data_size) {
      return invalid(absl::StrCat(where, ": data_offsets ", offsets_it->dump(),
                                  " are past the end of the data section (", data_size, " bytes)"));
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(elements, SafetensorsElementBytes(dtype_name), &bytes) ||
        bytes != end - begin) {
      return invalid(absl::StrCat(where, ": shape ", shape_it->dump(), " of ", dtype_name,
                                  " needs ", elements, " elements but data_offsets span ",
                                  end - begin, " bytes"));
    }
    t.bytes = bytes;
    t.data = data + begin;
    tensors_.push_back(std::move(t));
  }
  // The format requires the tensors to tile the data section: in offset order each begins where
  // the previous ended, the first at 0 and the last at the section's end. No overlaps, no holes.
  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return std::make_pair(a.data, a.bytes) < std::make_pair(b.data, b.bytes);
            });
  size_t covered = 0;
  for (const SafetensorsTensor& t : tensors_) {
    const size_t begin = static_cast<size_t>(static_cast<const uint8_t*>(t.data) - data);
    if (begin != covered) {
      return invalid(absl::StrCat("tensor '", t.name, "' starts at data offset ", begin,
                                  begin < covered
                                      ? " inside the previous tensor (which ends at "
                                      : " leaving a hole after the previous tensor (at ",
                                  covered, "); tensors must not overlap or leave gaps"));
    }
    covered = begin + t.bytes;
  }
  if (covered != data_size) {
    return invalid(absl::StrCat("tensors cover ", covered, " of the data section's ", data_size,
                                " bytes; the rest is not part of any tensor"));
  }
  std::sort(tensors_.begin(), tensors_.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.name < b.name; });
  return absl::OkStatus();
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it =
      std::lower_bound(tensors_.begin(), tensors_.end(), name,
                       [](const SafetensorsTensor& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

absl::StatusOr<const SafetensorsTensor*> SafetensorsFile::Get(std::string_view name) const {
  const SafetensorsTensor* t = Find(name);
  if (t == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path(), ": tensor '", std::string(name), "' not found"));
  }
  return t;
}

}  // namespace lorad
