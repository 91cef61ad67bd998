# PyTorch side of elementwise_bench: the same ops on the same 1M-float shapes and thread count.
import json, sys, time
import torch, torch.nn.functional as F
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
torch.manual_seed(0)
x = torch.randn(1 << 20) * 3.0
x2 = x.view(1024, 1024)
xg = x2.detach().requires_grad_(True); g = torch.randn(1024, 1024)

def best(f, reps=30):
    f()
    t = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)
    return t

ops = {"exp": lambda: torch.exp(x), "sigmoid": lambda: torch.sigmoid(x), "tanh": lambda: torch.tanh(x),
       "gelu_tanh": lambda: F.gelu(x, approximate="tanh"), "gelu_erf": lambda: F.gelu(x),
       "softmax": lambda: torch.softmax(x2, 1), "log_softmax": lambda: torch.log_softmax(x2, 1),
       "softmax_fwd_bwd": lambda: torch.softmax(xg, 1).backward(g),
       "log_softmax_fwd_bwd": lambda: torch.log_softmax(xg, 1).backward(g)}
for name, f in ops.items():
    print(json.dumps({"bench": "elementwise", "impl": "torch", "op": name, "threads": threads, "us": round(best(f) * 1e6, 1)}))
