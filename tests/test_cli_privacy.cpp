// The privacy and trust commands as users run them: loom privacy, loom train --dp-*, loom federate, and
// keygen -> sign -> verify -> encrypt on a trained run, loaded by loom predict under --require-signature and
// --key-file; a flipped byte, a wrong key, an unsigned run are clear errors (exit 1), keys never printed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/run_command.h"
#include "support/scratch.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using Result = loom::test::CommandResult;

namespace {

const std::string kImage = "idx:/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz:0";

// A fresh folder inside the test program's scratch folder (removed when the program exits).
fs::path temp_dir(const std::string& name) {
  fs::path d = loom::test::scratch("privacy_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void flip(const fs::path& p, size_t pos) {
  std::string b = slurp(p);
  b[pos] = char(b[pos] ^ 1);
  std::ofstream(p, std::ios::binary) << b;
}
Result loom_cmd(const std::string& args) { return loom::test::run_command(std::string(LOOM_BIN) + " " + args); }

}  // namespace

TEST(CliPrivacy, PrivacyPrintsTheReferenceEpsilon) {
  Result r = loom_cmd("privacy --noise 1.3 --sample-rate 0.004 --steps 3750 --delta 1e-5 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_NEAR(j.at("epsilon").get<double>(), 0.9220, 1e-3);
  r = loom_cmd("privacy --noise 1.3 --sample-rate 0.004 --epochs 15 --conversion classic --json");
  EXPECT_NEAR(json::parse(r.out).at("epsilon").get<double>(), 1.1597, 1e-3);
  r = loom_cmd("privacy --epsilon 3 --sample-rate 0.004 --steps 3750 --json");
  EXPECT_NEAR(json::parse(r.out).at("epsilon").get<double>(), 3.0, 0.01);
  r = loom_cmd("privacy --noise 1 --steps 10");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--sample-rate"), std::string::npos) << r.err;
  r = loom_cmd("privacy --noise 1 --sample-rate 2 --steps 10");
  EXPECT_EQ(r.status, 2) << r.err;
}

TEST(CliPrivacy, DpTrainReportsEpsilonAndFederateRuns) {
  const fs::path d = temp_dir("dp");
  Result r = loom_cmd("train --model mlp --dp-noise 1.0 --dp-clip 1 --batch-size 32 --steps 6 --log-every 3 "
                      "--train-samples 512 --test-samples 100 --threads 2 --json --out " + (d / "run").string());
  ASSERT_EQ(r.status, 0) << r.err;
  const auto ev = loom::test::json_lines(r.out);
  ASSERT_GE(ev.size(), 3u);
  EXPECT_EQ(ev[1].at("event"), "step");
  EXPECT_GT(ev[1].at("epsilon").get<double>(), 0);
  EXPECT_GT(ev.back().at("epsilon").get<double>(), ev[1].at("epsilon").get<double>());  // grows with steps
  EXPECT_TRUE(fs::exists(d / "run" / "manifest.json"));
  EXPECT_EQ(loom_cmd("verify " + (d / "run").string()).status, 0);
  r = loom_cmd("train --model mlp --dp-clip 1 --steps 2");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--dp-noise"), std::string::npos) << r.err;

  r = loom_cmd("federate --model mlp --clients 8 --fraction 0.5 --local-epochs 1 --local-batch 16 --rounds 2 "
               "--partition dirichlet:0.5 --secure-aggregation --train-samples 400 --test-samples 100 --threads 2 --json");
  ASSERT_EQ(r.status, 0) << r.err;
  const json done = loom::test::json_lines(r.out).back();
  EXPECT_EQ(done.at("rounds"), 2);
  EXPECT_GT(done.at("bytes").get<double>(), 0);
  r = loom_cmd("federate --model mlp --partition shards:two --train-samples 100 --test-samples 10");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("shards:K"), std::string::npos) << r.err;
}

TEST(CliPrivacy, SignVerifyEncryptAndLoad) {
  const fs::path d = temp_dir("trust"), run = d / "run", keys = d / "keys";
  Result r = loom_cmd("train --model mlp --steps 2 --batch-size 16 --train-samples 64 --test-samples 32 --threads 2 "
                      "--progress none --out " + run.string());
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(loom_cmd("verify " + run.string()).status, 0);  // loom train writes the manifest
  ASSERT_EQ(loom_cmd("keygen --out " + (keys / "alice").string()).status, 0);
  ASSERT_EQ(loom_cmd("keygen --symmetric --out " + (keys / "run.key").string()).status, 0);
  EXPECT_EQ(loom_cmd("keygen --symmetric --out " + (keys / "run.key").string()).status, 1);  // never overwrites
  const std::string pub = (keys / "alice.pub").string(), key = (keys / "run.key").string();
  const std::string key_hex = slurp(keys / "run.key").substr(30, 64), sk_hex = slurp(keys / "alice.key").substr(23, 64);

  // Unsigned: refused under --require-signature, loads without it.
  r = loom_cmd("predict --checkpoint " + run.string() + " --require-signature " + pub + " " + kImage);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("signature is required"), std::string::npos) << r.err;
  ASSERT_EQ(loom_cmd("sign --key " + (keys / "alice.key").string() + " " + run.string()).status, 0);
  r = loom_cmd("verify --pub " + pub + " " + run.string());
  EXPECT_EQ(r.status, 0) << r.err;
  r = loom_cmd("predict --checkpoint " + run.string() + " --require-signature " + pub + " " + kImage);
  EXPECT_EQ(r.status, 0) << r.err;

