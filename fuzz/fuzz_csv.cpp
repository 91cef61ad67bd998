// CSV tables: load_csv as `loom train --data csv:FILE --target COL` calls it. The first byte picks the
// options (delimiter, classification, standardisation); the target column is named "y" (the seeds use it).
#include "fuzz_common.h"
#include "loom/data/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::ScratchFile file(".csv");
  if (size < 1) return 0;
  const uint8_t opt = data[0];
  loom::data::CsvOptions o{.target = "y",
                           .delimiter = (opt & 1) ? ';' : ',',
                           .classification = (opt & 2) != 0,
                           .test_fraction = (opt & 4) ? 0.0 : 0.25,
                           .standardize = (opt & 8) != 0,
                           .standardize_target = (opt & 16) != 0 && !(opt & 2)};
  if (opt & 32) o.features = {"a", "b"};
  return fuzz::guarded([&] { loom::data::load_csv(file.write(data + 1, size - 1), o); });
}
