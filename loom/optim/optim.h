// Everything in loom/optim: optimizers, LR schedulers and gradient clipping.
//   #include "loom/optim/optim.h"
//   optim::AdamW opt(model.parameters(), {.lr = 3e-4});
//   optim::OneCycleLR sched(opt, {.max_lr = {3e-3}, .total_steps = n});
//   loss.backward();  optim::clip_grad_norm_(model.parameters(), 1.0);  opt.step();  sched.step();  opt.zero_grad();
#pragma once
#include "loom/optim/adam.h"
#include "loom/optim/clip.h"
#include "loom/optim/optimizer.h"
#include "loom/optim/rmsprop.h"
#include "loom/optim/scheduler.h"
#include "loom/optim/sgd.h"
#include "loom/optim/state_dict.h"
