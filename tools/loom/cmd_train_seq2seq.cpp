// loom train --model seq2seq --data dates: an attention encoder-decoder translating dates written in many human
// formats to ISO 8601, trained on length-bucketed padded batches, scored by exact match on the fixed held-out
// set. The run folder holds model.safetensors, config.json (model options + vocabulary) and metrics.csv.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "args.h"
#include "commands.h"
#include "loom/autograd/grad_mode.h"
#include "loom/backend/backend.h"
#include "loom/core/generator.h"
#include "loom/data/dataloader.h"
#include "loom/models/seq2seq.h"
#include "loom/nn/repr.h"
#include "loom/nn/sequence_loss.h"
#include "loom/ops/ops.h"
#include "loom/optim/clip.h"
#include "loom/text/dates.h"
#include "loom/text/seq2seq_data.h"
#include "loom/train/run_folder.h"
#include "loom/train/trainer.h"
#include "loom/train/checkpoint.h"
#include "loom/train/callbacks.h"
#include "loom/io/json_fields.h"
#include "train_setup.h"

namespace loom::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct S2SConfig {
  TrainConfig t;
  std::string attention = "dot";
  int64_t embed = 32, hidden = 64, beam = 1, eval_every = 0;
  double teacher_forcing = 1.0;
};

int train_seq2seq(const S2SConfig& c);

class Seq2SeqTask final : public TrainTask {
 public:
  void defaults(TrainConfig& t) const override {
    t.batch_size = 128, t.train_samples = 50000, t.test_samples = text::kDatesTestSize, t.clip_grad_norm = 1.0;
    t.log_every = 100, t.data = "dates";
  }
  void declare(Args& a, TrainConfig& t) override {
    a.choice("--attention", &c.attention, {"dot", "general", "bahdanau"}, "attention score (default dot)");
    a.option("--embed", &c.embed, "N", "embedding width (default 32)", {.min = 1, .max = 4096});
    a.option("--hidden", &c.hidden, "N", "encoder GRU width per direction; the decoder is twice it (default 64)",
             {.min = 1, .max = 4096});
    a.option("--teacher-forcing", &c.teacher_forcing, "P",
             "probability of feeding the true previous token (default 1; 1 with dot/general runs the decoder "
             "in one call)",
             {.min = 0, .max = 1});
    a.option("--train-samples", &t.train_samples, "N", "training pairs generated from the seed (default 50000)",
             {.min = 1, .max = 1 << 24});  // generated and held in memory: bounded (docs/reliability.md)
    a.option("--test-samples", &t.test_samples, "N", "the first N pairs of the held-out set (default and most 2000)",
             {.min = 1, .max = double(text::kDatesTestSize)});
    a.option("--beam", &c.beam, "K", "beam width for the final test decoding (default 1: greedy)", {.min = 1, .max = 64});
    a.option("--eval-every", &c.eval_every, "N", "also score the test set every N steps (default: each epoch)",
             {.min = 0});
  }
  void finish(const Args& a, TrainConfig& t) override {
    if (t.data != "dates") throw UsageError("--data: the seq2seq task is dates (generated), got '" + t.data + "'");
    if (!a.given("--lr")) t.lr = t.optimizer == "sgd" ? 0.1 : 3e-3;
    if (t.log_every == 0) t.log_every = 100;
    if (t.out.empty()) t.out = "runs/seq2seq-" + t.data;
  }
  int run(const TrainConfig& t) override {
    c.t = t;
    return train_seq2seq(c);
  }

 private:
  S2SConfig c;
};

std::shared_ptr<text::SequencePairDataset> encode(const std::vector<text::DatePair>& pairs) {
  const text::DatesVocab& v = text::dates_vocab();
  std::vector<std::vector<int64_t>> src, tgt;
  for (const auto& p : pairs) {
    src.push_back(v.encode(p.source));
    tgt.push_back(v.encode(p.target, {.add_bos = true, .add_eos = true}));
  }
  return std::make_shared<text::SequencePairDataset>(std::move(src), std::move(tgt));
}

