// The MPI engine. Every collective is started non-blocking (MPI_I*) and waited on by polling MPI_Test
// against a deadline, so a dead or hung rank turns into an error naming the collective and a job-wide
// MPI_Abort instead of a job that hangs forever. bf16/f16 reductions go through f32 (MPI has no 16-bit
// float types); moves (broadcast, all_gather) send their bytes as they are.
#include "loom/dist/mpi/comm_mpi.h"

#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>

#include "loom/core/error.h"

namespace loom::dist {

namespace {

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    case DType::i32: return MPI_INT32_T;
    case DType::u8: return MPI_UINT8_T;
    case DType::boolean: return MPI_C_BOOL;
    case DType::bf16:
    case DType::f16: return MPI_UINT16_T;  // bytes only: reductions convert to f32 first
  }
  LOOM_FAIL("dist: no MPI type for dtype ", t);
}

MPI_Op mpi_op(ReduceOp op, DType t) {
  if (t == DType::boolean) return op == ReduceOp::Min ? MPI_LAND : MPI_LOR;
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return MPI_SUM;
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

int count_of(int64_t n, const char* what) {
  LOOM_CHECK(n <= INT_MAX, what, ": ", n, " elements is more than one MPI call moves (", INT_MAX,
             "); split the tensor");
  return int(n);
}

bool is_half(DType t) { return t == DType::bf16 || t == DType::f16; }

void check_avg(ReduceOp op, DType t, const char* what) {
  LOOM_CHECK(op != ReduceOp::Avg || is_floating(t), what, ": avg needs a floating tensor, got ", t,
             " (use sum and divide)");
}

class MpiCommunicator;

class MpiWork : public Work {
 public:
  MpiWork(MpiCommunicator* c, const char* what, int64_t n, MPI_Request r, std::function<void()> finish)
      : comm_(c), what_(what), n_(n), req_(r), finish_(std::move(finish)) {}
  ~MpiWork() override;
  bool test() override;
  void wait() override;

 private:
  void complete();
  MpiCommunicator* comm_;
  const char* what_;
  int64_t n_;
  MPI_Request req_;
  std::function<void()> finish_;  // after the transfer: averaging, copying out of a staging buffer
  bool done_ = false;
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator() {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
      int provided = 0;
      // FUNNELED: only the thread that called init talks to MPI (OpenMP workers never do).
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
      std::atexit([] {
        int fin = 0;
        MPI_Finalized(&fin);
        if (!fin) MPI_Finalize();
      });
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Comm_free(&comm_);
  }

  [[noreturn]] void abort(int exit_code) override {
    std::fflush(nullptr);
    MPI_Abort(MPI_COMM_WORLD, exit_code);  // mpirun then ends every rank, not just this one
    std::_Exit(exit_code);
  }

  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  WorkPtr all_reduce_async(Tensor& t, ReduceOp op) override {
    check_collective_tensor(t, "all_reduce");
    check_avg(op, t.dtype(), "all_reduce");
    const int n = count_of(t.numel(), "all_reduce");
    MPI_Request r;
    if (is_half(t.dtype())) {
      Tensor staging = t.to(DType::f32);
      MPI_Iallreduce(MPI_IN_PLACE, staging.raw_data(), n, MPI_FLOAT, mpi_op(op, DType::f32), comm_, &r);
      return std::make_shared<MpiWork>(this, "all_reduce", n, r, [t, staging, op, w = size_]() mutable {
        if (op == ReduceOp::Avg) staging.div_(double(w));
        t.copy_(staging);
      });
    }
    MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), n, mpi_type(t.dtype()), mpi_op(op, t.dtype()), comm_, &r);
    std::function<void()> finish;
    if (op == ReduceOp::Avg) finish = [t, w = size_]() mutable { t.div_(double(w)); };
    return std::make_shared<MpiWork>(this, "all_reduce", n, r, std::move(finish));
  }

  void broadcast(Tensor& t, int root) override {
    check_collective_tensor(t, "broadcast");
    LOOM_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " is not a rank (world size ", size_, ")");
    const int n = count_of(t.numel(), "broadcast");
    MPI_Request r;
    MPI_Ibcast(t.raw_data(), n, mpi_type(t.dtype()), root, comm_, &r);
    MpiWork(this, "broadcast", n, r, [t]() { t.bump_version(); }).wait();
  }

  Tensor all_gather(const Tensor& t) override {
    check_collective_tensor(t, "all_gather");
    Shape s = t.shape();
    if (s.empty()) s = {1};
    s[0] *= size_;
    Tensor out = make_tensor(s, t.dtype());
    const int n = count_of(t.numel(), "all_gather");
    count_of(out.numel(), "all_gather");
    MPI_Request r;
    MPI_Iallgather(t.raw_data(), n, mpi_type(t.dtype()), out.raw_data(), n, mpi_type(t.dtype()), comm_, &r);
    MpiWork(this, "all_gather", n, r, nullptr).wait();
    return out;
  }

  Tensor reduce_scatter(const Tensor& t, ReduceOp op) override {
    check_collective_tensor(t, "reduce_scatter");
    check_avg(op, t.dtype(), "reduce_scatter");
    Shape s = t.dim() <= 1 ? Shape{t.numel()} : t.shape();
    LOOM_CHECK(s[0] % size_ == 0, "reduce_scatter: the first dimension (", s[0], ") does not split into ", size_,
               " equal chunks; pad it to a multiple of the world size");
    s[0] /= size_;
    Tensor src = is_half(t.dtype()) ? t.to(DType::f32) : t;
    Tensor out = make_tensor(s, src.dtype());
    const int n = count_of(out.numel(), "reduce_scatter");
    count_of(t.numel(), "reduce_scatter");
    MPI_Request r;
    MPI_Ireduce_scatter_block(src.raw_data(), out.raw_data(), n, mpi_type(src.dtype()), mpi_op(op, src.dtype()),
                              comm_, &r);
    MpiWork(this, "reduce_scatter", n, r, [&]() {
      if (op == ReduceOp::Avg) out.div_(double(size_));
    }).wait();
    return is_half(t.dtype()) ? out.to(t.dtype()) : out;
  }

  void barrier() override {
    MPI_Request r;
    MPI_Ibarrier(comm_, &r);
    MpiWork(this, "barrier", 0, r, nullptr).wait();
  }

  int rank_ = 0, size_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL;
};

