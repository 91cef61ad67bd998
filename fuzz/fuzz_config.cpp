// config.json of a language-model folder: the JSON parse and the two config readers load_language_model
// picks between (loom's lstm-lm / gpt configs and Hugging Face GPT-2 configs). The models themselves are not
// built: their sizes are bounded by the CLI's checks, which the CLI tests cover.
#include <nlohmann/json.hpp>

#include "fuzz_common.h"
#include "loom/models/gpt.h"
#include "loom/models/gpt_hf.h"
#include "loom/models/lstm_lm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(data, data + size);
  } catch (const nlohmann::json::exception&) {
    return 0;  // load_language_model reports this as "not valid JSON" before reading any field
  }
  fuzz::guarded([&] { loom::models::is_gpt2_config(config); });
  fuzz::guarded([&] { loom::models::GPTConfig::from_json(config); });
  fuzz::guarded([&] { loom::models::LSTMLMConfig::from_json(config); });
  return 0;
}
