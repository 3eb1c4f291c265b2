// What binary this is: version, source commit and compiler, fixed at build time. Exported as the
// lorad_build_info metric and printed by --version.
#pragma once

namespace lorad::server {

struct BuildInfo {
  // Project version from CMake, e.g. "0.1.0".
  const char* version;
  // Short git commit of the source tree at configure time, or "unknown".
  const char* git_commit;
  // Compiler and version, e.g. "gcc 12.2.0".
  const char* compiler;
};

// The build's info; static storage, thread-safe.
const BuildInfo& GetBuildInfo();

}  // namespace lorad::server
