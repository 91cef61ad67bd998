// Per-sequence decode state and continuous batching: slots of different lengths decoding in one forward
// give the logits (within 1e-5) and greedy tokens of decoding each sequence alone; rows join and leave;
// GenerationSession reproduces models::generate; BatchEngine gives the same temperature-0 text alone and
// batched, cancels, and refuses a full queue; load_run reads a run folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "loom/loom.h"
#include "support/scratch.h"

using namespace loom;

namespace {

std::shared_ptr<models::LanguageModel> small_gpt(int64_t ctx = 32) {
  manual_seed(3);
  auto m = std::make_shared<models::GPT>(models::GPTConfig{.vocab_size = 29, .n_positions = ctx, .n_embd = 32,
                                                           .n_layer = 2, .n_head = 4, .initializer_range = 0.3});
  m->eval();
  return m;
}

std::shared_ptr<models::LanguageModel> small_lstm() {
  manual_seed(4);
  auto m = std::make_shared<models::LSTMLM>(models::LSTMLMConfig{.vocab_size = 29, .embedding = 16, .layers = 2, .hidden = 24});
  m->eval();
  return m;
}

std::vector<int64_t> prompt_of(int64_t len, int64_t salt) {
  std::vector<int64_t> p;
  for (int64_t i = 0; i < len; ++i) p.push_back((i * 7 + salt * 5 + 3) % 29);
  return p;
}

int64_t argmax(const float* p, int64_t n) { return std::max_element(p, p + n) - p; }

// Decodes each prompt alone (the old one-sequence decode_step) for `steps` greedy tokens, keeping each step's logits.
std::vector<std::vector<std::vector<float>>> alone(models::LanguageModel& m, const std::vector<std::vector<int64_t>>& prompts,
                                                   int steps) {
  NoGradGuard ng;
  std::vector<std::vector<std::vector<float>>> out;
  for (const auto& p : prompts) {
    auto st = m.start_decoding(1);
    Tensor l = m.decode_step(*st, tensor(p, {1, int64_t(p.size())})).contiguous();
    std::vector<std::vector<float>> rows;
    for (int s = 0; s < steps; ++s) {
      rows.emplace_back(l.data<float>(), l.data<float>() + l.size(1));
      const int64_t next = argmax(l.data<float>(), l.size(1));
      l = m.decode_step(*st, tensor(std::vector<int64_t>{next}, {1, 1})).contiguous();
    }
    out.push_back(rows);
  }
  return out;
}

// The same prompts through slots: prompt i joins at step i (prefilled in chunks of 3), then all decode
// together, one forward per step for every row that is decoding.
void check_batched_matches_alone(models::LanguageModel& m) {
  const std::vector<std::vector<int64_t>> prompts = {prompt_of(5, 0), prompt_of(1, 1), prompt_of(11, 2), prompt_of(8, 3)};
  const int steps = 6;
  const auto ref = alone(m, prompts, steps);
  NoGradGuard ng;
  auto st = m.start_slots(5, 0);
  // Slot k holds prompt perm[k]: rows need not be in order.
  const std::vector<int64_t> slot_of = {3, 0, 4, 1};
  std::vector<std::vector<std::vector<float>>> got(prompts.size());
  std::vector<int64_t> next(prompts.size(), -1);
  std::vector<size_t> fed(prompts.size(), 0);
  for (int round = 0; round < 40; ++round) {
    // Prefill: one chunk of at most 3 tokens for the first prompt that has joined and is not fully read.
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (int(i) > round || fed[i] == prompts[i].size()) continue;
      const size_t n = std::min<size_t>(3, prompts[i].size() - fed[i]);
      std::vector<int64_t> chunk(prompts[i].begin() + ptrdiff_t(fed[i]), prompts[i].begin() + ptrdiff_t(fed[i] + n));
      const int64_t row = slot_of[i];
      Tensor l = m.decode_slots(*st, {&row, 1}, tensor(chunk, {1, int64_t(n)})).contiguous();
      fed[i] += n;
      if (fed[i] == prompts[i].size()) {
        got[i].emplace_back(l.data<float>(), l.data<float>() + l.size(1));
        next[i] = argmax(l.data<float>(), l.size(1));
      }
      break;
    }
    // Decode: every prompt that has a pending token and still wants more.
    std::vector<int64_t> rows, ids;
    std::vector<size_t> who;
    for (size_t i = 0; i < prompts.size(); ++i)
      if (next[i] >= 0 && int(got[i].size()) < steps && fed[i] == prompts[i].size() && !got[i].empty()) {
        rows.push_back(slot_of[i]), ids.push_back(next[i]), who.push_back(i);
      }
    if (rows.empty()) continue;
    Tensor l = m.decode_slots(*st, rows, tensor(ids, {int64_t(rows.size()), 1})).contiguous();
    const int64_t V = l.size(1);
    for (size_t k = 0; k < who.size(); ++k) {
      const float* p = l.data<float>() + int64_t(k) * V;
      got[who[k]].emplace_back(p, p + V);
      next[who[k]] = argmax(p, V);
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(got[i].size(), size_t(steps)) << "prompt " << i;
    for (int s = 0; s < steps; ++s) {
      for (size_t v = 0; v < ref[i][s].size(); ++v) ASSERT_NEAR(got[i][s][v], ref[i][s][v], 1e-5) << i << " " << s << " " << v;
      EXPECT_EQ(argmax(got[i][s].data(), int64_t(got[i][s].size())), argmax(ref[i][s].data(), int64_t(ref[i][s].size())));
    }
  }
  // A slot reused by a new sequence starts afresh.
  m.reset_slot(*st, slot_of[0]);
  const int64_t row = slot_of[0];
  Tensor l = m.decode_slots(*st, {&row, 1}, tensor(prompts[0], {1, int64_t(prompts[0].size())})).contiguous();
  for (size_t v = 0; v < ref[0][0].size(); ++v) EXPECT_NEAR(l.data<float>()[v], ref[0][0][v], 1e-5);
}

runtime::Run lm_run(models::LanguageModelPtr m) {
  runtime::Run run;
  run.lm = std::move(m);
  run.tokenizer = text::make_tokenizer("char", "abcdefghijklmnopqrstuvwxyz .,");
  return run;
}

}  // namespace

