// Fine-tune datasets: JSON Lines in one of three shapes (all lines the same shape), turned into
// token ids with a loss mask, exactly as inference would tokenize the same text:
//   {"text": "..."}                                   loss on every token after the first,
//                                                     then end-of-sequence
//   {"prompt": "...", "completion": "..."}           loss on the completion tokens, then
//                                                     end-of-sequence
//   {"messages": [{"role", "content"}, ...]}         the model's chat template; loss on the
//                                                     assistant turns (their closing tag too)
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

struct DatasetLimits {
  int64_t max_bytes = int64_t{64} << 20;  // whole JSONL
  int64_t max_examples = 1000000;
  int32_t max_seq_len = 512;  // an example with more tokens is an error
};

// Parses and tokenizes `jsonl`. Blank lines are skipped. INVALID_ARGUMENT naming the first bad
// line by number ("line 7: ...") for: not a JSON object, missing or non-string fields, a shape
// other than the first line's, an unknown role, no assistant turn, an empty completion, more
// than max_seq_len tokens, nothing to learn; and for an empty dataset or one over max_bytes /
// max_examples.
absl::StatusOr<std::vector<TrainExample>> ParseJsonlDataset(std::string_view jsonl,
                                                            const Tokenizer& tokenizer,
                                                            const ChatTemplate& chat_template,
                                                            const DatasetLimits& limits);

}  // namespace lorad::finetune