  // A flipped byte in the weights: verify names the tensor, loading refuses, --skip-verify loads it.
  const std::string before = slurp(run / "model.safetensors");
  flip(run / "model.safetensors", before.size() - 2);
  r = loom_cmd("verify --pub " + pub + " " + run.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("model.safetensors: tensor '5.bias' changed"), std::string::npos) << r.err;
  r = loom_cmd("predict --checkpoint " + run.string() + " " + kImage);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("tensor '5.bias' changed"), std::string::npos) << r.err;
  EXPECT_EQ(loom_cmd("predict --checkpoint " + run.string() + " --skip-verify " + kImage).status, 0);
  std::ofstream(run / "model.safetensors", std::ios::binary) << before;

  // Encrypted at rest: needs the key, decrypts in memory, a wrong key is an authentication error.
  r = loom_cmd("encrypt --key-file " + key + " " + run.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(slurp(run / "model.safetensors").substr(0, 8), "LOOMENC1");
  r = loom_cmd("predict --checkpoint " + run.string() + " " + kImage);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("encrypted"), std::string::npos) << r.err;
  r = loom_cmd("predict --checkpoint " + run.string() + " --key-file " + key + " " + kImage);
  EXPECT_EQ(r.status, 0) << r.err;
  ASSERT_EQ(loom_cmd("keygen --symmetric --out " + (keys / "wrong.key").string()).status, 0);
  r = loom_cmd("predict --checkpoint " + run.string() + " --skip-verify --key-file " + (keys / "wrong.key").string() +
               " " + kImage);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("authentication failed"), std::string::npos) << r.err;
  for (const Result* res : {&r})
    EXPECT_TRUE(res->out.find(key_hex) == std::string::npos && res->err.find(key_hex) == std::string::npos);
  // Sign after encrypting: --require-signature and --key-file together.
  ASSERT_EQ(loom_cmd("sign --key " + (keys / "alice.key").string() + " " + run.string()).status, 0);
  r = loom_cmd("predict --checkpoint " + run.string() + " --require-signature " + pub + " --key-file " + key + " " + kImage);
  EXPECT_EQ(r.status, 0) << r.err;
  flip(run / "model.safetensors", 40);
  r = loom_cmd("predict --checkpoint " + run.string() + " --require-signature " + pub + " --key-file " + key + " " + kImage);
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.find(sk_hex), std::string::npos);
  EXPECT_EQ(loom_cmd("encrypt --key-file " + key + " " + (d / "missing").string()).status, 1);
  EXPECT_EQ(loom_cmd("sign " + run.string()).status, 2);
}

#ifdef LOOM_MPIEXEC
TEST(CliPrivacy, FederateOverMpiMatchesOneProcess) {
  // The selected clients dealt to 2 ranks, their updates summed by all_reduce (plain and masked): the same
  // rounds as the simulation in one process.
  const std::string a = " federate --model mlp --clients 6 --fraction 0.5 --local-epochs 1 --local-batch 16 --rounds 2 "
                        "--partition shards:2 --train-samples 600 --test-samples 200 --threads 1 --json";
  const std::string mpi = std::string("OMP_NUM_THREADS=1 ") + loom::test::mpi_sanitizer_env() + LOOM_MPIEXEC + " --allow-run-as-root --oversubscribe -np 2 " + LOOM_BIN;
  Result one = loom_cmd(a), two = loom::test::run_command(mpi + a + " --distributed"),
         masked = loom::test::run_command(mpi + a + " --distributed --secure-aggregation");
  ASSERT_EQ(one.status, 0) << one.err;
  ASSERT_EQ(two.status, 0) << two.err;
  ASSERT_EQ(masked.status, 0) << masked.err;
  const auto e1 = loom::test::json_lines(one.out), e2 = loom::test::json_lines(two.out), e3 = loom::test::json_lines(masked.out);
  ASSERT_GE(e2.size(), 2u);
  const json& r1 = e1[e1.size() - 2], &r2 = e2[e2.size() - 2];
  EXPECT_EQ(r2.at("event"), "round");
  EXPECT_NEAR(r1.at("train_loss").get<double>(), r2.at("train_loss").get<double>(), 1e-5);
  EXPECT_NEAR(r1.at("test_accuracy").get<double>(), r2.at("test_accuracy").get<double>(), 0.011);
  EXPECT_NEAR(e1.back().at("test_accuracy").get<double>(), e3.back().at("test_accuracy").get<double>(), 0.011);
}
#endif
