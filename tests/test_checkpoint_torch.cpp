// Weights move between loom and PyTorch (Debian's python3-torch) as safetensors files: loom's
// model.safetensors loads into the same torch nn.Sequential with matching outputs, and a state_dict written
// by PyTorch loads into loom's model. The Python side reads and writes the format with struct + json itself,
// so the test needs no safetensors package and checks the bytes independently of loom's reader.
#include <gtest/gtest.h>

#include <filesystem>

#include "loom/loom.h"
#include "support/torch_oracle.h"

using namespace loom;
using loom::test::torch_run;
namespace fs = std::filesystem;

namespace {

const char* kPySafetensors = R"PY(
import json, struct
def load_st(path):
    data = open(path, 'rb').read()
    n, = struct.unpack('<Q', data[:8])
    head = json.loads(data[8:8 + n]); base = 8 + n
    sd = {}
    for k, v in head.items():
        if k == '__metadata__': continue
        assert v['dtype'] == 'F32', v['dtype']
        s, e = v['data_offsets']
        sd[k] = torch.frombuffer(bytearray(data[base + s:base + e]), dtype=torch.float32).reshape(v['shape'])
    return sd, head.get('__metadata__', {})
def save_st(path, sd):
    head, blobs, off = {}, [], 0
    for k, v in sd.items():
        b = v.detach().contiguous().float().numpy().tobytes()
        head[k] = {'dtype': 'F32', 'shape': list(v.shape), 'data_offsets': [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(head).encode(); h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)
)PY";

// The torch nn.Sequential of bench/torch_ref/fmnist_train.py for each seed model.
std::string torch_model(const std::string& name) {
  if (name == "cnn")
    return "nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), "
           "nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 64), nn.ReLU(), nn.Linear(64, 10))";
  if (name == "lenet")
    return "nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), "
           "nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), "
           "nn.Linear(84, 10))";
  return "nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), "
         "nn.Linear(256, 10))";
}

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("loom_test_ckpt_torch_" + std::to_string(getpid()) + "_" + name);
}

}  // namespace

class TorchInterop : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchInterop, LoomWeightsLoadInPyTorch) {
  const std::string name = GetParam();
  manual_seed(21);
  auto model = models::make_model(name, {});
  const fs::path file = temp_file(name + "_loom.safetensors");
  train::save_weights(file.string(), *model);
  Tensor x = rand({3, 1, 28, 28});
  model->eval();
  Tensor ours = (*model)(x);
  auto r = torch_run(std::string(kPySafetensors) + "sd, meta = load_st('" + file.string() + "')\n" +
                         "assert meta.get('format') == 'pt', meta\n" + "m = " + torch_model(name) +
                         "\nm.load_state_dict(sd, strict=True)\nm.eval()\n"
                         "with torch.no_grad(): out['y'] = m(x)\n",
                     {{"x", x}});
  EXPECT_PARITY(name + " outputs", ours, r.at("y"));
  fs::remove(file);
}

TEST_P(TorchInterop, PyTorchStateDictLoadsInLoom) {
  const std::string name = GetParam();
  const fs::path file = temp_file(name + "_torch.safetensors");
  Tensor x = rand({3, 1, 28, 28});
  auto r = torch_run(std::string(kPySafetensors) + "torch.manual_seed(5)\nm = " + torch_model(name) + "\nsave_st('" +
                         file.string() +
                         "', m.state_dict())\nm.eval()\n"
                         "with torch.no_grad(): out['y'] = m(x)\n",
                     {{"x", x}});
  auto model = models::make_model(name, {});
  train::load_weights(file.string(), *model);  // strict: every key present with its shape
  model->eval();
  EXPECT_PARITY(name + " outputs", (*model)(x), r.at("y"));
  fs::remove(file);
}

INSTANTIATE_TEST_SUITE_P(SeedModels, TorchInterop, ::testing::Values("mlp", "lenet", "cnn"));
