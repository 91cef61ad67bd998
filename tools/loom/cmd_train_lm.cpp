// loom train --model lstm-lm|gpt: a language model on a text corpus with the step-based LM loop
// (loom/train/lm_trainer.h). The run folder holds model.safetensors + config.json (the model, loadable by
// generate/eval), the tokenizer, metrics.csv and checkpoint.safetensors (for --resume).
#include <algorithm>
#include <chrono>
#include <set>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "train_setup.h"
#include "lm_common.h"
#include "loom/core/limits.h"
#include "loom/io/json_fields.h"
#include "loom/io/run_file.h"
#include "loom/backend/backend.h"
#include "loom/core/generator.h"
#include "loom/data/file_util.h"
#include "loom/io/safetensors.h"
#include "loom/models/language_model.h"
#include "loom/nn/repr.h"
#include "loom/optim/optim.h"
#include "loom/text/corpus.h"
#include "loom/text/lm_dataset.h"
#include "loom/text/utf8_check.h"
#include "loom/train/checkpoint.h"
#include "loom/train/lm_trainer.h"

namespace loom::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The language-model options and the common ones the LM code reads (copied from TrainConfig by sync()).
struct LMConfig {
  std::string model, data, tokenizer = "char", optimizer, scheduler, precision = "f32", out;
  std::string errors = "replace";  // invalid UTF-8 in the corpus: warn (read as U+FFFD) or strict
  int64_t embedding = 64, layers = 2, hidden = 256, heads = 4, width = 128, context = 100, batch_size = 32;
  int64_t steps = 100, grad_accum = 1, warmup = 0, threads = 0, seed = 0, log_every = 0, eval_every = 0;
  int64_t eval_tokens = 0, checkpoint_every = 0;
  double lr = 0, weight_decay = 0, min_lr = -1, clip_grad_norm = 0, dropout = 0, init_std = 0.02;
  double momentum = 0;
  bool resume = false, json = false, activation_checkpointing = false, nesterov = false;

  void sync(const TrainConfig& t) {
    model = t.model, data = t.data, optimizer = t.optimizer, scheduler = t.scheduler, out = t.out;
    batch_size = t.batch_size, steps = t.steps, threads = t.threads, seed = t.seed, log_every = t.log_every;
    checkpoint_every = t.checkpoint_every, lr = t.lr, weight_decay = t.weight_decay, momentum = t.momentum;
    clip_grad_norm = t.clip_grad_norm, resume = t.resume, json = t.json, nesterov = t.nesterov;
  }
};

class LMTask final : public TrainTask {
 public:
  explicit LMTask(const LMExtension* ext = nullptr) : ext_(ext) {}
  void defaults(TrainConfig& t) const override {
    t.data = "kjv", t.batch_size = 32, t.steps = 100, t.checkpoint_every = 0;
  }
  void declare(Args& a, TrainConfig& t) override;
  void finish(const Args& a, TrainConfig& t) override;
  int run(const TrainConfig& t) override;

 private:
  LMConfig c;
  const LMExtension* ext_;
};

