// The subcommands of loractl, one function per command (each in loractl_<name>.cc). Adding a
// command: declare its Run function here, implement it, add a row to the table in loractl.cc.
#pragma once

#include "tools/loractl_cli.h"

namespace lorad::loractl {

// `loractl health`: prints SERVING / NOT_SERVING / ...; exit 0 only when SERVING.
int RunHealth(const Invocation& invocation);

// `loractl generate [PROMPT]`: streams a completion to stdout; exit 1 with the gRPC code on
// stderr when the RPC fails.
int RunGenerate(const Invocation& invocation);

// `loractl adapters list|get ID|load ID SOURCE [--pin]|unload ID`.
int RunAdapters(const Invocation& invocation);

// `loractl jobs create|get ID|list|cancel ID|watch ID`: fine-tune jobs; watch (and create
// --watch) exits 0 only when the job succeeds.
int RunJobs(const Invocation& invocation);

// `loractl tokenize [TEXT]`: prints the token ids.
int RunTokenize(const Invocation& invocation);

}  // namespace lorad::loractl
