# loom's dependencies that ship no CMake package of their own (OpenBLAS, stb), as imported targets
# loom::openblas and loom::stb. Included both by loom's own build and by the installed loomConfig.cmake,
# so the exported targets name these targets instead of this machine's absolute library paths.
#   include(cmake/loomDependencies.cmake)   # then: target_link_libraries(x PRIVATE loom::openblas)
if(NOT TARGET loom::openblas)
  # OpenBLAS built on OpenMP (Debian's libopenblas-openmp-dev): BLAS calls then share loom's OpenMP thread
  # pool instead of a second pthread pool fighting it for the same cores. This variant is preferred over
  # whatever the libopenblas.so alternative points at.
  find_path(LOOM_CBLAS_INCLUDE cblas.h PATHS /usr/include/x86_64-linux-gnu/openblas-openmp NO_DEFAULT_PATH)
  find_path(LOOM_CBLAS_INCLUDE cblas.h PATH_SUFFIXES openblas)
  find_library(LOOM_OPENBLAS NAMES openblas PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp NO_DEFAULT_PATH)
  find_library(LOOM_OPENBLAS NAMES openblas)
  if(NOT LOOM_OPENBLAS)
    message(FATAL_ERROR "loom needs OpenBLAS: found no libopenblas (install libopenblas-openmp-dev)")
  endif()
  add_library(loom::openblas UNKNOWN IMPORTED)
  set_target_properties(loom::openblas PROPERTIES IMPORTED_LOCATION "${LOOM_OPENBLAS}")
endif()
if(NOT TARGET loom::stb)
  find_path(LOOM_STB_INCLUDE stb/stb_image.h)
  find_library(LOOM_STB NAMES stb)
  if(NOT LOOM_STB)
    message(FATAL_ERROR "loom needs stb (image decoding): found no libstb (install libstb-dev)")
  endif()
  add_library(loom::stb UNKNOWN IMPORTED)
  set_target_properties(loom::stb PROPERTIES IMPORTED_LOCATION "${LOOM_STB}")
endif()
if(NOT TARGET loom::sodium)
  # libsodium (libsodium-dev): loom/trust's hashes, signatures and encryption.
  find_library(LOOM_SODIUM NAMES sodium)
  if(NOT LOOM_SODIUM)
    message(FATAL_ERROR "loom needs libsodium (run-folder manifests, signatures, encryption): install libsodium-dev")
  endif()
  add_library(loom::sodium UNKNOWN IMPORTED)
  set_target_properties(loom::sodium PROPERTIES IMPORTED_LOCATION "${LOOM_SODIUM}")
endif()
