#include "engine/base/gguf.h"

#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace lorad {

// Reads the header, metadata and tensor infos of a mapped GGUF file into a GgufFile. Each
// read is bounds-checked; errors say what was being read and at which file offset.
class GgufParser {
 public:
  explicit GgufParser(GgufFile* out)
      : out_(out), base_(out->file_->data()), size_(out->file_->size()) {}

  absl::Status Parse() {
    LORAD_ASSIGN_OR_RETURN(const uint32_t magic, ReadU32("magic"));
    if (magic != kGgufMagic) return Invalid("not a GGUF file (bad magic)");
    LORAD_ASSIGN_OR_RETURN(const uint32_t version, ReadU32("version"));
    if (version == 0x02000000u || version == 0x03000000u) {
      return Error(absl::StatusCode::kUnimplemented, "big-endian GGUF is not supported");
    }
    if (version != 2 && version != 3) {
      return Error(absl::StatusCode::kUnimplemented,
                   absl::StrCat("GGUF version ", version, " is not supported (2 or 3)"));
    }
    out_->version_ = version;
    LORAD_ASSIGN_OR_RETURN(const uint64_t n_tensors, ReadU64("tensor count"));
    LORAD_ASSIGN_OR_RETURN(const uint64_t n_kv, ReadU64("metadata count"));
    // Smallest encodings: a key/value is 8 (key length) + 1 (key) + 4 (type) + 1 (value)
    // bytes; a tensor info is 8 + 1 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes.
    if (n_kv > Remaining() / 14) {
      return Invalid(absl::StrCat("metadata count ", n_kv, " is more than the ", Remaining(),
                                  " remaining bytes can hold"));
    }
    if (n_tensors > Remaining() / 25) {
      return Invalid(absl::StrCat("tensor count ", n_tensors, " is more than the ", Remaining(),
                                  " remaining bytes can hold"));
    }
    out_->metadata_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) LORAD_RETURN_IF_ERROR(ParseKeyValue(i));
    LORAD_RETURN_IF_ERROR(ReadAlignment());
    out_->tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) LORAD_RETURN_IF_ERROR(ParseTensorInfo(i));
    const size_t align = out_->alignment_;
    const size_t data_offset = (pos_ + align - 1) / align * align;
    if (data_offset > size_ && n_tensors > 0) {
      return Invalid(absl::StrCat("file is truncated: tensor data would start at byte ",
                                  data_offset, " of ", size_));
    }
    out_->data_offset_ = data_offset;
    const size_t data_size = data_offset <= size_ ? size_ - data_offset : 0;
    for (GgufTensor& t : out_->tensors_) LORAD_RETURN_IF_ERROR(PlaceTensor(t, data_size));
    return absl::OkStatus();
  }

 private:
  size_t Remaining() const { return size_ - pos_; }

  absl::Status Error(absl::StatusCode code, const std::string& msg) const {
    return absl::Status(code, absl::StrCat(out_->file_->path(), ": ", msg));
  }
  absl::Status Invalid(const std::string& msg) const {
    return Error(absl::StatusCode::kInvalidArgument, msg);
  }
  absl::Status Truncated(const std::string& what, size_t need) const {
    return Invalid(absl::StrCat("file is truncated reading ", what, " at byte ", pos_, " (need ",
                                need, " bytes, ", Remaining(), " left)"));
  }

  absl::StatusOr<const uint8_t*> Take(const std::string& what, size_t n) {
    if (n > Remaining()) return Truncated(what, n);
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }
  absl::StatusOr<uint32_t> ReadU32(const std::string& what) {
    LORAD_ASSIGN_OR_RETURN(const uint8_t* p, Take(what, 4));
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  absl::StatusOr<uint64_t> ReadU64(const std::string& what) {
    LORAD_ASSIGN_OR_RETURN(const uint8_t* p, Take(what, 8));
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  absl::StatusOr<std::string_view> ReadString(const std::string& what) {
    LORAD_ASSIGN_OR_RETURN(const uint64_t len, ReadU64(what));
    if (len > Remaining()) {
      return Invalid(absl::StrCat(what, ": string length ", len, " at byte ", pos_ - 8,
                                  " is past the end of the file (", Remaining(), " bytes left)"));
    }
    const char* p = reinterpret_cast<const char*>(base_ + pos_);
    pos_ += len;
    return std::string_view(p, len);
  }

  absl::StatusOr<GgufType> ReadType(const std::string& what) {
    LORAD_ASSIGN_OR_RETURN(const uint32_t t, ReadU32(what));
    if (!IsValidGgufType(t)) {
      return Invalid(absl::StrCat(what, ": unknown value type ", t));
    }
    return static_cast<GgufType>(t);
  }

  absl::Status ParseKeyValue(uint64_t index) {
    LORAD_ASSIGN_OR_RETURN(const std::string_view key,
                           ReadString(absl::StrCat("key of metadata entry ", index)));
    if (key.empty()) return Invalid(absl::StrCat("metadata entry ", index, " has an empty key"));
    const std::string where = absl::StrCat("key '", std::string(key), "'");
    if (out_->key_index_.count(key) != 0) {
      return Invalid(absl::StrCat("duplicate metadata ", where));
    }
    GgufKeyValue kv;
    kv.key = std::string(key);
    LORAD_ASSIGN_OR_RETURN(kv.value.type, ReadType(where));
    LORAD_RETURN_IF_ERROR(ParseValue(where, &kv.value));
    out_->key_index_.emplace(kv.key, out_->metadata_.size());
    out_->metadata_.push_back(std::move(kv));
    return absl::OkStatus();
  }

  absl::Status ParseValue(const std::string& where, GgufValue* v) {
    if (v->type == GgufType::kString) {
      LORAD_ASSIGN_OR_RETURN(v->string, ReadString(where));
      return absl::OkStatus();
    }
    if (v->type != GgufType::kArray) {
      const size_t n = GgufScalarBytes(v->type);
      LORAD_ASSIGN_OR_RETURN(const uint8_t* p, Take(where, n));
      std::memcpy(&v->raw, p, n);  // little-endian host: zero-extends
      return absl::OkStatus();
    }
    LORAD_ASSIGN_OR_RETURN(v->array_type, ReadType(where));
    if (v->array_type == GgufType::kArray) {
      return Invalid(absl::StrCat(where, ": nested arrays are not supported"));
    }
    LORAD_ASSIGN_OR_RETURN(v->array_size, ReadU64(where));
    const size_t elem = v->array_type == GgufType::kString ? 8 : GgufScalarBytes(v->array_type);
    if (v->array_size > Remaining() / elem) {
      return Invalid(absl::StrCat(where, ": array of ", v->array_size, " ",
                                  GgufTypeName(v->array_type), " is past the end of the file (",
                                  Remaining(), " bytes left)"));
    }
    v->array_data = base_ + pos_;
    if (v->array_type != GgufType::kString) {
      pos_ += v->array_size * elem;
      return absl::OkStatus();
    }
    for (uint64_t i = 0; i < v->array_size; ++i) {
      LORAD_RETURN_IF_ERROR(ReadString(absl::StrCat(where, " element ", i)).status());
    }
    return absl::OkStatus();
  }

  absl::Status ReadAlignment() {
    const GgufValue* v = out_->FindValue("general.alignment");
    if (v == nullptr) return absl::OkStatus();
    if (!IsGgufIntegerType(v->type)) {
      return Invalid(absl::StrCat("general.alignment has type ", GgufTypeName(v->type),
                                  ", expected an integer"));
    }
    const uint64_t a = v->raw;
    if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 20)) {
      return Invalid(absl::StrCat("general.alignment ", a, " is not a power of two <= 1 MiB"));
    }
    out_->alignment_ = static_cast<uint32_t>(a);
    return absl::OkStatus();
  }

  absl::Status ParseTensorInfo(uint64_t index) {
    LORAD_ASSIGN_OR_RETURN(const std::string_view name,
                           ReadString(absl::StrCat("name of tensor ", index)));
    if (name.empty()) return Invalid(absl::StrCat("tensor ", index, " has an empty name"));
    const std::string where = absl::StrCat("tensor '", std::string(name), "'");
    if (out_->tensor_index_.count(name) != 0) {
      return Invalid(absl::StrCat("duplicate ", where));
    }
    GgufTensor t;
    t.name = std::string(name);
    LORAD_ASSIGN_OR_RETURN(const uint32_t n_dims, ReadU32(where));
    if (n_dims == 0 || n_dims > kGgufMaxDims) {
      return Invalid(
          absl::StrCat(where, " has ", n_dims, " dimensions (1 to ", kGgufMaxDims, " allowed)"));
    }
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      LORAD_ASSIGN_OR_RETURN(const uint64_t dim, ReadU64(where));
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(elements, static_cast<int64_t>(dim), &elements)) {
        return Invalid(absl::StrCat(where, ": dimension ", d, " = ", dim,
                                    " is zero or overflows the element count"));
      }
      t.dims.push_back(static_cast<int64_t>(dim));
    }
    t.num_elements = elements;
    LORAD_ASSIGN_OR_RETURN(t.ggml_type, ReadU32(where));
    auto type = DTypeFromGgmlType(t.ggml_type);
    if (!type.ok()) {
      return Error(type.status().code(), absl::StrCat(where, ": ", type.status().message()));
    }
    t.type = *type;
    LORAD_ASSIGN_OR_RETURN(t.offset, ReadU64(where));
    const int64_t block = static_cast<int64_t>(BlockElements(t.type));
    if (t.dims[0] % block != 0) {
      return Invalid(absl::StrCat(where, ": row length ", t.dims[0], " is not a multiple of the ",
                                  DTypeName(t.type), " block size ", block));
    }
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(elements / block),
                               static_cast<uint64_t>(BlockBytes(t.type)), &bytes)) {
      return Invalid(absl::StrCat(where, ": byte size overflows"));
    }
    t.bytes = bytes;
    out_->tensor_index_.emplace(t.name, out_->tensors_.size());
    out_->tensors_.push_back(std::move(t));
    return absl::OkStatus();
  }

  absl::Status PlaceTensor(GgufTensor& t, size_t data_size) {
    const std::string where = absl::StrCat("tensor '", t.name, "'");
    if (t.offset % out_->alignment_ != 0) {
      return Invalid(absl::StrCat(where, ": data offset ", t.offset,
                                  " is not a multiple of the alignment ", out_->alignment_));
    }
    if (t.offset > data_size || t.bytes > data_size - t.offset) {
      return Invalid(absl::StrCat(where, ": data [", t.offset, ", +", t.bytes,
                                  ") is past the end of the data section (", data_size, " bytes)"));
    }
    t.data = base_ + out_->data_offset_ + t.offset;
    return absl::OkStatus();
  }

  GgufFile* out_;
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
};

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  LORAD_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path));
  std::unique_ptr<GgufFile> file(new GgufFile(std::move(mapped)));
  GgufParser parser(file.get());
  LORAD_RETURN_IF_ERROR(parser.Parse());
  return file;
}

const GgufValue* GgufFile::FindValue(std::string_view key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufTensor* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

absl::StatusOr<const GgufTensor*> GgufFile::GetTensor(std::string_view name) const {
  const GgufTensor* t = FindTensor(name);
  if (t == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(path(), ": tensor '", std::string(name), "' not found"));
  }
  return t;
}

}  // namespace lorad