struct Score {
  double exact = 0, loss = 0;
  std::vector<std::string> predictions;
};

// Exact match of the decoded strings against the ISO targets, plus the teacher-forced loss.
Score score(models::Seq2Seq& model, const std::vector<text::DatePair>& pairs,
            const std::shared_ptr<text::SequencePairDataset>& ds,
            int64_t beam, bool keep_predictions) {
  const text::DatesVocab& v = text::dates_vocab();
  model.eval();
  NoGradGuard no_grad;
  Score s;
  int64_t hits = 0;
  double loss_sum = 0, tokens = 0;
  auto sampler = std::make_shared<text::BucketSampler>(ds->lengths(), 256, 0, text::BucketOptions{.shuffle = false});
  data::DataLoader loader(ds, {.batch_size = 256, .collate = text::pad_collate(), .sampler = sampler});
  std::vector<std::string> pred(pairs.size());
  const std::vector<int64_t> order = loader.epoch_order(0);
  size_t at = 0;
  for (auto& b : loader) {
    const Tensor lengths = sequence_lengths(b.data);
    Tensor labels = b.target.slice(1, 1, b.target.size(1)).contiguous();
    Tensor l = sequence_cross_entropy(model.forward(b.data, lengths, b.target, 1.0), labels,
                                      {.reduction = Reduction::Sum});
    loss_sum += l.item();
    tokens += sequence_lengths(labels).sum().item();
    std::vector<std::vector<int64_t>> out;
    if (beam <= 1) {
      out = model.greedy_decode(b.data, lengths, 16);
    } else {
      for (int64_t i = 0; i < b.data.size(0); ++i) {
        Tensor row = b.data.select(0, i).slice(0, 0, lengths.data<int64_t>()[i]).contiguous();
        out.push_back(model.beam_search(row, beam, 16)[0].tokens);
      }
    }
    for (const auto& ids : out) {
      const size_t k = size_t(order[at++]);
      pred[k] = v.decode(ids);
      hits += pred[k] == pairs[k].target;
    }
  }
  model.train();
  s.exact = pairs.empty() ? 0 : double(hits) / double(pairs.size());
  s.loss = tokens > 0 ? loss_sum / tokens : 0;
  if (keep_predictions) s.predictions = std::move(pred);
  return s;
}

constexpr const char* kRunKey = "loom.seq2seq_run";

// The options a checkpoint records (kRunKey) and a resume compares (train_setup.h: check_resume).
json run_record(const S2SConfig& c, int64_t total_steps) {
  const TrainConfig& t = c.t;
  json j = {{"model", "seq2seq"},          {"data", t.data},
            {"attention", c.attention},     {"embed", c.embed},
            {"hidden", c.hidden},           {"teacher_forcing", c.teacher_forcing},
            {"train_samples", t.train_samples}, {"test_samples", t.test_samples},
            {"batch_size", t.batch_size},   {"optimizer", t.optimizer},
            {"lr", t.lr},                   {"momentum", t.momentum},
            {"nesterov", t.nesterov},       {"weight_decay", t.weight_decay},
            {"scheduler", t.scheduler},     {"clip_grad_norm", t.clip_grad_norm},
            {"seed", t.seed},               {"eval_every", c.eval_every},
            {"log_every", t.log_every},     {"checkpoint_every", t.checkpoint_every},
            {"threads", t.threads}};
  if (t.steps > 0)
    j["steps"] = t.steps;
  else
    j["epochs"] = t.epochs;
  if (t.scheduler == "cosine" || t.scheduler == "onecycle") j["schedule_steps"] = total_steps;
  return j;
}

ResumeRecord resume_record() {
  ResumeRecord r;
  r.order = {"model",     "data",         "attention", "embed",    "hidden",    "teacher_forcing", "train_samples",
             "test_samples", "batch_size", "optimizer", "lr",       "momentum",  "nesterov",        "weight_decay",
             "scheduler", "schedule_steps", "clip_grad_norm", "seed"};
  r.flags = {{"schedule_steps", "--epochs/--steps"}};
  r.explain = {{"schedule_steps", "a total of that many steps, the length of its cosine/onecycle schedule"}};
  return r;
}

