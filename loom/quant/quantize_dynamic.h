// Dynamic int8 quantization of a model, as torch.ao.quantization.quantize_dynamic(model, {nn.Linear: qconfig,
// nn.Conv2d: qconfig}, dtype=torch.qint8) with torch's per_channel_dynamic_qconfig: every nn::Linear and nn::Conv2d
// (groups 1) becomes an Int8Linear / Int8Conv2d (int8_layers.h). Inference only.
//   auto names = quant::quantize_dynamic(*model);   // {"3", "7", "9"} for the seed CNN (see DynamicOptions)
//   model->save / state_dict(): "<layer>.weight_int8" (u8 bytes of int8), "<layer>.weight_scale" f32, "<layer>.bias"
// Layers are swapped in the module tree (the parent's child of that name), which is what a Sequential runs; a
// model whose forward calls typed members (GPT's blocks) keeps calling the float layers it holds.
#pragma once
#include <string>
#include <vector>

#include "loom/nn/module.h"
#include "loom/nn/state_dict.h"

namespace loom::quant {

struct DynamicOptions {
  // A convolution with fewer multiply-adds per output (in_channels * kH * kW) stays float: the seed CNN's first
  // layer (1 x 3 x 3 = 9) holds 288 weights, so int8 saves nothing in size, and its unfold + quantize + int8
  // product measured 2-3.5x slower than the f32 direct convolution. 0 quantizes every convolution.
  int64_t min_conv_reduction = 32;
};

// Quantizes every float Linear / Conv2d under `model` (grouped convolutions, and those below
// min_conv_reduction, stay float); returns their dotted names in module order. Layers that are already quantized
// (int8 or ggml blocks) are left alone. torch's quantize_dynamic leaves Conv2d float unless asked; loom
// quantizes the convolutions that pay.
std::vector<std::string> quantize_dynamic(nn::Module& model, const DynamicOptions& options = {});

// The layers a state dict holds as int8: the prefixes of its "<layer>.weight_int8" keys, in the dict's order.
std::vector<std::string> int8_layers_in(const nn::StateDict& sd);

// For loading such a dict: replaces each named layer (a float Linear / Conv2d of the same options) by an empty
// int8 layer, to be filled by load_state_dict. Throws naming the layer when it is missing or of another kind.
void prepare_int8(nn::Module& model, const std::vector<std::string>& names);

}  // namespace loom::quant