TEST(SlotDecoding, GptBatchedRowsOfDifferentLengthsMatchDecodingAlone) { check_batched_matches_alone(*small_gpt()); }
TEST(SlotDecoding, LstmBatchedRowsOfDifferentLengthsMatchDecodingAlone) { check_batched_matches_alone(*small_lstm()); }

TEST(SlotDecoding, BadRowsAndOverflowThrow) {
  auto m = small_gpt(8);
  auto st = m->start_slots(2, 0);
  const std::vector<int64_t> dup = {1, 1}, out = {2};
  EXPECT_THROW(m->decode_slots(*st, dup, tensor(std::vector<int64_t>{1, 2}, {2, 1})), Error);
  EXPECT_THROW(m->decode_slots(*st, out, tensor(std::vector<int64_t>{1}, {1, 1})), Error);
  const int64_t row = 0;
  EXPECT_THROW(m->decode_slots(*st, {&row, 1}, tensor(prompt_of(9, 0), {1, 9})), Error);  // past max_len 8
  EXPECT_THROW(m->start_slots(1, 9), Error);
}

TEST(GenerationSession, SameTokensAsModelsGenerateIncludingContextCropping) {
  for (auto m : {small_gpt(12), small_lstm()}) {
    runtime::Run run = lm_run(m);
    runtime::GenerationSession s(run);
    for (double temp : {0.0, 0.9}) {
      const auto p = prompt_of(7, 1);
      models::GenerateOptions go{.max_new_tokens = 20, .sampling = {.temperature = temp, .top_k = 10}, .seed = 5};
      const auto ref = models::generate(*m, {p}, go)[0];  // 7 + 20 tokens crosses the GPT's 12-token context
      std::string streamed;
      auto r = s.generate(p, {.max_new_tokens = 20, .sampling = go.sampling, .seed = 5},
                          [&](const std::string& piece) { streamed += piece; return true; });
      EXPECT_EQ(r.tokens, ref);
      EXPECT_EQ(r.finish_reason, "length");
      EXPECT_EQ(r.prompt_tokens, 7);
      EXPECT_EQ(streamed, r.text);
      EXPECT_EQ(r.text, run.tokenizer->decode(ref));
    }
  }
}

TEST(GenerationSession, StopStringEndsTheTextBeforeIt) {
  runtime::Run run = lm_run(small_gpt());
  runtime::GenerationSession s(run);
  auto full = s.generate("abc", {.max_new_tokens = 12, .sampling = {.temperature = 0}});
  ASSERT_GE(full.text.size(), 6u);
  const std::string stop = full.text.substr(3, 2);
  std::string streamed;
  auto r = s.generate("abc", {.max_new_tokens = 12, .sampling = {.temperature = 0}, .stop = {stop}},
                      [&](const std::string& piece) { streamed += piece; return true; });
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(streamed, r.text);
}

