// The data layer: datasets, samplers, the DataLoader, transforms and file formats.
//   auto train = loom::data::load_fashion_mnist();
//   loom::data::DataLoader loader(train, {.batch_size = 64, .shuffle = true, .num_workers = 2});
//   for (auto& [x, y] : loader) { /* x: f32 (64, 1, 28, 28), y: i64 (64) */ }
#pragma once
#include "loom/data/cifar.h"
#include "loom/data/csv.h"
#include "loom/data/dataloader.h"
#include "loom/data/dataset.h"
#include "loom/data/file_util.h"
#include "loom/data/image_folder.h"
#include "loom/data/mnist.h"
#include "loom/data/sampler.h"
#include "loom/data/transforms.h"
