// Everything for data-parallel training in one include.
//   #include "loom/dist/dist.h"
//   auto comm = dist::init();  dist::DistributedDataParallel ddp(*model, comm);
#pragma once
#include "loom/data/distributed_sampler.h"
#include "loom/dist/comm.h"
#include "loom/dist/ddp.h"
#include "loom/dist/zero.h"
