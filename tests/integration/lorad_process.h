// Test helpers shared by the integration tests: the tiny GGUF model written once per test
// binary, a real `lorad` started on ephemeral ports, and client channels to it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "tests/integration/subprocess.h"

namespace lorad::testing {

inline constexpr char kLorad[] = LORAD_BINARY;
inline constexpr char kLoractl[] = LORACTL_BINARY;

// A directory private to this test process (ctest runs test cases as parallel processes),
// removed at exit. Not thread-safe; call from the test thread.
const std::string& TestDir();

// Path of a tiny random llama GGUF (WriteTinyGguf, seed 1) under TestDir(); written on first
// use. Not thread-safe; call from the test thread.
const std::string& TinyModelPath();

// A lorad started on 127.0.0.1:0 for gRPC and metrics, with the bound addresses it printed.
struct RunningLorad {
  std::unique_ptr<Subprocess> process;
  std::string grpc_address;  // "127.0.0.1:NNNNN"
  int metrics_port = 0;
  int http_port = 0;  // the OpenAI-compatible HTTP front

  // An insecure channel to grpc_address.
  std::shared_ptr<grpc::Channel> Channel() const;
};

// Starts lorad on the tiny model (unless `extra_args` has --model) with `extra_args` and waits
// for its "lorad ready" line. Use with ASSERT_NO_FATAL_FAILURE.
void StartLorad(const std::vector<std::string>& extra_args, RunningLorad* lorad);

// Sends SIGTERM and expects exit code 0 within 15 s. Use with EXPECT_NO_FATAL_FAILURE.
void StopLorad(RunningLorad* lorad);

}  // namespace lorad::testing
