// The nn layer: Module, containers, layers and initialisers (torch.nn's counterparts).
//   #include "loom/nn/nn.h"
//   nn::Sequential cnn(nn::Conv2d({.in = 1, .out = 8, .kernel_size = 3}), nn::ReLU(),
//                      nn::MaxPool2d({.kernel_size = 2}), nn::Flatten(), nn::Linear({.in = 8 * 13 * 13, .out = 10}));
//   std::cout << cnn << cnn.summary({1, 1, 28, 28});
#pragma once
#include "loom/nn/activation.h"
#include "loom/nn/container.h"
#include "loom/nn/conv_layers.h"
#include "loom/nn/dropout.h"
#include "loom/nn/embedding.h"
#include "loom/nn/init.h"
#include "loom/nn/linear.h"
#include "loom/nn/module.h"
#include "loom/nn/multihead_attention.h"
#include "loom/nn/norm_layers.h"
#include "loom/nn/pooling.h"
#include "loom/nn/positional.h"
#include "loom/nn/rms_norm.h"
#include "loom/nn/rnn.h"
#include "loom/nn/state_dict.h"
#include "loom/nn/transformer.h"
#include "loom/ops/nn_functional.h"
#include "loom/ops/norm.h"
