cmake_minimum_required(VERSION 3.25)
# The layer check as a script: fails (non-zero exit, one line per problem) when a file under ROOT/loom/
# includes a higher layer or a folder has no layer. Run by every build (target loom_layer_check, which
# each layer library waits for) and by tests/test_layers.cpp on planted trees.
#   cmake -DROOT=/path/to/loom-src [-DSTAMP=file] -P cmake/check_layers.cmake
if(NOT ROOT)
  message(FATAL_ERROR "check_layers.cmake: pass -DROOT=<source folder that holds loom/>")
endif()
if(NOT IS_DIRECTORY "${ROOT}/loom")
  message(FATAL_ERROR "check_layers.cmake: ${ROOT}/loom is not a folder")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/LoomLayers.cmake")
loom_check_layers("${ROOT}" errors)
if(errors)
  list(LENGTH errors n)
  list(JOIN errors "\n  " text)
  message(FATAL_ERROR "layer check: ${n} problem(s) (the table is in cmake/LoomLayers.cmake):\n  ${text}")
endif()
if(STAMP)
  file(TOUCH "${STAMP}")
endif()
