# Compiler flags for LORAD_SANITIZE and LORAD_FUZZ (see the top-level CMakeLists.txt). Every
# C and C++ object of the build is instrumented; prebuilt libraries (LibTorch, gRPC, protobuf)
# are not, which ASan and UBSan tolerate and TSan reports through suppressions
# (scripts/sanitizers/tsan.supp).
if(LORAD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "LORAD_FUZZ needs clang (-DCMAKE_CXX_COMPILER=clang++)")
  endif()
  if(LORAD_BUILD_TESTS)
    message(FATAL_ERROR "LORAD_FUZZ builds only the fuzz targets: add -DLORAD_BUILD_TESTS=OFF")
  endif()
  set(LORAD_SANITIZE address)
  add_compile_options($<$<COMPILE_LANGUAGE:C,CXX>:-fsanitize=fuzzer-no-link>)
endif()

if(LORAD_SANITIZE STREQUAL "address")
  set(lorad_sanitize_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined)
elseif(LORAD_SANITIZE STREQUAL "thread")
  set(lorad_sanitize_flags -fsanitize=thread)
elseif(NOT LORAD_SANITIZE STREQUAL "")
  message(FATAL_ERROR "LORAD_SANITIZE must be address, thread or empty, not '${LORAD_SANITIZE}'")
endif()

if(lorad_sanitize_flags)
  foreach(flag ${lorad_sanitize_flags} -fno-omit-frame-pointer)
    add_compile_options($<$<COMPILE_LANGUAGE:C,CXX>:${flag}>)
  endforeach()
  add_link_options(${lorad_sanitize_flags})
  # Asserts on, light optimization: reports come with usable stacks.
  set(CMAKE_C_FLAGS_RELWITHDEBINFO "-O1 -g")
  set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O1 -g")
endif()

# TSan sees synchronization only in instrumented code, and Debian's libabsl_synchronization is
# not: every access guarded by an absl::Mutex looked like a race. LORAD_TSAN_ABSL_SOURCE (the
# Debian abseil source tree that scripts/sanitizers/fetch_absl_source.sh unpacks) compiles
# absl's synchronization sources, against the installed headers, into every executable; they
# interpose the shared library's Mutex, CondVar and Notification with instrumented ones that
# report their locks to TSan.
set(LORAD_TSAN_ABSL_SOURCE "" CACHE PATH "abseil source tree for an instrumented absl::Mutex (TSan)")
if(LORAD_SANITIZE STREQUAL "thread" AND LORAD_TSAN_ABSL_SOURCE)
  set(sync "${LORAD_TSAN_ABSL_SOURCE}/absl/synchronization")
  add_library(lorad_tsan_absl_sync STATIC
    ${sync}/mutex.cc ${sync}/notification.cc ${sync}/blocking_counter.cc ${sync}/barrier.cc
    ${sync}/internal/per_thread_sem.cc ${sync}/internal/waiter.cc
    ${sync}/internal/create_thread_identity.cc ${sync}/internal/graphcycles.cc)
  # Built as Debian built it (NDEBUG: no deadlock detection by default).
  target_compile_definitions(lorad_tsan_absl_sync PRIVATE NDEBUG)
  link_libraries(lorad_tsan_absl_sync)
elseif(LORAD_SANITIZE STREQUAL "thread")
  message(WARNING "LORAD_TSAN_ABSL_SOURCE is not set: TSan will report absl::Mutex-guarded "
                  "accesses as races (run scripts/sanitizers/fetch_absl_source.sh)")
endif()
