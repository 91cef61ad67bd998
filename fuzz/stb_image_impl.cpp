// stb_image's decoder compiled here with the fuzzer's coverage and ASan, from the same Debian header
// (libstb-dev) that libstb.so is built from: these definitions take precedence over the shared library's, so
// decode_image runs the same code, now instrumented (an uninstrumented decoder gives libFuzzer no guidance).
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
