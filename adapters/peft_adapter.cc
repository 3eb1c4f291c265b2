#include "adapters/peft_adapter.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "adapters/peft_targets.h"
#include "adapters/peft_tensor_names.h"
#include "engine/base/confined_open.h"
#include "engine/base/half.h"
#include "engine/base/mapped_file.h"
#include "engine/base/status_macros.h"

namespace lorad::adapters {
namespace {

struct ModuleTensors {
  const SafetensorsTensor* a = nullptr;
  const SafetensorsTensor* b = nullptr;
};

// Element i of `t` as fp32 (the data may be unaligned).
float ElementAt(const SafetensorsTensor& t, int64_t i) {
  const auto* p = static_cast<const uint8_t*>(t.data);
  if (t.dtype == DType::kF32) {
    float f;
    std::memcpy(&f, p + i * 4, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p + i * 2, 2);
  return t.dtype == DType::kF16 ? Fp16ToFp32(h) : Bf16ToFp32(h);
}

// The tensor's values as fp32, rows permuted for q/k lora_B when `qk_head_dim` > 0.
absl::StatusOr<std::vector<float>> Values(const SafetensorsTensor& t, int64_t qk_head_dim,
                                          const std::string& file) {
  const int64_t rows = t.shape[0], cols = t.shape[1];
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t src = qk_head_dim > 0 ? QkPermutedSourceRow(r, qk_head_dim) : r;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = ElementAt(t, src * cols + c);
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(absl::StrCat(file, ": tensor '", t.name, "' has ",
                                                       std::isnan(v) ? "a NaN" : "an infinite",
                                                       " value at [", src, ", ", c, "]"));
      }
      out[r * cols + c] = v;
    }
  }
  return out;
}

bool FitsFp16(const std::vector<float>& v) {
  for (float x : v) {
    if (std::fabs(x) > 65504.0f) return false;
  }
  return true;
}

// Copies `v` into a new buffer of `dtype` owned by `adapter`; returns the data pointer.
const void* Store(PeftAdapter& adapter, const std::vector<float>& v, DType dtype) {
  const size_t bytes = v.size() * (dtype == DType::kF16 ? 2 : 4);
  auto buf = std::make_unique<uint8_t[]>(bytes);
  if (dtype == DType::kF16) {
    auto* h = reinterpret_cast<uint16_t*>(buf.get());
    for (size_t i = 0; i < v.size(); ++i) h[i] = Fp32ToFp16(v[i]);
  } else {
    std::memcpy(buf.get(), v.data(), bytes);
  }
  adapter.bytes += static_cast<int64_t>(bytes);
  adapter.buffers.push_back(std::move(buf));
  return adapter.buffers.back().get();
}

// Fast path for fp16 files kept in fp16: rows copied as they are (permuted for q/k lora_B when
// `qk_head_dim` > 0) into a new buffer owned by `adapter`, checked for NaN/Inf on the bits, in
// one pass and without widening to fp32. Returns the data pointer.
absl::StatusOr<const void*> CopyFp16(PeftAdapter& adapter, const SafetensorsTensor& t,
                                     int64_t qk_head_dim, const std::string& file) {
  const int64_t rows = t.shape[0], cols = t.shape[1];
  const size_t row_bytes = static_cast<size_t>(cols) * 2, bytes = rows * row_bytes;
  auto buf = std::make_unique<uint8_t[]>(bytes);
  const auto* src = static_cast<const uint8_t*>(t.data);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t from = qk_head_dim > 0 ? QkPermutedSourceRow(r, qk_head_dim) : r;
    std::memcpy(buf.get() + r * row_bytes, src + from * row_bytes, row_bytes);
  }
  const auto* h = reinterpret_cast<const uint16_t*>(buf.get());
  bool bad = false;
  for (size_t i = 0; i < bytes / 2; ++i) bad |= (h[i] & 0x7c00) == 0x7c00;  // exponent all ones
  if (bad) return Values(t, qk_head_dim, file).status();  // names the first bad element
  adapter.bytes += static_cast<int64_t>(bytes);
  adapter.buffers.push_back(std::move(buf));
  return adapter.buffers.back().get();
}

