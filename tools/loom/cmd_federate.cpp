// loom federate: federated averaging (loom/privacy/fedavg.h) over simulated clients, or over MPI ranks with
// --distributed. Reports test accuracy as rounds go, the round that first reached --target-accuracy, and the
// bytes sent between server and clients.
//   loom federate --model mlp --clients 100 --fraction 0.1 --local-epochs 5 --local-batch 10 --rounds 50 \
//                 --partition shards:2 --target-accuracy 0.8
//   loom federate ... --local-epochs 1 --local-batch 0      (FedSGD: one full-batch step per client per round)
//   mpirun -np 4 loom federate ... --distributed           (the selected clients dealt round-robin to the ranks)
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "args.h"
#include "commands.h"
#include "data_spec.h"
#include "loom/backend/backend.h"
#include "loom/core/generator.h"
#include "loom/data/dataloader.h"
#include "loom/dist/dist.h"
#include "loom/io/safetensors.h"
#include "loom/privacy/fedavg.h"
#include "loom/train/train.h"
#include "loom/trust/manifest.h"
#include "model_file.h"

namespace loom::cli {

int cmd_federate(const Argv& argv) {
  std::string model_name, data = "fashion-mnist", partition = "iid", out;
  int64_t clients = 100, rounds = 10, local_epochs = 5, local_batch = 10, threads = 0, seed = 0, eval_every = 1;
  int64_t train_samples = 0, test_samples = 0;
  double fraction = 0.1, lr = 0.05, target = 0, client_clip = 0, client_noise = 0;
  bool secure = false, distributed = false, json = false, no_normalize = false;
  Args a("loom federate", "Federated averaging (McMahan et al.): each round a fraction of the clients trains the\n"
                          "global model on its own data and the server averages the results by data size.");
  const Range pos{.min = 0, .exclusive_min = true};
  a.choice("--model", &model_name, {"mlp", "lenet", "cnn"}, "the architecture (required)");
  a.option("--data", &data, "SPEC", "fashion-mnist (default), mnist:DIR, cifar10:DIR");
  a.option("--clients", &clients, "K", "number of clients (default 100)", {.min = 1, .max = 32767});
  a.option("--fraction", &fraction, "C", "fraction of clients per round (default 0.1)", {.min = 0, .max = 1, .exclusive_min = true});
  a.option("--local-epochs", &local_epochs, "E", "local epochs per round (default 5)", {.min = 1});
  a.option("--local-batch", &local_batch, "B", "local batch size; 0 = all of a client's data (default 10)", {.min = 0});
  a.option("--rounds", &rounds, "R", "rounds (default 10)", {.min = 1});
  a.option("--lr", &lr, "X", "local SGD learning rate (default 0.05)", pos);
  a.option("--partition", &partition, "P", "iid (default), shards:K (label-sorted, K shards each), dirichlet:ALPHA");
  a.flag("--secure-aggregation", &secure, "pairwise-masked updates: the server sees only their sum");
  a.option("--client-clip", &client_clip, "S", "client-level DP: clip each update to norm S", pos);
  a.option("--client-noise", &client_noise, "Z", "client-level DP: noise std Z*S on the summed updates", {.min = 0});
  a.option("--target-accuracy", &target, "A", "report the first round whose test accuracy reaches A and stop", {.min = 0, .max = 1});
  a.option("--eval-every", &eval_every, "N", "test accuracy every N rounds (default 1)", {.min = 1});
  a.option("--train-samples", &train_samples, "N", "use only the first N training samples", {.min = 1});
  a.option("--test-samples", &test_samples, "N", "use only the first N test samples", {.min = 1});
  a.option("--threads", &threads, "T", "compute threads", {.min = 1, .max = 1024});
  a.option("--seed", &seed, "S", "seed (default 0)", {.min = 0});
  a.option("--out", &out, "DIR", "save the final global model here (with a manifest)");
  a.flag("--distributed", &distributed, "over the ranks of mpirun -np N (rank 0 prints and writes)");
  a.flag("--json", &json, "one JSON object per line");
  a.flag("--no-normalize", &no_normalize, "feed images in [0, 1]");
  a.parse(argv);
  if (model_name.empty()) throw UsageError("--model is required (mlp, lenet or cnn)");
  if (client_noise > 0 && client_clip <= 0) throw UsageError("--client-noise needs --client-clip");
  if (threads > 0) set_num_threads(int(threads));
  manual_seed(uint64_t(seed));

  DataOptions dopt{.spec = data, .seed = uint64_t(seed), .train_limit = train_samples, .test_limit = test_samples,
                   .normalize = !no_normalize};
  LoadedData d = load_data(dopt);
  dopt.norm = d.norm;
  std::vector<int64_t> labels;
  for (int64_t s = 0; s < d.train->size(); s += 4096) {
    std::vector<int64_t> idx;
    for (int64_t i = s; i < std::min(d.train->size(), s + 4096); ++i) idx.push_back(i);
    for (double v : d.train->get_batch(idx).target.tolist()) labels.push_back(int64_t(v));
  }
  Generator pg{uint64_t(seed)};
  privacy::Partition parts = privacy::make_partition(partition, labels, clients, pg);
  dist::CommPtr comm = distributed ? dist::init(/*require_mpi=*/true) : nullptr;
  const int rank = comm ? comm->rank() : 0;
  auto model = models::make_model(model_name, d.shape);
  if (comm) {  // the same initial global model everywhere
    for (Tensor p : model->parameters()) comm->broadcast(p, 0);
  }
  privacy::FedAvg fed(*model, d.train, parts,
                      {.fraction = fraction, .local_epochs = local_epochs, .local_batch = local_batch, .lr = lr,
                       .secure_aggregation = secure, .client_clip = client_clip, .client_noise = client_noise,
                       .seed = uint64_t(seed)},
                      comm);
  auto say = [&](const nlohmann::json& j, const std::string& text) {
    if (rank != 0) return;
    if (json) std::cout << j.dump() << "\n" << std::flush;
    else std::cout << text << "\n" << std::flush;
  };
  say({{"event", "start"}, {"model", model_name}, {"clients", clients}, {"fraction", fraction},
       {"local_epochs", local_epochs}, {"local_batch", local_batch}, {"partition", partition},
       {"world_size", comm ? comm->world_size() : 1}, {"secure_aggregation", secure}},
      "federated " + model_name + ": " + std::to_string(clients) + " clients (" + partition + "), fraction " +
          std::to_string(fraction) + ", E=" + std::to_string(local_epochs) + " B=" +
          (local_batch ? std::to_string(local_batch) : std::string("all")) + (secure ? ", secure aggregation" : ""));
  auto test_loader = std::make_shared<data::DataLoader>(d.test, data::LoaderOptions{.batch_size = 512});
  const auto t0 = std::chrono::steady_clock::now();
  int64_t reached = -1;
  double acc = 0;
  for (int64_t r = 1; r <= rounds; ++r) {
    model->train();
    privacy::RoundStats st = fed.round();
    if (r % eval_every == 0 || r == rounds) {
      acc = train::evaluate(*model, *test_loader, {})["accuracy"];
      if (target > 0 && reached < 0 && acc >= target) reached = r;
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      char buf[200];
      std::snprintf(buf, sizeof buf, "round %lld: train loss %.4f, test accuracy %.2f%%, %.1f MB sent so far, %.1f s",
                    (long long)r, st.train_loss, 100 * acc, double(fed.bytes_total()) / 1e6, secs);
      say({{"event", "round"}, {"round", r}, {"train_loss", st.train_loss}, {"test_accuracy", acc},
           {"bytes", fed.bytes_total()}, {"seconds", secs}},
          buf);
    }
    if (reached > 0) break;
  }
  if (rank == 0 && !out.empty()) {
    std::filesystem::create_directories(out);
    trust::remove_manifest(out);
    train::save_weights((std::filesystem::path(out) / "model.safetensors").string(), *model,
                        model_metadata(model_name, d.shape, d.classes, dopt));
    trust::write_manifest(out);
  }
  nlohmann::json done = {{"event", "done"}, {"rounds", fed.rounds_done()}, {"test_accuracy", acc},
                         {"bytes", fed.bytes_total()}};
  if (target > 0) done["rounds_to_target"] = reached > 0 ? nlohmann::json(reached) : nlohmann::json(nullptr);
  std::string text = "test accuracy " + std::to_string(100 * acc) + "% after " + std::to_string(fed.rounds_done()) +
                     " rounds, " + std::to_string(double(fed.bytes_total()) / 1e6) + " MB communicated";
  if (target > 0)
    text += reached > 0 ? "; reached " + std::to_string(target) + " at round " + std::to_string(reached)
                        : "; did not reach " + std::to_string(target);
  say(done, text);
  if (comm) comm->barrier();
  return 0;
}

}  // namespace loom::cli
