#include "server/common/build_info.h"

#ifndef LORAD_VERSION
#define LORAD_VERSION "unknown"
#endif
#ifndef LORAD_GIT_COMMIT
#define LORAD_GIT_COMMIT "unknown"
#endif

#if defined(__clang__)
#define LORAD_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define LORAD_COMPILER "gcc " __VERSION__
#else
#define LORAD_COMPILER "unknown"
#endif

namespace lorad::server {

const BuildInfo& GetBuildInfo() {
  static constexpr BuildInfo kBuildInfo = {LORAD_VERSION, LORAD_GIT_COMMIT, LORAD_COMPILER};
  return kBuildInfo;
}

}  // namespace lorad::server
