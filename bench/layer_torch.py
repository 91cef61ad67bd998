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

if len(sys.argv) > 2 and sys.argv[2] == "norm":  # layer norm alone, fwd and fwd+bwd
    for rows, width in [(256, 768), (2048, 128), (6400, 256)]:
        x = torch.randn(rows, width, requires_grad=True); g = torch.randn(rows, width)
        lw = torch.randn(width, requires_grad=True); lb = torch.randn(width, requires_grad=True)
        with torch.no_grad():
            f = best(lambda: F.layer_norm(x, (width,), lw, lb), 50)
        fb = best(lambda: F.layer_norm(x, (width,), lw, lb).backward(g), 50)
        print(json.dumps({"bench": "layer", "impl": "torch", "layer": f"layer_norm_{rows}x{width}",
                          "fwd_us": round(f * 1e6, 1), "fwd_bwd_us": round(fb * 1e6, 1)}))
    sys.exit(0)
for name, i, o in [("linear_784_512", 784, 512), ("linear_512_256", 512, 256), ("linear_1600_64", 1600, 64), ("linear_64_10", 64, 10)]:
    x = torch.randn(64, i, requires_grad=True); w = torch.randn(o, i, requires_grad=True); b = torch.randn(o, requires_grad=True)
    g = torch.randn(64, o)
    report(name, best(lambda: F.linear(x, w, b).backward(g), 50))
for name, c, oc, hw in [("conv_1_32_28", 1, 32, 28), ("conv_32_64_13", 32, 64, 13)]:
    x = torch.randn(64, c, hw, hw, requires_grad=c > 1); w = torch.randn(oc, c, 3, 3, requires_grad=True)
    b = torch.randn(oc, requires_grad=True); g = torch.randn(64, oc, hw - 2, hw - 2)
    report(name, best(lambda: F.conv2d(x, w, b).backward(g), 20))

for tokens, width in [(256, 768), (2048, 128)]:
    sfx = f"_{tokens}x{width}"
    x = torch.randn(tokens, width, requires_grad=True); g = torch.randn(tokens, width)
    lw = torch.randn(width, requires_grad=True); lb = torch.randn(width, requires_grad=True)
    report("layer_norm" + sfx, best(lambda: F.layer_norm(x, (width,), lw, lb).backward(g), 20))
    h = torch.randn(tokens, 4 * width, requires_grad=True); gh = torch.randn(tokens, 4 * width)
    report("gelu_tanh" + sfx, best(lambda: F.gelu(h, approximate="tanh").backward(gh), 20))
    emb = torch.randn(50257 if tokens == 256 else 96, width, requires_grad=True)
    idx = torch.randint(0, emb.shape[0], (tokens,))
    report("embedding" + sfx, best(lambda: F.embedding(idx, emb).backward(g), 20))
logits = torch.randn(256, 50257, requires_grad=True); target = torch.randint(0, 50257, (256,))
report("cross_entropy_256x50257", best(lambda: F.cross_entropy(logits, target).backward(), 10))
params = [torch.randn(1024, 1024, requires_grad=True) for _ in range(8)]
for p in params:
    p.grad = torch.randn(1024, 1024)
opt = torch.optim.AdamW(params)
report("adamw_step_8M", best(lambda: opt.step(), 10))
