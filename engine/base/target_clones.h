// LORAD_TARGET_CLONES(...): GCC function multiversioning (target_clones), one clone per listed
// ISA, picked once by the loader through an ifunc resolver. Empty (only the default clone) where
// GCC cannot multiversion (clang, non-x86) and in ThreadSanitizer builds: GCC instruments the
// resolver, which runs during relocation, before the TSan runtime exists, and crashes.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define LORAD_TARGET_CLONES(...) __attribute__((target_clones(__VA_ARGS__)))
#else
#define LORAD_TARGET_CLONES(...)
#endif