TEST(BatchEngine, TemperatureZeroIsIdenticalAloneAndBatched) {
  for (auto m : {small_gpt(), small_lstm()}) {
    runtime::Run run = lm_run(m);
    std::vector<std::vector<int64_t>> prompts = {prompt_of(3, 0), prompt_of(17, 1), prompt_of(1, 2), prompt_of(9, 3),
                                                 prompt_of(5, 4), prompt_of(12, 5)};
    runtime::GenerationOptions o{.max_new_tokens = 10, .sampling = {.temperature = 0}};
    std::vector<std::vector<int64_t>> solo;
    {
      runtime::BatchEngine e(run, {.slots = 1, .prefill_chunk = 4});
      for (auto& p : prompts) solo.push_back(e.submit({.prompt = p, .options = o})->wait().tokens);
    }
    runtime::BatchEngine e(run, {.slots = 4, .prefill_chunk = 4});  // 6 requests on 4 slots: two wait, then join
    std::vector<std::shared_ptr<runtime::BatchEngine::Handle>> hs;
    for (auto& p : prompts) hs.push_back(e.submit({.prompt = p, .options = o}));
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto r = hs[i]->wait();
      EXPECT_EQ(r.tokens, solo[i]) << "prompt " << i;
      EXPECT_EQ(r.finish_reason, "length");
    }
    const auto st = e.stats();
    EXPECT_EQ(st.requests_finished, 6);
    EXPECT_EQ(st.generated_tokens, 60);
    EXPECT_LT(st.steps, 60);  // batching: fewer forwards than tokens
  }
}

