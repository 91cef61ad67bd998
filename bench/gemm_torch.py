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