void LMTask::declare(Args& a, TrainConfig&) {
  a.option("--tokenizer", &c.tokenizer, "SPEC", "char (vocabulary from the corpus, default), gpt2 or bpe:PATH");
  a.choice("--errors", &c.errors, {"replace", "strict"},
           "invalid UTF-8 in the corpus: replace (default; read as U+FFFD, with a warning naming the byte offset) "
           "or strict (stop with an error)");
  a.option("--embedding", &c.embedding, "E", "lstm-lm: embedding size (default 64)", {.min = 1, .max = double(limits::kMaxWidth)});
  a.option("--layers", &c.layers, "L", "LSTM / transformer layers (default 2)", {.min = 1, .max = double(limits::kMaxLayers)});
  a.option("--hidden", &c.hidden, "H", "lstm-lm: LSTM hidden size (default 256)", {.min = 1, .max = double(limits::kMaxWidth)});
  a.option("--heads", &c.heads, "N", "gpt: attention heads (default 4)", {.min = 1, .max = double(limits::kMaxWidth)});
  a.option("--width", &c.width, "W", "gpt: embedding width (default 128)", {.min = 1, .max = double(limits::kMaxWidth)});
  a.option("--init-std", &c.init_std, "X",
           "gpt: std of the normal weight init (default 0.02 as GPT-2; ~0.05 is PyTorch's default Linear init "
           "at width 128, what the W3 reference script trains from)",
           {.min = 0, .exclusive_min = true});
  a.flag("--activation-checkpointing", &c.activation_checkpointing,
         "gpt: recompute each block in backward instead of keeping its activations");
  a.option("--dropout", &c.dropout, "P", "dropout probability (default 0)", {.min = 0, .max = 0.99});
  a.option("--context", &c.context, "T", "tokens per training block (default 100)", {.min = 1, .max = 1 << 20});
  a.option("--grad-accum", &c.grad_accum, "N", "micro-batches per optimizer step (default 1)", {.min = 1, .max = 1 << 16});
  a.option("--warmup", &c.warmup, "N", "linear warmup steps from 0 to --lr (default 0)", {.min = 0});
  a.option("--min-lr", &c.min_lr, "X", "cosine: the final lr (default lr / 10)", {.min = 0});
  a.choice("--precision", &c.precision, {"f32", "bf16"}, "f32 (default) or bf16 autocast for forward + loss");
  a.option("--eval-every", &c.eval_every, "N", "validation loss every N steps (default: at the end)", {.min = 0});
  a.option("--eval-tokens", &c.eval_tokens, "N", "validate on the first N tokens of the split (default: all)", {.min = 0});
}

void LMTask::finish(const Args& a, TrainConfig& t) {
  c.sync(t);
  if (!c.data.starts_with("text:") && c.data != "kjv") throw UsageError("--data must be kjv or text:FILE, got '" + c.data + "'");
  if (c.data.starts_with("text:") && !fs::is_regular_file(c.data.substr(5)))
    throw UsageError("--data " + c.data + ": no such file");
  if (c.tokenizer != "char" && c.tokenizer != "gpt2" && !c.tokenizer.starts_with("bpe:") && !c.tokenizer.starts_with("gpt2:"))
    throw UsageError("--tokenizer must be char, gpt2 or bpe:PATH, got '" + c.tokenizer + "'");
  if (!a.given("--lr")) c.lr = c.model == "gpt" ? 1e-3 : 2e-3;
  if (!a.given("--weight-decay") && c.optimizer == "adamw") c.weight_decay = 0.1;
  if (c.min_lr < 0) c.min_lr = c.lr / 10;
  // A cosine that ends above its start would raise the lr through the run: a typo, not a schedule.
  if (c.scheduler == "cosine" && c.min_lr > c.lr)
    throw UsageError("--min-lr " + fmt_number(c.min_lr) + " is above --lr " + fmt_number(c.lr) +
                     ": the cosine schedule decays from --lr down to --min-lr");
  if (a.given("--min-lr") && c.scheduler != "cosine")
    throw UsageError("--min-lr applies to --scheduler cosine only");
  if (c.warmup >= c.steps && c.warmup > 0) throw UsageError("--warmup must be less than --steps");
  if (c.model == "gpt" && c.width % c.heads != 0) throw UsageError("--width must be a multiple of --heads");
  if (c.model != "gpt" &&
      (a.given("--heads") || a.given("--width") || a.given("--init-std") || c.activation_checkpointing))
    throw UsageError("--heads, --width, --init-std and --activation-checkpointing apply to --model gpt only");
  if (c.model == "gpt" && (a.given("--embedding") || a.given("--hidden")))
    throw UsageError("--embedding and --hidden apply to --model lstm-lm (gpt uses --width)");
  if (c.out.empty()) c.out = "runs/" + c.model + "-" + (c.data == "kjv" ? std::string("kjv") : fs::path(c.data.substr(5)).stem().string());
  t.lr = c.lr, t.weight_decay = c.weight_decay, t.out = c.out;
}

