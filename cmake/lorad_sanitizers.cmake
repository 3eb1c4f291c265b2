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
