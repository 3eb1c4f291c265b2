// Fuzz target: a GGUF file, through everything that reads one at startup. The GGUF reader, the
// typed getters on every key, the model loader's checks (LoadGgufModel), and the vocabulary and
// tokenizer built from it. Every outcome but a crash or a sanitizer report is fine; errors must
// be absl::Status values.
#include <cstddef>
#include <cstdint>

#include "engine/base/gguf.h"
#include "engine/model/model_weights.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab_from_gguf.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorad;
  const std::string path =
      fuzz::WriteScratchFile("input.gguf", {reinterpret_cast<const char*>(data), size});
  absl::StatusOr<std::unique_ptr<GgufFile>> gguf = GgufFile::Open(path);
  if (!gguf.ok()) return 0;
  for (const GgufKeyValue& kv : (*gguf)->metadata()) {
    (*gguf)->GetString(kv.key).IgnoreError();
    (*gguf)->GetInt(kv.key).IgnoreError();
    (*gguf)->GetFloat(kv.key).IgnoreError();
    (*gguf)->GetBool(kv.key).IgnoreError();
    (*gguf)->GetArraySize(kv.key).IgnoreError();
    (*gguf)->GetStringArray(kv.key).IgnoreError();
    (*gguf)->GetIntArray(kv.key).IgnoreError();
    (*gguf)->GetFloatArray(kv.key).IgnoreError();
  }
  // Touch every tensor's first and last byte: offsets and sizes were checked against the file.
  volatile uint8_t sink = 0;
  for (const GgufTensor& t : (*gguf)->tensors()) {
    if (t.bytes == 0) continue;
    sink = sink + static_cast<const uint8_t*>(t.data)[0] +
           static_cast<const uint8_t*>(t.data)[t.bytes - 1];
  }
  absl::StatusOr<VocabData> vocab = VocabFromGguf(**gguf);
  if (vocab.ok()) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Create(*std::move(vocab));
    if (tokenizer.ok()) {
      absl::StatusOr<std::vector<int32_t>> ids =
          (*tokenizer)->Encode("Hello, world! <|im_start|> 123", true, true);
      if (ids.ok()) (*tokenizer)->Decode(*ids);
    }
  }
  gguf->reset();
  LoadGgufModel(path).IgnoreError();
  return 0;
}
