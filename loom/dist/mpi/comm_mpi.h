// The MPI engine's factory (compiled only when CMake finds MPI; see loom/dist/comm.h for the interface).
//   CommPtr c = make_mpi_communicator();   // MPI_Init_thread on first use, MPI_Finalize at exit
#pragma once
#include "loom/dist/comm.h"

namespace loom::dist {

CommPtr make_mpi_communicator();

}  // namespace loom::dist
