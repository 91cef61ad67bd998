# PyTorch side of layer_bench: the same layers, shapes and gradients.
import json, sys, time
import torch, torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)

def best(f, reps):
    f()
    t = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)
    return t

def report(name, s):
    print(json.dumps({"bench": "layer", "impl": "torch", "layer": name, "fwd_bwd_us": round(s * 1e6, 1)}))

for name, i, o in [("linear_784_512", 784, 512), ("linear_512_256", 512, 256), ("linear_1600_64", 1600, 64), ("linear_64_10", 64, 10)]:
    x = torch.randn(64, i, requires_grad=True); w = torch.randn(o, i, requires_grad=True); b = torch.randn(o, requires_grad=True)
    g = torch.randn(64, o)
    report(name, best(lambda: F.linear(x, w, b).backward(g), 50))
for name, c, oc, hw in [("conv_1_32_28", 1, 32, 28), ("conv_32_64_13", 32, 64, 13)]:
    x = torch.randn(64, c, hw, hw, requires_grad=c > 1); w = torch.randn(oc, c, 3, 3, requires_grad=True)
    b = torch.randn(oc, requires_grad=True); g = torch.randn(64, oc, hw - 2, hw - 2)
    report(name, best(lambda: F.conv2d(x, w, b).backward(g), 20))
