// The subcommands of loractl, one function per command (each in loractl_<name>.cc). Adding a
// command: declare its Run function here, implement it, add a row to the table in loractl.cc.
#pragma once

#include "tools/loractl_cli.h"

namespace lorad::loractl {

// `loractl health`: prints SERVING / NOT_SERVING / ...; exit 0 only when SERVING.
int RunHealth(const Invocation& invocation);

}  // namespace lorad::loractl