json model_config(const LMConfig& c, int64_t vocab) {
  if (c.model == "lstm-lm")
    return {{"arch", "lstm-lm"}, {"vocab_size", vocab}, {"embedding", c.embedding}, {"layers", c.layers},
            {"hidden", c.hidden}, {"dropout", c.dropout}};
  // GPT: loom's names and Hugging Face GPT-2's, so either reading works.
  return {{"arch", "gpt"},          {"vocab_size", vocab},  {"layers", c.layers},   {"heads", c.heads},
          {"width", c.width},       {"context", c.context}, {"dropout", c.dropout}, {"n_layer", c.layers},
          {"n_head", c.heads},      {"n_embd", c.width},    {"n_positions", c.context}, {"block_size", c.context},
          {"activation_checkpointing", c.activation_checkpointing}, {"initializer_range", c.init_std}};
}

// What a resumed run must share with the checkpoint (steps and logging may change), with loom distill's options.
json run_record(const LMConfig& c, const LMExtension* ext) {
  json r = {{"model", c.model},           {"data", c.data},         {"tokenizer", c.tokenizer},
          {"context", c.context},       {"batch_size", c.batch_size}, {"grad_accum", c.grad_accum},
          {"optimizer", c.optimizer},   {"lr", c.lr},             {"weight_decay", c.weight_decay},
          {"scheduler", c.scheduler},   {"warmup", c.warmup},     {"min_lr", c.min_lr},
          {"clip_grad_norm", c.clip_grad_norm}, {"precision", c.precision}, {"seed", c.seed},
          // the cosine's length is part of the schedule; without one, --steps may grow on resume
          {"cosine_steps", c.scheduler == "cosine" ? c.steps : 0},
          // the architecture, so a resume with other sizes names the option instead of a state_dict mismatch
          {"layers", c.layers}, {"dropout", c.dropout},
          {"embedding", c.model == "lstm-lm" ? c.embedding : 0}, {"hidden", c.model == "lstm-lm" ? c.hidden : 0},
          {"width", c.model == "gpt" ? c.width : 0}, {"heads", c.model == "gpt" ? c.heads : 0},
          {"init_std", c.model == "gpt" ? c.init_std : 0.0},
          // sgd's momentum (recorded since the one training spine; older checkpoints had none)
          {"momentum", c.momentum}, {"nesterov", c.nesterov}};
  if (ext) r.update(ext->config);
  return r;
}

// The options that make a resumed run a different one, most fundamental first (a changed --model also changes the
// default --lr: report the model). Keys an older checkpoint lacks (the architecture) are not compared.
ResumeRecord lm_record() {
  ResumeRecord r;
  r.order = {"model",     "data",         "tokenizer", "layers",   "embedding", "hidden",   "width",
             "heads",     "context",      "dropout",   "init_std", "batch_size", "grad_accum", "optimizer",
             "lr",        "weight_decay", "momentum",  "nesterov", "scheduler", "warmup",   "min_lr",
             "cosine_steps", "clip_grad_norm", "precision", "seed"};
  r.skip_if_missing = {"layers", "embedding", "hidden", "width", "heads", "dropout", "init_std"};
  r.absent = {{"momentum", 0.0}, {"nesterov", false}};
  r.flags = {{"cosine_steps", "--steps"}};
  r.explain = {{"cosine_steps", "the length of its --scheduler cosine"}};
  return r;
}

std::unique_ptr<optim::LRScheduler> make_lm_schedule(const LMConfig& c, optim::Optimizer& opt) {
  if (c.scheduler == "none" && c.warmup == 0) return nullptr;
  return std::make_unique<optim::LinearWarmupCosine>(
      opt, optim::LinearWarmupCosineOptions{.warmup_steps = c.warmup,
                                            .total_steps = c.scheduler == "cosine" ? c.steps : 1LL << 62,
                                            .min_lr = c.scheduler == "cosine" ? c.min_lr : c.lr});
}

}  // namespace

