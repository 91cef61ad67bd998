// One process, no mpirun: the world is the 1-process communicator, and an all-reduce leaves its input as it was.
#include <loom/dist/dist.h>
#include <loom/loom.h>

#include <cstdio>

int main() {
  loom::dist::CommPtr comm = loom::dist::local_communicator();
  loom::Tensor t = loom::ones({3});
  comm->all_reduce(t);  // in place
  std::printf("dist: world %d, mpi %s, sum %.1f\n", comm->world_size(), loom::dist::mpi_available() ? "yes" : "no",
              t.sum().item());
  return comm->world_size() == 1 && t.sum().item() == 3.0 ? 0 : 1;
}
