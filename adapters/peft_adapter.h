// A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) read,
// validated against the base model and converted into the LoraWeights the engine consumes.
// The result owns the A/B bytes; LoraWeights points into them.
//
// Storage dtype: fp16 by default. Decode is memory-bound and every step reads each used
// adapter's A and B once, so fp16 halves the adapter bytes per step and in the host cache; the
// cost is 11-bit mantissas (relative error <= 2^-11 on the low-rank delta, far below the 4-bit
// base's own error). A module whose values do not fit fp16 is kept in fp32. kF32 keeps files'
// values exactly (F16 and BF16 values are exact in fp32).
//
// q_proj/k_proj lora_B rows are permuted like the base's q/k rows when the base uses GGML's
// adjacent-pair RoPE (spec.rope_neox false: llama/mistral GGUF, lorad's HF loader), exactly as
// llama.cpp's convert_lora_to_gguf.py does; PEFT files are always in HF (rotate-half) order.
// fan_in_fan_out only describes the BASE weight layout (GPT-2 Conv1D); PEFT resets it to false
// for nn.Linear bases such as Llama and never transposes lora_A/lora_B, so it changes nothing.
// Thread-safety: stateless functions; a PeftAdapter is immutable after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/peft_config.h"
#include "engine/base/dtype.h"
#include "engine/base/lora_weights.h"
#include "engine/base/model_spec.h"
#include "engine/base/safetensors.h"

namespace lorad::adapters {

inline constexpr char kPeftConfigFile[] = "adapter_config.json";
inline constexpr char kPeftWeightsFile[] = "adapter_model.safetensors";
// PEFT's legacy pickle weights: refused (FAILED_PRECONDITION), never read.
inline constexpr char kPeftPickleWeightsFile[] = "adapter_model.bin";
// Largest adapter_config.json accepted.
inline constexpr int64_t kPeftMaxConfigBytes = 1 << 20;

struct PeftLoadOptions {
  DType storage = DType::kF16;  // kF16 or kF32 for the A/B bytes held in memory
};

struct PeftAdapter {
  PeftAdapter() = default;
  PeftAdapter(const PeftAdapter&) = delete;
  PeftAdapter& operator=(const PeftAdapter&) = delete;

  PeftConfig config;
  LoraWeights weights;  // [base num_layers][target]; views into `buffers`
  std::vector<std::unique_ptr<uint8_t[]>> buffers;
  int32_t max_rank = 0;                     // over adapted modules
  std::vector<std::string> target_modules;  // adapted module names, q_proj..down_proj order
  int64_t bytes = 0;                        // bytes of A and B held in `buffers`
};

// The raw files of a PEFT directory.
struct PeftFiles {
  std::string config_path;  // for messages
  std::string config_text;
  std::unique_ptr<SafetensorsFile> weights;
};

// Reads `dir`/adapter_config.json and maps `dir`/adapter_model.safetensors. NOT_FOUND naming a
// missing file; INVALID_ARGUMENT for a malformed safetensors file or an oversized config;
// FAILED_PRECONDITION for a tensor dtype other than F32/F16/BF16, or for a directory that has
// only the pickle weights (adapter_model.bin).
absl::StatusOr<PeftFiles> ReadPeftFiles(const std::string& dir);

// ReadPeftFiles for the directory `source` beneath `root` (a canonical directory), each file
// opened confined to the root at the moment it is opened (engine/base/confined_open.h): a
// symlink swapped in after any earlier check cannot make it read outside the root.
absl::StatusOr<PeftFiles> ReadPeftFilesBeneath(const std::string& root, const std::string& source);

// Validates `files` against `base` and converts the weights. INVALID_ARGUMENT (naming the file
// and the tensor or field): malformed config, unexpected tensor, tensor missing, rank that
// disagrees with the config, NaN/Inf. FAILED_PRECONDITION (naming the feature): see
// ParsePeftConfig and PlanModules, plus LoRA tensors for modules lorad does not adapt
// (lm_head, embed_tokens), DoRA magnitudes, lora biases, full module weights (modules_to_save),
// layers or in/out features that do not match the base.
absl::StatusOr<std::unique_ptr<PeftAdapter>> BuildPeftAdapter(const PeftFiles& files,
                                                              const ModelSpec& base,
                                                              const PeftLoadOptions& options);

// ReadPeftFiles + BuildPeftAdapter.
absl::StatusOr<std::unique_ptr<PeftAdapter>> ReadPeftAdapter(const std::string& dir,
                                                             const ModelSpec& base,
                                                             const PeftLoadOptions& options = {});

// llama.cpp's q/k row permutation (HF rotate-half order -> GGML adjacent pairs) for rows of
// `head_dim`-row heads: the source (HF) row of destination row `row`.
int64_t QkPermutedSourceRow(int64_t row, int64_t head_dim);

}  // namespace lorad::adapters
