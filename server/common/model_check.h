// Startup check of the --model path: it exists, is readable and looks like a model we can load.
// Only the cheap checks; parsing the model is the engine's job (engine/model).
#pragma once

#include <string>

#include "absl/status/status.h"

namespace lorad::server {

// OK if `path` is a readable file starting with the GGUF magic, or a directory with a readable
// config.json (a Hugging Face model directory). NOT_FOUND if it does not exist,
// PERMISSION_DENIED if it cannot be read, INVALID_ARGUMENT if it is neither format. Messages
// start with the path.
absl::Status CheckModelPath(const std::string& path);

}  // namespace lorad::server
