// Fuzz target: a safetensors file through SafetensorsFile::Open, then every tensor read end to
// end (sizes and offsets were validated, so each read must stay inside the file).
#include <cstddef>
#include <cstdint>

#include "engine/base/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lorad;
  const std::string path =
      fuzz::WriteScratchFile("input.safetensors", {reinterpret_cast<const char*>(data), size});
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  volatile uint8_t sink = 0;
  size_t total = 0;
  for (const SafetensorsTensor& t : (*file)->tensors()) {
    const auto* bytes = static_cast<const uint8_t*>(t.data);
    for (size_t i = 0; i < t.bytes; ++i) sink = sink ^ bytes[i];
    total += t.bytes;
    if ((*file)->Find(t.name) == nullptr) __builtin_trap();  // every listed tensor is findable
  }
  if (total > size) __builtin_trap();  // tensors tile the data section: no byte counted twice
  return 0;
}
