// `loom serve` as a user runs it (the built binary, on 127.0.0.1) driven by the official openai npm client
// (tests/serve/openai_client.cjs); then SIGTERM must stop it with exit status 0. The client is installed into
// a test-only folder by scripts/install_serve_clients.sh; without npm or its registry the test is skipped
// with a message saying so.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "loom/loom.h"
#include "support/run_command.h"
#include "support/scratch.h"

using namespace loom;

using loom::test::slurp;

namespace {

}  // namespace

TEST(ServeOpenAIClient, CompletionChatStreamModelsAndErrors) {
  const std::string root = LOOM_TEST_DIR "/..";
  auto inst = test::run_command("bash " + root + "/scripts/install_serve_clients.sh");
  if (inst.status != 0) GTEST_SKIP() << "SKIPPED: the openai npm client could not be installed (npm unreachable?): " << inst.err;
  std::string clients = inst.out;
  while (!clients.empty() && (clients.back() == '\n' || clients.back() == '\r')) clients.pop_back();

  // A small char-level GPT run folder.
  const std::string dir = test::scratch("oai_run").string();
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,:\n";
  manual_seed(2);
  models::GPT({.vocab_size = int64_t(alphabet.size()), .n_positions = 64, .n_embd = 32, .n_layer = 2, .n_head = 4}).save(dir);
  runtime::save_run_tokenizer(*text::make_tokenizer("char", alphabet), dir);

  const std::string log = test::scratch("oai_serve.log").string();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen(log.c_str(), "w", stderr);
    execl(LOOM_BIN, LOOM_BIN, "serve", "--checkpoint", dir.c_str(), "--port", "0", "--parallel", "2", "--api-key",
          "test-key", "--threads", "1", (char*)nullptr);
    _exit(127);
  }
  // The port is printed on the first line; /health turns 200 once loaded.
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::string s = slurp(log);
    if (const size_t at = s.find("http://127.0.0.1:"); at != std::string::npos) port = std::atoi(s.c_str() + at + 17);
  }
  ASSERT_GT(port, 0) << slurp(log);
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  bool ready = false;
  for (int i = 0; i < 600 && !ready; ++i) {
    ready = test::run_command("curl -sf " + base + "/health").status == 0;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(ready) << slurp(log);
  auto r = test::run_command("CLIENTS_DIR='" + clients + "' BASE_URL=" + base + "/v1 MODEL=oai_run API_KEY=test-key "
                             "timeout 120 node " + root + "/tests/serve/openai_client.cjs");
  EXPECT_EQ(r.status, 0) << r.out << r.err << slurp(log);
  EXPECT_NE(r.out.find("\"ok\":true"), std::string::npos) << r.out;

  kill(pid, SIGTERM);  // graceful shutdown: exit status 0
  int status = 0;
  for (int i = 0; i < 400; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (i == 399) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL() << "loom serve did not stop within 20 s of SIGTERM";
    }
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << slurp(log);
}
