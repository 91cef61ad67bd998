// All functional ops (loom::exp, loom::matmul, loom::conv2d, ...).
#pragma once
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/linalg.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"
#include "loom/ops/conv.h"
#include "loom/ops/attention.h"
#include "loom/ops/autocast.h"
#include "loom/ops/fused_mlp.h"
