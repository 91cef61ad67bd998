# Reads the benchmarks' JSON lines on stdin and prints loom-vs-PyTorch tables with ratios.
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip().startswith("{")]

def best(pred, key, higher=True):
    vals = [r[key] for r in rows if pred(r) and key in r]
    return (max(vals) if higher else min(vals)) if vals else None

print("\nGEMM f32            loom GFLOP/s   numpy   torch   loom/torch")
for n in sorted({r["n"] for r in rows if r["bench"] == "gemm"}):
    l, np_, t = (best(lambda r, i=i: r["bench"] == "gemm" and r["n"] == n and r["impl"] == i, "gflops") for i in ("loom", "numpy", "torch"))
    print(f"  {n:>5}              {l:>10.1f} {np_:>7.1f} {t:>7.1f}   {l / t:>6.2f}x")

layers = sorted({r["layer"] for r in rows if r["bench"] == "layer"})
if layers:
    print("\nfwd+bwd (us)           loom     torch   speed-up loom vs torch")
    for name in layers:
        l = best(lambda r: r["bench"] == "layer" and r["layer"] == name and r["impl"] == "loom", "fwd_bwd_us", False)
        t = best(lambda r: r["bench"] == "layer" and r["layer"] == name and r["impl"] == "torch", "fwd_bwd_us", False)
        print(f"  {name:<18} {l:>8.1f} {t:>9.1f}   {t / l:>6.2f}x")

models = [m for m in ("mlp", "cnn", "lenet") if any(r.get("model") == m for r in rows)]
if models:
    print("\ntraining (1 epoch)   loom samples/s  torch samples/s  ratio   loom infer/s  torch infer/s  loom RSS MB  torch RSS MB")
    for m in models:
        def get(impl, key):
            return next((r[key] for r in rows if r.get("model") == m and r["impl"] == impl and key in r), None)
        ls, ts = get("loom", "train_samples_per_s"), get("torch", "train_samples_per_s")
        li, ti = get("loom", "infer_samples_per_s"), get("torch", "infer_samples_per_s")
        lr, tr = get("loom_rss", "peak_rss_kb"), get("torch_rss", "peak_rss_kb")
        fmt = lambda v, w, p=0: f"{v:>{w}.{p}f}" if v is not None else f"{'-':>{w}}"
        ratio = f"{ls / ts:>5.2f}x" if ls and ts else "    -"
        print(f"  {m:<18} {fmt(ls, 14)} {fmt(ts, 16)}  {ratio} {fmt(li, 13)} {fmt(ti, 14)} {fmt(lr and lr / 1024, 12)} {fmt(tr and tr / 1024, 13)}")
