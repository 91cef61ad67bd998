// The umbrella header: everything a loom program needs.
//   #include <loom/loom.h>
//   auto model = loom::nn::Sequential(...);  auto y = model.forward(loom::randn({8, 784}));
#pragma once
#include "loom/autograd/checkpoint.h"
#include "loom/autograd/function.h"
#include "loom/autograd/grad_mode.h"
#include "loom/backend/backend.h"
#include "loom/core/generator.h"
#include "loom/core/tensor.h"
#include "loom/ops/ops.h"
#include "loom/nn/loss.h"
#include "loom/nn/nn.h"
#include "loom/optim/optim.h"
#include "loom/data/data.h"
#include "loom/io/safetensors.h"
#include "loom/train/train.h"
#include "loom/models/models.h"
#include "loom/models/gpt.h"
#include "loom/models/gpt_hf.h"
#include "loom/text/text.h"
