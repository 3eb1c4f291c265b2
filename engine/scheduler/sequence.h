// One generation request as the scheduler tracks it: its tokens (prompt, then generated), how
// many of them are in the KV cache, its sampler and text stream, and its adapter.
// Owned by the scheduler thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "engine/base/lora_weights.h"
#include "engine/generate_types.h"
#include "engine/ops/kv_cache.h"
#include "engine/sampling/sampler.h"
#include "engine/sampling/text_stream.h"

namespace lorad {

struct Sequence {
  std::string id;
  std::string adapter_id;  // "" = base model
  // Set when the scheduler admits the sequence (null = base model); pins that version.
  std::shared_ptr<const LoraWeights> adapter;
  std::shared_ptr<GenerateSink> sink;
  SamplingParams params;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<TextStream> text;

  std::vector<int32_t> tokens;  // prompt followed by generated tokens
  int32_t prompt_tokens = 0;
  int32_t computed = 0;  // tokens[0, computed) have K/V in the cache
  BlockTable blocks;

  uint64_t arrival = 0;  // submission order
  absl::Time submitted;
  absl::Time queued_at = absl::InfinitePast();  // reached the scheduler
  absl::Time deadline = absl::InfiniteFuture();
  absl::Time first_scheduled = absl::InfinitePast();
  absl::Time first_token = absl::InfinitePast();
  absl::Time last_token = absl::InfinitePast();

  int32_t generated() const { return static_cast<int32_t>(tokens.size()) - prompt_tokens; }
};

}  // namespace lorad