absl::Status CheckShapes(const ModuleTensors& m, const ModulePlan& plan, const ModelSpec& base,
                         LoraTarget target, const std::string& file) {
  const auto [in, out] = LoraModuleShapeOf(base, target);
  for (const SafetensorsTensor* t : {m.a, m.b}) {
    if (t->shape.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          file, ": tensor '", t->name, "' must be 2-D, has ", t->shape.size(), " dims"));
    }
  }
  if (m.a->shape[1] != in || m.b->shape[0] != out) {
    return absl::FailedPreconditionError(
        absl::StrCat(file, ": tensors '", m.a->name, "' [", m.a->shape[0], ", ", m.a->shape[1],
                     "] / '", m.b->name, "' [", m.b->shape[0], ", ", m.b->shape[1],
                     "] do not fit the base's ", LoraTargetName(target), " (in_features ", in,
                     ", out_features ", out, "); the adapter was made for another base model"));
  }
  if (m.a->shape[0] != plan.rank || m.b->shape[1] != plan.rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": tensors '", m.a->name, "' / '", m.b->name, "' have rank ", m.a->shape[0], " / ",
        m.b->shape[1], " but adapter_config.json gives r = ", plan.rank, " for this module"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(std::unique_ptr<MappedFile> file) {
  if (file->size() > static_cast<size_t>(kPeftMaxConfigBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(file->path(), ": larger than ", kPeftMaxConfigBytes, " bytes"));
  }
  return std::string(reinterpret_cast<const char*>(file->data()), file->size());
}

// The PEFT files from their opened mappings, with ReadPeftFiles' error codes.
absl::StatusOr<PeftFiles> PeftFilesFrom(absl::StatusOr<std::unique_ptr<MappedFile>> config,
                                        absl::StatusOr<std::unique_ptr<MappedFile>> weights) {
  if (!config.ok()) return config.status();
  PeftFiles files;
  files.config_path = (*config)->path();
  LORAD_ASSIGN_OR_RETURN(files.config_text, ReadSmallFile(*std::move(config)));
  if (!weights.ok()) return weights.status();
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> w = SafetensorsFile::Open(*std::move(weights));
  if (!w.ok()) {
    if (absl::IsUnimplemented(w.status())) {
      return absl::FailedPreconditionError(w.status().message());
    }
    return absl::InvalidArgumentError(w.status().message());
  }
  files.weights = *std::move(w);
  return files;
}

// PyTorch's pickle format can run code when it is loaded; lorad never reads it.
absl::Status PickleRefused(const std::string& dir) {
  return absl::FailedPreconditionError(absl::StrCat(
      "adapter '", dir, "' has ", kPeftPickleWeightsFile, " but no ", kPeftWeightsFile,
      ": pickle files are never loaded; save the adapter with safe_serialization=True (PEFT's "
      "default) or convert it to safetensors"));
}

// `name` in `source` beneath `root`, opened confined and mapped.
absl::StatusOr<std::unique_ptr<MappedFile>> MapBeneath(const std::string& root,
                                                       const std::string& source,
                                                       const char* name) {
  const std::string relative = absl::StrCat(source, "/", name);
  LORAD_ASSIGN_OR_RETURN(int fd, OpenBeneath(root, relative, /*directory=*/false, "adapter file"));
  return MappedFile::FromDescriptor(fd, absl::StrCat(root, "/", relative));
}

}  // namespace

int64_t QkPermutedSourceRow(int64_t row, int64_t head_dim) {
  const int64_t head = row / head_dim, within = row % head_dim, half = head_dim / 2;
  return head * head_dim + (within % 2) * half + within / 2;
}

absl::StatusOr<PeftFiles> ReadPeftFiles(const std::string& dir) {
  absl::StatusOr<std::unique_ptr<MappedFile>> weights =
      MappedFile::Open(absl::StrCat(dir, "/", kPeftWeightsFile));
  if (absl::IsNotFound(weights.status()) &&
      std::filesystem::exists(absl::StrCat(dir, "/", kPeftPickleWeightsFile))) {
    return PickleRefused(dir);
  }
  return PeftFilesFrom(MappedFile::Open(absl::StrCat(dir, "/", kPeftConfigFile)),
                       std::move(weights));
}

absl::StatusOr<PeftFiles> ReadPeftFilesBeneath(const std::string& root, const std::string& source) {
  absl::StatusOr<std::unique_ptr<MappedFile>> weights = MapBeneath(root, source, kPeftWeightsFile);
  if (absl::IsNotFound(weights.status())) {
    // Only whether it exists: the pickle is opened, never read.
    absl::StatusOr<int> pickle =
        OpenBeneath(root, absl::StrCat(source, "/", kPeftPickleWeightsFile),
                    /*directory=*/false, "adapter file");
    if (pickle.ok()) {
      ::close(*pickle);
      return PickleRefused(source);
    }
  }
  return PeftFilesFrom(MapBeneath(root, source, kPeftConfigFile), std::move(weights));
}

