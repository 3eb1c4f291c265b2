// Fine-tune datasets: JSON Lines in one of three shapes (all lines the same shape), turned into
// token ids with a loss mask, exactly as inference would tokenize the same text:
//   {"text": "..."}                                   loss on every token after the first,
//                                                     then end-of-sequence
//   {"prompt": "...", "completion": "..."}           loss on the completion tokens, then
//                                                     end-of-sequence (train_on_inputs: on the
//                                                     prompt tokens too)
//   {"messages": [{"role", "content", "weight"}...]} the model's chat template; loss on the
//                                                     assistant turns (their closing tag too)
//                                                     whose optional "weight" is not 0
//                                                     (train_on_inputs: on every token)
// "weight" is OpenAI's per-message field: 0 or 1, on assistant messages only.
// Thread-safety: the functions are thread-safe.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/chat_template.h"

namespace lorad {
class Tokenizer;
}

namespace lorad::finetune {

// One training sequence. target[i] != 0 means token i is predicted (from tokens[0..i)) and
// counts in the loss; target[0] is always 0.
struct TrainExample {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> target;
  int64_t line = 0;  // 1-based line of the JSONL source
};

// What to do with an example longer than max_seq_len tokens.
enum class OverlongPolicy {
  kError,     // INVALID_ARGUMENT naming its line
  kTruncate,  // keep its first max_seq_len tokens (dropped instead if no target is left)
  kDrop,      // leave it out
};

// "error" / "truncate" / "drop" -> OverlongPolicy; INVALID_ARGUMENT for another name.
absl::Status ParseOverlongPolicy(std::string_view name, OverlongPolicy* out);
const char* OverlongPolicyName(OverlongPolicy policy);

struct DatasetOptions {
  int64_t max_bytes = int64_t{64} << 20;  // whole JSONL
  int64_t max_examples = 1000000;
  int32_t max_seq_len = 512;
  OverlongPolicy overlong = OverlongPolicy::kError;
  bool train_on_inputs = false;  // loss on prompts and non-assistant turns too
};

struct ParsedDataset {
  std::vector<TrainExample> examples;
  int64_t truncated = 0;  // examples cut to max_seq_len (OverlongPolicy::kTruncate)
  int64_t dropped = 0;    // examples left out for their length (kDrop, or kTruncate with nothing
                          // left to learn)
};

// Parses and tokenizes `jsonl`. Blank lines are skipped. INVALID_ARGUMENT naming the first bad
// line by number ("line 7: ...") for: not a JSON object, missing or non-string fields, a shape
// other than the first line's, an unknown role, a weight other than 0/1 or on a non-assistant
// message, no assistant turn, an empty completion, more than max_seq_len tokens (kError),
// nothing to learn; and for an empty dataset (also after drops) or one over max_bytes /
// max_examples.
absl::StatusOr<ParsedDataset> ParseJsonlDataset(std::string_view jsonl, const Tokenizer& tokenizer,
                                                const ChatTemplate& chat_template,
                                                const DatasetOptions& options);

}  // namespace lorad::finetune
