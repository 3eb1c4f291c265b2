// Fuzz target: the JSONL fine-tune dataset parser, as CreateJob's validation runs it (the tiny
// model's tokenizer and ChatML template). Input: a limits byte, a policy byte (over-long policy
// and train_on_inputs), then the JSONL text. Every example it returns must hold: tokens and
// target flags of equal length, within max_seq_len, at least one target, every id in the
// vocabulary.
#include <cstddef>
#include <cstdint>

#include "engine/finetune/dataset.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorad;
  fuzz::ByteReader in(data, size);
  const uint8_t limits_byte = in.Byte();
  const uint8_t policy_byte = in.Byte();
  const std::string_view jsonl = in.Rest();
  finetune::DatasetOptions limits;
  limits.max_seq_len = 2 + (limits_byte & 0x7f);
  limits.overlong = static_cast<finetune::OverlongPolicy>(policy_byte % 3);
  limits.train_on_inputs = (policy_byte & 4) != 0;
  limits.max_examples = 1000;
  limits.max_bytes = 1 << 20;
  const Tokenizer& tokenizer = fuzz::TinyTokenizer();
  absl::StatusOr<finetune::ParsedDataset> parsed =
      finetune::ParseJsonlDataset(jsonl, tokenizer, fuzz::TinyChatTemplate(), limits);
  if (!parsed.ok()) {
    if (parsed.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  for (const finetune::TrainExample& e : parsed->examples) {
    if (e.tokens.size() != e.target.size()) __builtin_trap();
    if (static_cast<int64_t>(e.tokens.size()) > limits.max_seq_len) __builtin_trap();
    bool any_target = false;
    for (size_t i = 0; i < e.tokens.size(); ++i) {
      if (e.tokens[i] < 0 || e.tokens[i] >= tokenizer.vocab_size()) __builtin_trap();
      any_target = any_target || e.target[i] != 0;
    }
    if (!any_target) __builtin_trap();
  }
  return 0;
}