absl::StatusOr<std::unique_ptr<PeftAdapter>> BuildPeftAdapter(const PeftFiles& files,
                                                              const ModelSpec& base,
                                                              const PeftLoadOptions& options) {
  const std::string& wfile = files.weights->path();
  if (options.storage != DType::kF16 && options.storage != DType::kF32) {
    return absl::InvalidArgumentError("PeftLoadOptions.storage must be F16 or F32");
  }
  auto adapter = std::make_unique<PeftAdapter>();
  LORAD_ASSIGN_OR_RETURN(adapter->config, ParsePeftConfig(files.config_text, files.config_path));
  LORAD_ASSIGN_OR_RETURN(std::vector<LayerPlan> plan,
                         PlanModules(adapter->config, base.num_layers, files.config_path));

  std::vector<std::array<ModuleTensors, kNumLoraTargets>> found(base.num_layers);
  int32_t file_layers = 0;
  for (const SafetensorsTensor& t : files.weights->tensors()) {
    LORAD_ASSIGN_OR_RETURN(LoraTensorName n, ParseLoraTensorName(t.name, wfile));
    if (n.layer >= base.num_layers) {
      return absl::FailedPreconditionError(
          absl::StrCat(wfile, ": tensor '", t.name, "' is for layer ", n.layer,
                       " but the base model has ", base.num_layers, " layers"));
    }
    file_layers = std::max(file_layers, n.layer + 1);
    if (!plan[n.layer][static_cast<int>(n.target)].targeted) {
      return absl::InvalidArgumentError(absl::StrCat(
          wfile, ": tensor '", t.name, "' is for a module adapter_config.json does not target"));
    }
    ModuleTensors& m = found[n.layer][static_cast<int>(n.target)];
    (n.is_b ? m.b : m.a) = &t;
  }
  const bool all_layers = adapter->config.layers_to_transform.empty();
  adapter->weights.layers.resize(base.num_layers);
  bool used[kNumLoraTargets] = {};
  for (int32_t l = 0; l < base.num_layers; ++l) {
    for (int ti = 0; ti < kNumLoraTargets; ++ti) {
      const ModulePlan& p = plan[l][ti];
      if (!p.targeted) continue;
      const auto target = static_cast<LoraTarget>(ti);
      const ModuleTensors& m = found[l][ti];
      if (m.a == nullptr || m.b == nullptr) {
        if (all_layers && l >= file_layers && file_layers > 0) {
          return absl::FailedPreconditionError(
              absl::StrCat(wfile, ": has LoRA weights for ", file_layers,
                           " layers but the base model has ", base.num_layers));
        }
        return absl::InvalidArgumentError(absl::StrCat(
            wfile, ": missing tensor 'base_model.model.", LoraModuleKey(l, target), ".lora_",
            m.a == nullptr ? "A" : "B", ".weight' (adapter_config.json targets this module)"));
      }
      LORAD_RETURN_IF_ERROR(CheckShapes(m, p, base, target, wfile));
      const bool permute =
          !base.rope_neox && (target == LoraTarget::kQ || target == LoraTarget::kK);
      LoraPair& pair = adapter->weights.layers[l][ti];
      pair.rank = p.rank;
      pair.scale = p.scale;
      adapter->max_rank = std::max(adapter->max_rank, p.rank);
      used[ti] = true;
      if (options.storage == DType::kF16 && m.a->dtype == DType::kF16 &&
          m.b->dtype == DType::kF16) {
        pair.dtype = DType::kF16;
        LORAD_ASSIGN_OR_RETURN(pair.a, CopyFp16(*adapter, *m.a, 0, wfile));
        LORAD_ASSIGN_OR_RETURN(pair.b,
                               CopyFp16(*adapter, *m.b, permute ? base.head_dim : 0, wfile));
        continue;
      }
      LORAD_ASSIGN_OR_RETURN(std::vector<float> a, Values(*m.a, 0, wfile));
      LORAD_ASSIGN_OR_RETURN(std::vector<float> b,
                             Values(*m.b, permute ? base.head_dim : 0, wfile));
      const DType dtype =
          options.storage == DType::kF16 && FitsFp16(a) && FitsFp16(b) ? DType::kF16 : DType::kF32;
      pair.dtype = dtype;
      pair.a = Store(*adapter, a, dtype);
      pair.b = Store(*adapter, b, dtype);
    }
  }
  for (int ti = 0; ti < kNumLoraTargets; ++ti) {
    if (used[ti]) adapter->target_modules.push_back(LoraTargetName(static_cast<LoraTarget>(ti)));
  }
  return adapter;
}

absl::StatusOr<std::unique_ptr<PeftAdapter>> ReadPeftAdapter(const std::string& dir,
                                                             const ModelSpec& base,
                                                             const PeftLoadOptions& options) {
  LORAD_ASSIGN_OR_RETURN(PeftFiles files, ReadPeftFiles(dir));
  return BuildPeftAdapter(files, base, options);
}

}  // namespace lorad::adapters
