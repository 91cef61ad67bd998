// The engine-independent part of the communicator: the 1-process engine, timeouts and picking an engine.
#include "loom/dist/comm.h"

#include <cstdio>

#include <cstdlib>
#include <mutex>

#include "loom/core/error.h"

#ifdef LOOM_HAVE_MPI
#include "loom/dist/mpi/comm_mpi.h"
#endif

namespace loom::dist {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Avg: return "avg";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
  }
  return "?";
}

double default_timeout_seconds() {
  if (const char* s = std::getenv("LOOM_DIST_TIMEOUT")) {
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    LOOM_CHECK(end != s && *end == '\0' && v > 0, "LOOM_DIST_TIMEOUT='", s,
               "' is not a positive number of seconds (unset it for the default of 300)");
    return v;
  }
  return 300.0;
}

Communicator::Communicator() : timeout_(default_timeout_seconds()) {}

void check_collective_tensor(const Tensor& t, const char* what) {
  LOOM_CHECK(t.defined(), what, ": the tensor is undefined");
  LOOM_CHECK(t.is_contiguous(), what, ": the tensor of shape ", t.shape(),
             " is not contiguous; pass t.contiguous() (collectives work on whole memory blocks)");
}

namespace {

class DoneWork : public Work {
 public:
  bool test() override { return true; }
  void wait() override {}
};

Shape gathered_shape(const Tensor& t, int world) {
  Shape s = t.shape();
  if (s.empty()) return {int64_t(world)};
  s[0] *= world;
  return s;
}

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string backend() const override { return "local"; }
  WorkPtr all_reduce_async(Tensor& t, ReduceOp op) override {
    check_collective_tensor(t, "all_reduce");
    LOOM_CHECK(op != ReduceOp::Avg || is_floating(t.dtype()), "all_reduce: avg needs a floating tensor, got ",
               t.dtype(), " (use sum and divide)");
    return std::make_shared<DoneWork>();
  }
  void broadcast(Tensor& t, int root) override {
    check_collective_tensor(t, "broadcast");
    LOOM_CHECK(root == 0, "broadcast: root ", root, " is not a rank of this 1-process group");
  }
  Tensor all_gather(const Tensor& t) override {
    check_collective_tensor(t, "all_gather");
    return t.clone().reshape(gathered_shape(t, 1));
  }
  Tensor reduce_scatter(const Tensor& t, ReduceOp op) override {
    check_collective_tensor(t, "reduce_scatter");
    LOOM_CHECK(op != ReduceOp::Avg || is_floating(t.dtype()), "reduce_scatter: avg needs a floating tensor, got ",
               t.dtype());
    return t.clone();
  }
  void barrier() override {}
};

std::mutex g_mu;
CommPtr g_world;

bool env_set(const char* name) { return std::getenv(name) != nullptr; }

}  // namespace

CommPtr local_communicator() { return std::make_shared<LocalCommunicator>(); }

bool mpi_available() {
#ifdef LOOM_HAVE_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMI_SIZE") || env_set("PMIX_RANK") || env_set("SLURM_NTASKS");
}

CommPtr init(bool require_mpi) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_world) return g_world;
  const char* forced = std::getenv("LOOM_DIST");
  const std::string mode = forced ? forced : "";
  LOOM_CHECK(mode.empty() || mode == "mpi" || mode == "local", "LOOM_DIST='", mode, "': expected mpi or local");
  const bool want_mpi = mode == "mpi" || (mode.empty() && (launched_by_mpi() || require_mpi));
  if (want_mpi) {
#ifdef LOOM_HAVE_MPI
    g_world = make_mpi_communicator();
    return g_world;
#else
    LOOM_CHECK(!require_mpi && mode != "mpi", "distributed training needs MPI, but this loom was built without it: "
               "install Open MPI (libopenmpi-dev) and rebuild with -DLOOM_MPI=ON");
#endif
  }
  g_world = local_communicator();
  return g_world;
}

CommPtr world() { return g_world ? g_world : init(); }

void Communicator::abort(int exit_code) {
  std::fflush(nullptr);
  std::_Exit(exit_code);
}

void abort_job_if_distributed(int exit_code) {
  CommPtr w;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    w = g_world;
  }
  if (!w || w->world_size() < 2) return;
  std::fprintf(stderr, "loom: rank %d of %d failed (the error above); stopping all %d ranks now\n", w->rank(),
               w->world_size(), w->world_size());
  w->abort(exit_code);
}

}  // namespace loom::dist
