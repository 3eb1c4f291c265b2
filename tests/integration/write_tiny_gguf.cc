// write_tiny_gguf PATH [ADAPTER_DIR]: writes the tiny random llama GGUF of tests/fixtures (seed 1)
// to PATH, and with ADAPTER_DIR a tiny PEFT adapter for it there, for tests that are not C++
// (examples/python_client, tests/integration/openai_client_test.py). Exit 0 on success, 1 on
// failure, 2 on usage.
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/fixtures/tiny_adapter.h"
#include "tests/fixtures/tiny_model.h"

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: write_tiny_gguf PATH [ADAPTER_DIR]\n");
    return 2;
  }
  absl::Status status = lorad::testing::WriteTinyGguf(lorad::testing::TinyModelOptions(), argv[1]);
  if (status.ok() && argc == 3) {
    std::filesystem::create_directories(argv[2]);
    lorad::testing::TinyAdapterOptions adapter;
    adapter.b_stddev = 0.5f;
    status =
        lorad::testing::WriteTinyPeftAdapter(lorad::testing::TinyModelOptions(), adapter, argv[2]);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "write_tiny_gguf: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
