// Collective communication between the processes of a data-parallel job, behind one small interface.
//   auto comm = dist::init();                    // MPI under mpirun (or LOOM_DIST=local): else a 1-rank group
//   comm->all_reduce(grad, dist::ReduceOp::Avg); // in place, every rank ends with the mean
//   Tensor all = comm->all_gather(shard);        // (world_size * n, ...) in rank order
// Engines: LocalCommunicator (one process; every collective is the identity) and MpiCommunicator
// (loom/dist/mpi/, built when CMake finds MPI). NCCL is the GPU engine to come (docs/distributed.md).
// Every MPI collective runs non-blocking and is waited on with a deadline (timeout(), default 300 s, env
// LOOM_DIST_TIMEOUT): a rank that died or hangs stops the job with an error naming the collective.
#pragma once
#include <chrono>
#include <memory>
#include <string>

#include "loom/core/tensor.h"

namespace loom::dist {

// Avg divides the sum by world_size (floating dtypes only). Bool tensors take Sum/Max as "or", Min as "and".
enum class ReduceOp { Sum, Avg, Max, Min };
const char* reduce_op_name(ReduceOp op);

// A collective in flight: wait() blocks (up to the communicator's timeout) until its result is in place.
class Work {
 public:
  virtual ~Work() = default;
  virtual bool test() = 0;  // true once finished; also drives progress of the transfer (call it while busy)
  virtual void wait() = 0;
};
using WorkPtr = std::shared_ptr<Work>;

// Every rank calls the same collectives in the same order with tensors of the same shape and dtype.
// Tensors must be contiguous CPU tensors; the in-place collectives refuse anything else.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;  // "local" or "mpi"

  virtual WorkPtr all_reduce_async(Tensor& t, ReduceOp op = ReduceOp::Sum) = 0;
  void all_reduce(Tensor& t, ReduceOp op = ReduceOp::Sum) { all_reduce_async(t, op)->wait(); }
  // t on `root` is copied into t on every other rank.
  virtual void broadcast(Tensor& t, int root = 0) = 0;
  // Rank r's t lands at rows [r*n, (r+1)*n) of a (world_size*n, ...) result (a 0-dim t gives (world_size)).
  virtual Tensor all_gather(const Tensor& t) = 0;
  // t's first dim (or numel, for 0/1-dim) is split into world_size equal chunks; rank r gets chunk r of the
  // reduction over ranks. Errors when the size does not divide.
  virtual Tensor reduce_scatter(const Tensor& t, ReduceOp op = ReduceOp::Sum) = 0;
  virtual void barrier() = 0;
  // Ends this process and, for MPI, every other rank of the job at once (MPI_Abort). Does not return.
  [[noreturn]] virtual void abort(int exit_code);

  // How long a collective may wait for the other ranks before the job is stopped.
  std::chrono::duration<double> timeout() const { return timeout_; }
  void set_timeout(std::chrono::duration<double> t) { timeout_ = t; }
  // Seconds spent inside blocking collectives and waits since the last reset (the benchmark's comm time).
  double comm_seconds() const { return comm_seconds_; }
  void reset_comm_seconds() { comm_seconds_ = 0; }
  void add_comm_seconds(double s) { comm_seconds_ += s; }

 protected:
  Communicator();

 private:
  std::chrono::duration<double> timeout_;
  double comm_seconds_ = 0;
};
using CommPtr = std::shared_ptr<Communicator>;

// One process: rank 0 of 1. Collectives copy or do nothing; always available.
CommPtr local_communicator();

// True when loom was built with MPI (CMake option LOOM_MPI).
bool mpi_available();
// True when this process was started by mpirun/srun (Open MPI, MPICH or Slurm environment variables).
bool launched_by_mpi();

// The job's communicator, created on first call: MPI when built with it and launched by mpirun/srun (or
// LOOM_DIST=mpi), else the local one; LOOM_DIST=local forces the local one. `require_mpi` makes the
// absence of MPI an error (loom train --distributed without an MPI build). MPI is finalised at exit.
CommPtr init(bool require_mpi = false);
// The communicator init() made (init() first if none).
CommPtr world();

// When this process is one rank of a multi-rank job (init() made a group of 2+): says on stderr that this
// rank failed and ends every rank at once (Communicator::abort), so the others do not wait out the collective
// time-out. Returns when there is no such group. The loom command calls it after printing a failing command's
// error.
void abort_job_if_distributed(int exit_code);

// The default collective timeout: LOOM_DIST_TIMEOUT seconds, or 300.
double default_timeout_seconds();

// Checks shapes/dtypes the collectives need, with errors naming the collective.
void check_collective_tensor(const Tensor& t, const char* what);

}  // namespace loom::dist
