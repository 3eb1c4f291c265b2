// Fuzz target: a PEFT adapter directory. Input: one length-prefixed field with the text of
// adapter_config.json, then the bytes of adapter_model.safetensors. Runs ParsePeftConfig on the
// text alone, then ReadPeftAdapter (config + weights, validated against the tiny base model's
// shapes) on the directory, in both storage dtypes.
#include <cstddef>
#include <cstdint>

#include "adapters/peft_adapter.h"
#include "adapters/peft_config.h"
#include "tests/fixtures/tiny_model.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorad;
  fuzz::ByteReader in(data, size);
  const std::string_view config = in.Field();
  const std::string_view weights = in.Rest();
  adapters::ParsePeftConfig(absl::string_view(config.data(), config.size()), "adapter_config.json")
      .IgnoreError();

  fuzz::WriteScratchFile("adapter_config.json", config);
  fuzz::WriteScratchFile("adapter_model.safetensors", weights);
  static const ModelSpec spec = testing::TinyModelSpec(testing::TinyModelOptions());
  for (DType storage : {DType::kF16, DType::kF32}) {
    adapters::PeftLoadOptions options;
    options.storage = storage;
    adapters::ReadPeftAdapter(fuzz::ScratchDir(), spec, options).IgnoreError();
  }
  return 0;
}
