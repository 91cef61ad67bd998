# The layer table: one line per folder of loom/, "<folder>: <layers it uses directly>", lowest first.
# A file in a layer may include headers of its own layer and of every layer reachable through the
# "uses" lists (the transitive closure); anything else is an upward (or sideways) include and fails the
# layer check. Each line also becomes one static library, loom::<folder>, linked to the libraries it
# uses, so link dependencies point only downward.
#
# Adding a folder (say loom/quant/) means adding one line here, e.g. "quant: ops"; a folder of loom/
# that has no line is a configure error. Sub-folders (backend/cpu, dist/mpi) belong to their parent.
#
#   include(cmake/LoomLayers.cmake)
#   loom_layer_closure(models deps)   # -> core backend autograd ops nn io
#   loom_check_layers(${CMAKE_SOURCE_DIR} errors)
set(LOOM_LAYERS
  "core:"
  "backend: core"
  "autograd: core"
  "ops: backend autograd"
  "nn: ops"
  "optim: ops"
  "data: ops"
  "io: data"
  "quant: nn"
  "compress: nn"
  "models: nn io quant"
  "text: data io"
  "trust: io"
  "train: models optim data text io trust"
  "dist: nn optim data"
  "explain: train"
  "dataquality: train"
  "privacy: nn data dist trust train"
  "runtime: models text io trust compress"
  "export: runtime"
  "serve: runtime"
)
# Layers kept out of the loom::loom umbrella because they bring an optional dependency (dist: MPI;
# serve: cpp-httplib). A consumer asks for them by name: find_package(loom COMPONENTS dist) + loom::dist.
set(LOOM_OPTIONAL_LAYERS dist privacy serve)
# Layers built here (for the loom command and the tests) but not installed: serve, the HTTP server of
# `loom serve`, whose cpp-httplib dependency the installed package does not carry.
set(LOOM_UNINSTALLED_LAYERS serve)

# LOOM_LAYER_NAMES: the folders in table order; LOOM_LAYER_USES_<name>: its direct uses.
macro(loom_parse_layers)
  set(LOOM_LAYER_NAMES "")
  foreach(entry IN LISTS LOOM_LAYERS)
    string(REGEX MATCH "^([a-z0-9_]+):(.*)$" _m "${entry}")
    if(NOT _m)
      message(FATAL_ERROR "cmake/LoomLayers.cmake: bad LOOM_LAYERS line '${entry}': expected '<folder>: <uses...>'")
    endif()
    set(_name ${CMAKE_MATCH_1})
    separate_arguments(_uses UNIX_COMMAND "${CMAKE_MATCH_2}")
    foreach(u IN LISTS _uses)
      if(NOT u IN_LIST LOOM_LAYER_NAMES)
        message(FATAL_ERROR "cmake/LoomLayers.cmake: layer '${_name}' uses '${u}', which is not listed above it")
      endif()
    endforeach()
    list(APPEND LOOM_LAYER_NAMES ${_name})
    set(LOOM_LAYER_USES_${_name} ${_uses})
  endforeach()
endmacro()
loom_parse_layers()

# Every layer `layer` may use (directly or through others), without itself.
function(loom_layer_closure layer out)
  set(todo ${LOOM_LAYER_USES_${layer}})
  set(seen "")
  while(todo)
    list(POP_FRONT todo l)
    if(NOT l IN_LIST seen)
      list(APPEND seen ${l})
      list(APPEND todo ${LOOM_LAYER_USES_${l}})
    endif()
  endwhile()
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

# Scans root/loom/ and sets `out` to one message per problem: a folder with no layer, a file that includes
# a higher layer, a folder that is no layer, or the umbrella header.
function(loom_check_layers root out)
  set(errors "")
  list(JOIN LOOM_LAYER_NAMES " " known)
  file(GLOB children LIST_DIRECTORIES true "${root}/loom/*")
  foreach(c IN LISTS children)
    get_filename_component(name "${c}" NAME)
    if(IS_DIRECTORY "${c}" AND NOT name IN_LIST LOOM_LAYER_NAMES)
      list(APPEND errors "loom/${name}/ has no layer: add a line \"${name}: <layers it uses>\" to LOOM_LAYERS in cmake/LoomLayers.cmake (known layers: ${known})")
    endif()
  endforeach()
  foreach(layer IN LISTS LOOM_LAYER_NAMES)
    loom_layer_closure(${layer} allowed)
    list(APPEND allowed ${layer})
    list(JOIN allowed " " allowed_text)
    file(GLOB_RECURSE files "${root}/loom/${layer}/*.h" "${root}/loom/${layer}/*.cpp")
    foreach(f IN LISTS files)
      file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]loom/")
      file(RELATIVE_PATH rel "${root}" "${f}")
      foreach(line IN LISTS lines)
        string(REGEX MATCH "[<\"]loom/([^\">]*)[\">]" _m "${line}")
        set(target "${CMAKE_MATCH_1}")
        if(NOT target MATCHES "/")
          list(APPEND errors "${rel} includes loom/${target}, the umbrella header; include the headers it needs")
          continue()
        endif()
        string(REGEX REPLACE "/.*" "" to "${target}")
        if(NOT to IN_LIST LOOM_LAYER_NAMES)
          list(APPEND errors "${rel} includes loom/${target}, in folder '${to}', which is no layer of LOOM_LAYERS")
        elseif(NOT to IN_LIST allowed)
          list(APPEND errors "${rel} (layer ${layer}) includes loom/${target} (layer ${to}), which is not below ${layer} (${layer} may use only: ${allowed_text})")
        endif()
      endforeach()
    endforeach()
  endforeach()
  set(${out} "${errors}" PARENT_SCOPE)
endfunction()
