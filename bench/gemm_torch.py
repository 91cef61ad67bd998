# W6 reference: numpy and PyTorch f32 matmul at the same sizes and thread count as gemm_bench.
import json, os, sys, time
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
import numpy as np, torch
torch.set_num_threads(threads)

def best(f, reps):
    f()
    t = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)
    return t

for n in (512, 1024, 2048):
    reps = 3 if n >= 2048 else 8
    a = np.random.randn(n, n).astype(np.float32); b = np.random.randn(n, n).astype(np.float32)
    s = best(lambda: a @ b, reps)
    print(json.dumps({"bench": "gemm", "impl": "numpy", "n": n, "gflops": round(2 * n**3 / s / 1e9, 1)}))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    s = best(lambda: ta @ tb, reps)
    print(json.dumps({"bench": "gemm", "impl": "torch", "n": n, "gflops": round(2 * n**3 / s / 1e9, 1)}))

# f32 vs bf16 at the training shapes of gemm_bench (forward x W^T, backward dY W and dY^T X). bf16 here
# includes the casts of both f32 operands, as autocast does them.
lins = [("w3_qkv", 2048, 128, 384), ("w3_mlp", 2048, 128, 512), ("w5_qkv", 256, 768, 2304), ("w5_mlp", 256, 768, 3072),
        ("w5_head", 256, 768, 50257), ("sq1024", 1024, 1024, 1024), ("sq2048", 2048, 2048, 2048)]
for name, rows, i, o in lins:
    x, w, g = torch.randn(rows, i), torch.randn(o, i), torch.randn(rows, o)
    flops = 2.0 * rows * i * o
    reps = 2 if flops > 2e10 else 4 if flops > 2e9 else 10
    bf = lambda t: t.bfloat16()
    for pas, f32, b16 in [("fwd", lambda: x @ w.t(), lambda: bf(x) @ bf(w).t()),
                          ("bwd_dx", lambda: g @ w, lambda: bf(g) @ bf(w)),
                          ("bwd_dw", lambda: g.t() @ x, lambda: bf(g).t() @ bf(x))]:
        s32, s16 = best(f32, reps), best(b16, reps)
        print(json.dumps({"bench": "gemm_bf16", "impl": "torch", "shape": name, "pass": pas,
                          "f32_gflops": round(flops / s32 / 1e9, 1), "bf16_gflops": round(flops / s16 / 1e9, 1)}))
