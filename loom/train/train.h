// The training layer: Trainer (fit / evaluate / predict), metrics, callbacks, progress output, checkpoints,
// run folders and the PNG charts they hold.
//   #include "loom/train/train.h"
//   train::History h = train::fit(*model, loader, {.epochs = 5, .optimizer = &opt, .validation = &val});
//   train::save_weights("model.safetensors", *model);
#pragma once
#include "loom/train/callbacks.h"
#include "loom/train/checkpoint.h"
#include "loom/train/distill.h"
#include "loom/train/metrics.h"
#include "loom/train/plot.h"
#include "loom/train/png.h"
#include "loom/train/progress.h"
#include "loom/train/run_folder.h"
#include "loom/train/trainer.h"
