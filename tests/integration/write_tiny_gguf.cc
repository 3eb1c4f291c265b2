// write_tiny_gguf PATH: writes the tiny random llama GGUF of tests/fixtures (seed 1) to PATH, for
// tests that are not C++ (examples/python_client). Exit 0 on success, 1 on failure, 2 on usage.
#include <cstdio>
#include <string>

#include "tests/fixtures/tiny_model.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_tiny_gguf PATH\n");
    return 2;
  }
  const absl::Status status =
      lorad::testing::WriteTinyGguf(lorad::testing::TinyModelOptions(), argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "write_tiny_gguf: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