int LMTask::run(const TrainConfig& t) {
  const Say say{.json = c.json};
  if (c.threads > 0) set_num_threads(int(c.threads));
  manual_seed(uint64_t(c.seed));
  const std::string ckpt = (fs::path(c.out) / "checkpoint.safetensors").string();
  const bool resuming = c.resume && fs::exists(ckpt);
  std::vector<std::string> resume_notes;
  if (c.resume && !resuming)
    say({{"event", "note"}, {"message", "no checkpoint in " + c.out + "; starting from scratch"}},
        "no checkpoint in " + c.out + "; starting from scratch");
  if (resuming) {  // refuse a resume that would silently be a different run
    const train::Checkpoint saved = train::load_checkpoint(ckpt);
    auto it = saved.metadata.find("loom.lm_run");
    LOOM_CHECK(it != saved.metadata.end(), ckpt, ": not a language-model checkpoint made by loom train");
    json was;
    try {
      was = io::parse_json(it->second, ckpt + " (loom.lm_run)");
    } catch (const std::exception&) {
      LOOM_FAIL(ckpt, ": its loom.lm_run metadata is not valid JSON (the checkpoint is corrupt)");
    }
    LOOM_CHECK(was.is_object(), ckpt, ": its loom.lm_run metadata is not a JSON object (the checkpoint is corrupt)");
    resume_notes = check_resume(was, run_record(c, ext_), ckpt, lm_record());
  }

  const std::string corpus = text::load_corpus(c.data);
  text::check_utf8(corpus, c.data.starts_with("text:") ? c.data.substr(5) : c.data, text::parse_utf8_errors(c.errors));
  text::TokenizerPtr tok = resuming ? load_run_tokenizer(c.out) : text::make_tokenizer(c.tokenizer, corpus);
  std::vector<int64_t> ids = tok->encode(corpus);
  text::LMData data = text::make_lm_data(ids, c.context, uint64_t(c.seed));
  auto model = models::make_language_model(model_config(c, tok->vocab_size()), "the --model " + c.model + " options");
  // Training holds the weights, their gradients and two Adam moments (4 copies), plus activations.
  check_fits_in_memory(16.0 * double(model->num_parameters()) +
                           4.0 * double(c.batch_size) * double(c.context) *
                               double(c.model == "gpt" ? c.width * 16 * c.layers : c.hidden * 8 * c.layers) +
                           // a GPT's attention weights, (B, heads, T, T) per layer, kept for backward
                           (c.model == "gpt" ? 4.0 * double(c.batch_size) * double(c.heads) * double(c.context) *
                                                   double(c.context) * double(c.layers)
                                             : 0.0),
                       "training " + c.model + " (" + std::to_string(model->num_parameters()) + " parameters, batch " +
                           std::to_string(c.batch_size) + "x" + std::to_string(c.context) + ")");
  auto opt = make_optimizer(t, model->parameters(), {.adamw_decay_matrices_only = true});
  auto sched = make_lm_schedule(c, *opt);

  json cfg_json = model->config();
  json train_json = run_record(c, ext_);
  train_json["steps"] = c.steps;
  train_json["threads"] = get_num_threads();
  train::LMTrainOptions o{.steps = c.steps,
                          .batch_size = c.batch_size,
                          .grad_accum = c.grad_accum,
                          .clip_grad_norm = c.clip_grad_norm,
                          .bf16 = c.precision == "bf16",
                          .log_every = c.log_every,
                          .eval_every = c.eval_every,
                          .eval_tokens = c.eval_tokens,
                          .out = c.out,
                          .checkpoint_every = c.checkpoint_every,
                          .checkpoint_metadata = {{"loom.lm_run", run_record(c, ext_).dump()}}};
  o.on_log = [&](const train::LMStepLog& r) {
    json e = {{"event", "step"}, {"step", r.step}, {"loss", r.loss}, {"lr", r.lr}, {"tokens_per_s", r.tokens_per_s}};
    char buf[200];
    std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %.4f  lr %.3g  %.0f tokens/s", (long long)r.step,
                  (long long)c.steps, r.loss, r.lr, r.tokens_per_s);
    std::string text = buf;
    if (!std::isnan(r.val_loss)) {
      e["val_loss"] = r.val_loss;
      std::snprintf(buf, sizeof buf, "  val_loss %.4f", r.val_loss);
      text += buf;
    }
    say(e, text);
  };
  if (ext_) o.train_loss = ext_->make_train_loss(*tok, c.context, say);
  train::LMTrainer trainer(*model, *opt, sched.get(), data, o);
  if (resuming) {
    try {
      trainer.load_checkpoint(ckpt);
    } catch (const Error& e) {
      LOOM_FAIL(ckpt, ": cannot resume: the checkpoint does not fit the model these options build (",
                e.what(), ")");
    }
    // --steps counts from the start of the run: a resume at or past it would train nothing and report a
    // meaningless final loss.
    if (trainer.step() >= c.steps)
      throw UsageError("--steps " + std::to_string(c.steps) + ": the checkpoint in " + c.out + " is already at step " +
                       std::to_string(trainer.step()) + " (--steps is the total for the run; give more than " +
                       std::to_string(trainer.step()) + " to continue it)");
  }
  fs::create_directories(c.out);
  begin_run_folder(c.out);  // no stale manifest while training (cmd_trust.cpp)
  save_run_tokenizer(*tok, c.out);

  std::ostringstream intro;
  intro << "training " << c.model << " (" << nn::group_digits(model->num_parameters()) << " parameters, vocabulary "
        << tok->vocab_size() << ") on " << c.data << ": " << data.train->num_tokens() << " train / "
        << data.val->num_tokens() << " validation tokens; " << c.optimizer << " lr " << c.lr << ", batch "
        << c.batch_size << "x" << c.context << (c.grad_accum > 1 ? "x" + std::to_string(c.grad_accum) : "") << ", "
        << c.steps << " steps, " << get_num_threads() << " threads";
  if (resuming) intro << "\nresuming from " << ckpt << " at step " << trainer.step();
  json start = {{"event", "start"}, {"model", c.model}, {"data", c.data}, {"parameters", model->num_parameters()},
                {"vocab_size", tok->vocab_size()}, {"train_tokens", data.train->num_tokens()},
                {"val_tokens", data.val->num_tokens()}, {"threads", get_num_threads()}, {"out", c.out}};
  if (resuming) start["resumed_at_step"] = trainer.step();
  say(start, intro.str());
  for (const auto& n : resume_notes) say({{"event", "note"}, {"message", n}}, "note: " + n);

  const train::LMTrainResult r = trainer.fit();
  model->save(c.out, {{"loom.lm_run", run_record(c, ext_).dump()}});
  // config.json is the model's (generate/eval rebuild it from there); the run's options ride along.
  const std::string cfg_path = (fs::path(c.out) / "config.json").string();
  json saved_cfg = io::read_run_json(cfg_path);  // through trust: sealed when written encrypted
  saved_cfg["loom_train"] = train_json;
  io::write_file_atomic(cfg_path, saved_cfg.dump(2) + "\n");
  finish_run_folder(c.out);  // manifest (loading checks it), encryption with --encrypt-key-file

  json done = {{"event", "done"},          {"loss", r.loss},
               {"val_loss", r.val_loss},    {"train_tokens_per_s", r.train_tokens_per_s},
               {"peak_rss_mb", peak_rss_mb()}, {"steps", r.steps},
               {"seconds", r.seconds},      {"parameters", model->num_parameters()},
               {"out", c.out}};
  char buf[300];
  std::snprintf(buf, sizeof buf,
                "final loss %.4f, validation loss %.4f\ntrain %.0f tokens/s, peak memory %.0f MB, %.0f s in all\n"
                "saved the run in %s/ (model.safetensors, config.json, tokenizer, metrics.csv, checkpoint.safetensors)",
                r.loss, r.val_loss, r.train_tokens_per_s, peak_rss_mb(), r.seconds, c.out.c_str());
  say(done, buf);
  return 0;
}

std::unique_ptr<TrainTask> make_lm_task() { return std::make_unique<LMTask>(); }
std::unique_ptr<TrainTask> make_lm_task(const LMExtension& ext) { return std::make_unique<LMTask>(&ext); }

}  // namespace loom::cli