MpiWork::~MpiWork() {
  // A Work dropped unfinished (an exception unwinding) must still not leave MPI writing into freed memory.
  if (!done_) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) wait();
  }
}

bool MpiWork::test() {
  if (done_) return true;
  int flag = 0;
  MPI_Test(&req_, &flag, MPI_STATUS_IGNORE);
  if (flag) complete();
  return done_;
}

void MpiWork::complete() {
  done_ = true;
  if (finish_) finish_();
  finish_ = nullptr;
}

void MpiWork::wait() {
  if (done_) return;
  const double t0 = now_s(), limit = comm_->timeout().count();
  for (int spins = 0;; ++spins) {
    int flag = 0;
    MPI_Test(&req_, &flag, MPI_STATUS_IGNORE);
    if (flag) break;
    if (spins > 200) std::this_thread::sleep_for(std::chrono::microseconds(20));
    if ((spins & 63) == 0 && now_s() - t0 > limit) {
      std::fprintf(stderr,
                   "loom: rank %d of %d: %s of %lld elements timed out after %.1f s waiting for the other ranks "
                   "(a rank died, hangs, or called a different collective); stopping the job. "
                   "LOOM_DIST_TIMEOUT sets the limit in seconds.\n",
                   comm_->rank(), comm_->world_size(), what_, (long long)n_, limit);
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 3);
      std::_Exit(3);
    }
  }
  comm_->add_comm_seconds(now_s() - t0);
  complete();
}

}  // namespace

CommPtr make_mpi_communicator() { return std::make_shared<MpiCommunicator>(); }

}  // namespace loom::dist
