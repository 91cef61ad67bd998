# PyTorch side of attention_bench: torch 1.13 has no F.scaled_dot_product_attention, so this is the explicit
# matmul-softmax-matmul that /work/shared/bench/torch_ref/gpt_char.py falls back to, on the same shapes.
import json, math, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)

def best(f, reps):
    f()
    t = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter(); f(); t = min(t, time.perf_counter() - t0)
    return t

def attn(q, k, v, causal):
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if causal:
        att = att.masked_fill(torch.ones(T, T).tril() == 0, float("-inf"))
    return att.softmax(-1) @ v

for name, B, H, T, D, causal in [("attn_w3_causal", 16, 4, 128, 32, True), ("attn_w5_causal", 4, 12, 64, 64, True),
                                 ("attn_w5_full", 4, 12, 64, 64, False), ("attn_t512_causal", 4, 12, 512, 64, True),
                                 ("attn_t1024_causal", 2, 12, 1024, 64, True)]:
    q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
    g = torch.randn(B, H, T, D)
    reps = 3 if T >= 512 else 10
    with torch.no_grad():
        f = best(lambda: attn(q, k, v, causal), reps)
    fb = best(lambda: attn(q, k, v, causal).backward(g), reps)
    print(json.dumps({"bench": "layer", "impl": "torch", "layer": name, "fwd_us": round(f * 1e6, 1), "fwd_bwd_us": round(fb * 1e6, 1)}))