TEST(BatchEngine, CancelFreesTheSlotAndAFullQueueRefuses) {
  runtime::Run run = lm_run(small_lstm());
  runtime::BatchEngine e(run, {.slots = 1, .max_queue = 1});  // one running, one waiting
  int pieces = 0;
  auto a = e.submit({.prompt = prompt_of(3, 0), .options = {.max_new_tokens = 1000000},
                     .on_text = [&](const std::string&) { ++pieces; return true; }});
  ASSERT_TRUE(a);
  while (pieces < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a is in the slot
  auto b = e.submit({.prompt = prompt_of(3, 1), .options = {.max_new_tokens = 3}});
  ASSERT_TRUE(b);                                                  // queued
  EXPECT_FALSE(e.submit({.prompt = prompt_of(3, 2), .options = {.max_new_tokens = 3}}));  // queue full
  a->cancel();
  EXPECT_EQ(a->wait().finish_reason, "cancelled");
  EXPECT_EQ(b->wait().tokens.size(), 3u);  // b got the freed slot
  EXPECT_EQ(e.stats().requests_rejected, 1);
  EXPECT_THROW(e.submit({.prompt = {}, .options = {}}), Error);
  EXPECT_THROW(e.submit({.prompt = {1}, .options = {.sampling = {.top_p = 0}}}), Error);
}

TEST(LoadRun, ReadsAnLmRunFolderAndAClassifierRun) {
  const auto dir = loom::test::scratch("lm_run");
  auto m = small_gpt();
  m->save(dir.string());
  auto tok = text::make_tokenizer("char", "abcdefghijklmnopqrstuvwxyz .,");
  runtime::save_run_tokenizer(*tok, dir.string());
  runtime::Run run = runtime::load_run(dir.string());
  ASSERT_EQ(run.kind, runtime::Run::Kind::language_model);
  EXPECT_EQ(run.id, "lm_run");
  EXPECT_EQ(run.lm->vocab_size(), 29);
  EXPECT_EQ(run.tokenizer->vocab_size(), tok->vocab_size());
  EXPECT_EQ(run.config.value("arch", ""), "gpt");
  runtime::GenerationSession a(run);
  runtime::Run direct = lm_run(m);
  runtime::GenerationSession b(direct);
  EXPECT_EQ(a.generate("abc", {.max_new_tokens = 5, .sampling = {.temperature = 0}}).tokens,
            b.generate("abc", {.max_new_tokens = 5, .sampling = {.temperature = 0}}).tokens);

  const auto cdir = loom::test::scratch("mlp_run");
  std::filesystem::create_directories(cdir);
  auto mlp = models::make_model("mlp", {.channels = 1, .height = 28, .width = 28, .num_classes = 10});
  io::save_safetensors((cdir / "model.safetensors").string(), mlp->state_dict().items(),
                       {{"loom.model", "mlp"}, {"loom.input", "[1,28,28]"}, {"loom.num_classes", "10"},
                        {"loom.classes", "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\"]"},
                        {"loom.normalize", "{\"mean\":[0.5],\"std\":[0.25]}"}});
  runtime::Run c = runtime::load_run(cdir.string());
  ASSERT_EQ(c.kind, runtime::Run::Kind::classifier);
  ASSERT_TRUE(c.classifier);
  EXPECT_EQ(c.classifier->classes.size(), 10u);
  EXPECT_EQ(c.classifier->mean, std::vector<double>{0.5});
  Tensor x = runtime::preprocess_image(full({1, 14, 14}, 0.75), *c.classifier);
  EXPECT_EQ(x.shape(), (Shape{1, 28, 28}));
  EXPECT_NEAR(x.max().item(), 1.0, 1e-6);  // (0.75 - 0.5) / 0.25

  EXPECT_THROW(runtime::load_run(loom::test::scratch("nothing_here").string()), Error);
}

// The checks the CLI's loaders had (issue 17) hold in the library: malformed metadata is named field by field,
// a folder of another family is refused with the command that reads it, non-finite weights are counted.
TEST(LoadRun, ChecksMetadataFamiliesAndNonFiniteWeights) {
  auto expect_error = [](const std::string& dir, const std::string& part) {
    try {
      runtime::load_run(dir);
      ADD_FAILURE() << dir << ": loaded, expected an error with '" << part << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  auto mlp = models::make_model("mlp", {.channels = 1, .height = 28, .width = 28, .num_classes = 10});
  auto save = [&](const std::string& name, const io::Metadata& meta) {
    const auto d = loom::test::scratch(name);
    std::filesystem::create_directories(d);
    io::save_safetensors((d / "model.safetensors").string(), mlp->state_dict().items(), meta);
    return d.string();
  };
  const io::Metadata good = {{"loom.model", "mlp"}, {"loom.input", "[1,28,28]"}, {"loom.num_classes", "10"},
                             {"loom.classes", "[]"}};
  io::Metadata m = good;
  m["loom.num_classes"] = "ten";
  expect_error(save("meta_classes", m), "'loom.num_classes' must be an integer in [1, ");
  m = good;
  m["loom.input"] = "[1,28]";
  expect_error(save("meta_input", m), "'loom.input' must be a JSON array of 3 integers (C, H, W)");
  m = good;
  m["loom.normalize"] = "{\"mean\":[0.5],\"std\":[0]}";
  expect_error(save("meta_norm", m), "'loom.normalize' must be");
  m = good;
  m["loom.classes"] = "[\"a\"]";
  expect_error(save("meta_names", m), "10 names (loom.num_classes)");

  // A seq2seq run folder (config.json names its arch) is not taken for a classifier.
  const std::string s2s = save("seq2seq_run", good);
  { std::ofstream(s2s + "/config.json") << R"({"arch": "seq2seq"})"; }
  expect_error(s2s, "use loom translate");

  // NaN weights: loaded, and reported with the count and the first tensor.
  {
    NoGradGuard ng;
    mlp->state_dict().at("1.weight").narrow(0, 0, 1).fill_(std::nan(""));
  }
  runtime::Run r = runtime::load_run(save("nan_run", good));
  EXPECT_NE(r.nonfinite.find("784 NaN/inf weight value(s) in 1 tensor(s), first '1.weight'"), std::string::npos)
      << r.nonfinite;
  EXPECT_EQ(runtime::nonfinite_weights(models::make_model("mlp", {.channels = 1, .height = 28, .width = 28,
                                                                  .num_classes = 10})->state_dict()), "");
  // The check sums each 1M-value chunk and counts only where the sum is not finite: finite values whose float sum
  // overflows are not reported, +inf and -inf (a NaN sum) both are, and so is one NaN past the first chunk, in f64
  // and bf16 as in f32.
  {
    nn::StateDict sd;
    sd.insert("huge", full({4}, 3e38f));
    Tensor inf_pair = zeros({3}), late_nan = zeros({(int64_t(1) << 20) + 5}), d = zeros({2}, {.dtype = DType::f64});
    Tensor b = zeros({4}, {.dtype = DType::bf16});
    NoGradGuard ng;
    inf_pair.narrow(0, 0, 1).fill_(INFINITY);
    inf_pair.narrow(0, 2, 1).fill_(-INFINITY);
    late_nan.narrow(0, (int64_t(1) << 20) + 3, 1).fill_(std::nan(""));
    d.narrow(0, 1, 1).fill_(std::nan(""));
    b.narrow(0, 0, 2).fill_(INFINITY);
    EXPECT_EQ(runtime::nonfinite_weights(sd), "");
    sd.insert("inf_pair", inf_pair);
    sd.insert("late_nan", late_nan);
    sd.insert("d", d);
    sd.insert("b", b);
    EXPECT_EQ(runtime::nonfinite_weights(sd), "6 NaN/inf weight value(s) in 4 tensor(s), first 'inf_pair' (2 of 3)");
  }
}