int train_seq2seq(const S2SConfig& c) {
  const TrainConfig& t = c.t;
  const Say say{.json = t.json};
  const auto wall0 = Clock::now();
  if (t.threads > 0) set_num_threads(int(t.threads));
  manual_seed(uint64_t(t.seed));

  const auto train_pairs = text::dates_train_pairs(t.train_samples, uint64_t(t.seed));
  const auto test_pairs = text::dates_test_pairs(t.test_samples);
  auto train_ds = encode(train_pairs);
  auto test_ds = encode(test_pairs);
  const text::DatesVocab& vocab = text::dates_vocab();

  models::Seq2SeqOptions mo{.src_vocab = vocab.size(), .tgt_vocab = vocab.size(), .embed = c.embed,
                            .hidden = c.hidden, .attention = c.attention};
  models::Seq2Seq model(mo);
  auto opt = make_optimizer(t, model.parameters());
  // Batches of similar source length, so padding costs little; the one short batch is dropped.
  auto sampler = std::make_shared<text::BucketSampler>(train_ds->lengths(), t.batch_size, uint64_t(t.seed));
  data::DataLoader loader(train_ds, {.batch_size = t.batch_size, .drop_last = train_ds->size() >= t.batch_size,
                                     .collate = text::pad_collate(), .sampler = sampler});
  const int64_t nb = loader.num_batches();
  LOOM_CHECK(nb > 0, "loom train: --train-samples ", t.train_samples, " makes no batch of ", t.batch_size);
  const int64_t total = t.steps > 0 ? t.steps : t.epochs * nb;
  Schedule sched = make_schedule(t, *opt, total);
  Generator tf_gen(uint64_t(t.seed) + 17);

  fs::create_directories(t.out);
  begin_run_folder(t.out);  // no stale manifest while training (cmd_trust.cpp)
  std::vector<std::vector<double>> metrics;  // metrics.csv, rewritten whole after each evaluation
  auto write_metrics = [&] {
    train::write_metrics_table((fs::path(t.out) / "metrics.csv").string(),
                               {{"step", "%.0f"}, {"epoch", "%.0f"}, {"train_loss"}, {"test_loss"},
                                {"test_exact_match"}, {"seconds"}},
                               metrics);
  };

  // The run goes through the one training loop (train::Trainer: the batches, the update, clipping, the
  // scheduler, NaN checks); what the dates task adds is the callback below (its progress lines, evaluations and
  // metrics rows).
  int64_t step = 0, epoch = 0, seen = 0;
  double train_seconds = 0, run_loss = 0, last_loss = 0;
  int64_t run_n = 0;
  Score last;
  Clock::time_point t0;
  auto evaluate = [&](bool final_eval) {
    last = score(model, test_pairs, test_ds, final_eval ? c.beam : 1, false);
    const double secs = std::chrono::duration<double>(Clock::now() - wall0).count();
    metrics.push_back({double(step), double(epoch), last_loss, last.loss, last.exact, secs});
    write_metrics();
    char buf[160];
    std::snprintf(buf, sizeof buf, "step %lld epoch %lld: train loss %.4f, test loss %.4f, exact match %.2f%%",
                  (long long)step, (long long)epoch, last_loss, last.loss, 100 * last.exact);
    say({{"event", "eval"}, {"step", step}, {"epoch", epoch}, {"train_loss", last_loss},
                 {"test_loss", last.loss}, {"test_exact_match", last.exact}}, buf);
  };
  using State = std::map<std::string, double>;
  struct DatesTask final : train::Callback {
    std::function<void(const train::StepInfo&)> batch_end;
    std::function<void()> epoch_end;
    std::function<State()> get;
    std::function<void(const State&)> set;
    std::string name() const override { return "DatesTask"; }
    void on_batch_end(train::Trainer&, const train::StepInfo& s) override { batch_end(s); }
    void on_epoch_end(train::Trainer&, const train::Logs&) override { epoch_end(); }
    State state() const override { return get(); }  // in checkpoints: a resumed run continues these numbers
    void load_state(const State& st) override { set(st); }
  };
  auto task = std::make_shared<DatesTask>();
  task->batch_end = [&](const train::StepInfo& s) {
    train_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    seen += s.batch_size;
    step = s.step, epoch = s.epoch;
    run_loss += s.loss, ++run_n;
    if (step % t.log_every == 0 || step == total) {
      last_loss = run_loss / double(run_n);
      run_loss = 0, run_n = 0;
      char buf[128];
      std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %.4f  %.0f samples/s", (long long)step,
                    (long long)total, last_loss, double(seen) / train_seconds);
      say({{"event", "step"}, {"step", step}, {"loss", last_loss},
           {"samples_per_s", double(seen) / train_seconds}, {"lr", opt->get_lr()}}, buf);
    }
    if (c.eval_every > 0 && step % c.eval_every == 0 && step < total) evaluate(false);
  };
  auto epoch_end = [&] {  // also after a last, unfinished epoch
    ++epoch;
    if (run_n > 0) last_loss = run_loss / double(run_n);
  };
  task->epoch_end = [&] {
    epoch_end();
    if (c.eval_every == 0 && step < total) evaluate(false);
  };
  task->get = [&] {
    State st = {{"step", double(step)},         {"epoch", double(epoch)},       {"seen", double(seen)},
                {"train_seconds", train_seconds}, {"run_loss", run_loss},         {"run_n", double(run_n)},
                {"last_loss", last_loss},         {"rows", double(metrics.size())}};
    for (size_t i = 0; i < metrics.size(); ++i)
      for (size_t j = 0; j < metrics[i].size(); ++j) st["row." + std::to_string(i) + "." + std::to_string(j)] = metrics[i][j];
    return st;
  };
  task->set = [&](const State& st) {
    auto at = [&](const std::string& k) {
      auto it = st.find(k);
      LOOM_CHECK(it != st.end(), "the DatesTask state has no ", k);
      return it->second;
    };
    step = int64_t(at("step")), epoch = int64_t(at("epoch")), seen = int64_t(at("seen"));
    train_seconds = at("train_seconds"), run_loss = at("run_loss"), run_n = int64_t(at("run_n"));
    last_loss = at("last_loss");
    metrics.assign(size_t(at("rows")), std::vector<double>(6));
    for (size_t i = 0; i < metrics.size(); ++i)
      for (size_t j = 0; j < 6; ++j) metrics[i][j] = at("row." + std::to_string(i) + "." + std::to_string(j));
  };
  const std::string ckpt = (fs::path(t.out) / train::kCheckpointFile).string();
  const json record = run_record(c, total);
  bool resuming = false;
  std::vector<std::string> resume_notes;
  if (t.resume && fs::exists(ckpt)) {
    const train::Checkpoint saved = train::load_checkpoint(ckpt);
    auto it = saved.metadata.find(kRunKey);
    LOOM_CHECK(it != saved.metadata.end(), ckpt, ": not a seq2seq checkpoint made by loom train (no ", kRunKey,
               " entry)");
    resume_notes = check_resume(io::parse_json(it->second, ckpt + " (" + kRunKey + ")"), record, ckpt,
                                resume_record());
    resuming = true;
  } else if (t.resume) {
    say({{"event", "note"}, {"message", "no checkpoint in " + t.out + "; starting from scratch"}},
        "no checkpoint in " + t.out + "; starting from scratch");
  }
  auto checkpoints = std::make_shared<train::ModelCheckpoint>(
      train::ModelCheckpointOptions{.path = ckpt, .every_steps = t.checkpoint_every});
  train::FitOptions fo{.epochs = t.epochs,
                       .steps = t.steps,
                       .optimizer = opt.get(),
                       .metrics = {},
                       .callbacks = {task, checkpoints},
                       .scheduler = sched.scheduler.get(),
                       .scheduler_interval = sched.interval,
                       .clip_grad_norm = t.clip_grad_norm,
                       .progress = train::ProgressMode::None,
                       .resume_from = resuming ? ckpt : "",
                       .generators = {&tf_gen},
                       .checkpoint_metadata = {{kRunKey, record.dump()}}};
  fo.before_forward = [&] { t0 = Clock::now(); };
  fo.batch_loss = [&](const data::Batch& b) {
    const Tensor lengths = sequence_lengths(b.data);
    Tensor logits = model.forward(b.data, lengths, b.target, c.teacher_forcing, &tf_gen);
    return sequence_cross_entropy(logits, b.target.slice(1, 1, b.target.size(1)).contiguous());
  };
  train::Trainer trainer(model, fo);  // restores the checkpoint when resuming
  std::ostringstream intro;
  intro << "training seq2seq (" << c.attention << " attention, " << nn::group_digits(model.num_parameters())
        << " parameters) on dates: " << train_ds->size() << " train / " << test_ds->size() << " held-out pairs, "
        << text::num_date_formats() << " formats" << "; " << t.optimizer << " lr " << t.lr << ", batch " << t.batch_size << ", "
        << (t.steps > 0 ? std::to_string(t.steps) + " steps" : std::to_string(t.epochs) + " epochs") << " (" << nb
        << " steps/epoch), " << get_num_threads() << (get_num_threads() == 1 ? " thread" : " threads");
  json start = {{"event", "start"}, {"model", "seq2seq"}, {"data", t.data}, {"attention", c.attention},
                {"parameters", model.num_parameters()}, {"train_samples", train_ds->size()},
                {"test_samples", test_ds->size()}, {"steps_per_epoch", nb}, {"threads", get_num_threads()},
                {"out", t.out}};
  if (resuming) {
    check_resume_position(t, trainer.global_step(), trainer.epoch());
    intro << "\nresuming from " << ckpt << " at epoch " << trainer.epoch() + 1 << ", batch " << trainer.batch()
          << " (step " << trainer.global_step() << ")";
    start["resumed_at_step"] = trainer.global_step();
  }
  say(start, intro.str());
  for (const auto& n : resume_notes) say({{"event", "note"}, {"message", n}}, "note: " + n);
  write_metrics();  // the rows so far: none, or the checkpoint's

  trainer.fit(loader);
  if (trainer.batch() > 0) epoch_end();  // the last epoch stopped at --steps: it counts, as its rows say
  evaluate(true);

  json extra = {{"task", "dates"}, {"vocab", vocab.chars()}, {"max_len", 16},
                {"train_samples", train_ds->size()}, {"seed", t.seed}, {"test_exact_match", last.exact}};
  model.save(t.out, extra);
  finish_run_folder(t.out);  // manifest (loading checks it), encryption with --encrypt-key-file
  const double wall = std::chrono::duration<double>(Clock::now() - wall0).count();
  const double sps = train_seconds > 0 ? double(seen) / train_seconds : 0;
  json done = {{"event", "done"},         {"test_exact_match", last.exact}, {"test_loss", last.loss},
               {"train_loss", last_loss}, {"train_samples_per_s", sps},    {"train_seconds", train_seconds},
               {"steps", step},           {"epochs_completed", epoch},     {"beam", c.beam},
               {"seconds", wall},         {"peak_rss_mb", peak_rss_mb()},  {"out", t.out}};
  std::ostringstream text;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * last.exact);
  text << "test exact match " << buf << " (" << (c.beam > 1 ? "beam " + std::to_string(c.beam) : "greedy")
       << ", test loss " << last.loss << ")\ntrain " << int64_t(sps) << " samples/s, peak memory "
       << int64_t(peak_rss_mb()) << " MB, " << int64_t(wall) << " s in all\nsaved the run in " << t.out
       << "/ (model.safetensors, config.json, metrics.csv, checkpoint.safetensors); try: loom translate --checkpoint " << t.out
       << " \"March 5, 1999\"";
  say(done, text.str());
  return 0;
}

}  // namespace

std::unique_ptr<TrainTask> make_seq2seq_task() { return std::make_unique<Seq2SeqTask>(); }

}  // namespace loom::cli
