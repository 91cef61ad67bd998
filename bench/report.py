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

ops = [r["op"] for r in rows if r["bench"] == "cnn_step" and r["impl"] == "loom" and "fwd_us" in r]
if ops:
    print("\nW2 op (us)               loom fwd  torch fwd   loom f+b  torch f+b   speed-up f+b")
    for name in dict.fromkeys(ops):
        g = lambda impl, key: best(lambda r: r["bench"] == "cnn_step" and r.get("op") == name and r["impl"] == impl, key, False)
        lf, tf, lb, tb = g("loom", "fwd_us"), g("torch", "fwd_us"), g("loom", "fwd_bwd_us"), g("torch", "fwd_bwd_us")
        print(f"  {name:<22} {lf:>9.1f} {tf:>10.1f} {lb:>10.1f} {tb:>10.1f}   {tb / lb:>6.2f}x")

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

# GPT (bench/gpt_bench.sh): rows for one (impl, workload) are merged; MFU is the model's FLOP/s over the
# best loom GEMM GFLOP/s of this run (the W6 ceiling).
gpt = {}
for r in rows:
    if r["bench"] == "gpt":
        gpt.setdefault((r["impl"], r["workload"]), {}).update(r)
if gpt:
    ceiling = best(lambda r: r["bench"] == "gemm" and r["impl"] == "loom", "gflops")
    fmt = lambda v, w, p=0: f"{v:>{w}.{p}f}" if v is not None else f"{'-':>{w}}"
    print("\nGPT train       loom tok/s  torch tok/s   ratio  loom val  torch val  loom gen/s (cache)  torch gen/s  loom MB  torch MB  MFU")
    for w in ("W3", "W5"):
        l, t = gpt.get(("loom", w), {}), gpt.get(("torch", w), {})
        if not l and not t: continue
        lt, tt = l.get("train_tokens_per_s"), t.get("train_tokens_per_s")
        ratio = f"{lt / tt:>6.2f}x" if lt and tt else "     -"
        mfu = f"{l['model_gflops'] / ceiling:.0%}" if ceiling and l.get("model_gflops") else "-"
        tgen = t.get("gen_tokens_per_s_no_cache") or t.get("prefill_tokens_per_s")
        lm, tm = l.get("peak_rss_kb"), t.get("peak_rss_kb")
        print(f"  {w:<13} {fmt(lt, 11)} {fmt(tt, 12)} {ratio} {fmt(l.get('val_loss'), 9, 4)} {fmt(t.get('val_loss'), 10, 4)} "
              f"{fmt(l.get('gen_tokens_per_s'), 19, 1)} {fmt(tgen, 12, 1)} {fmt(lm and lm / 1024, 8)} {fmt(tm and tm / 1024, 9)}  {mfu}")
dec = [r for r in rows if r["bench"] == "gpt_decode"]
if dec:
    print("\nKV cache at 512 tokens   cached ms/token  recompute ms/token  speed-up")
    for r in dec:
        print(f"  {r['shape']:<22} {r['cached_ms_per_token']:>15.3f} {r['recompute_ms_per_token']:>19.3f} {r['speedup']:>8.1f}x")

# W4 (run_all.sh): the char-level LSTM LM, loom vs our copy of the PyTorch recipe with a validation loss.
w4 = {}
for r in rows:
    if r["bench"] == "lstm_lm":
        w4.setdefault(r["impl"], {}).update(r)
if w4.get("loom") or w4.get("torch"):
    l, t = w4.get("loom", {}), w4.get("torch", {})
    fmt = lambda v, w, p=0: f"{v:>{w}.{p}f}" if v is not None else f"{'-':>{w}}"
    lt, tt = l.get("train_tokens_per_s"), t.get("train_tokens_per_s")
    ratio = f"{lt / tt:>6.2f}x" if lt and tt else "     -"
    lm, tm = w4.get("loom_rss", {}).get("peak_rss_kb"), w4.get("torch_rss", {}).get("peak_rss_kb")
    print("\nLSTM LM train   loom tok/s  torch tok/s   ratio  loom val  torch val  loom loss  torch loss  loom MB  torch MB")
    print(f"  {'W4':<13} {fmt(lt, 11)} {fmt(tt, 12)} {ratio} {fmt(l.get('val_loss'), 9, 4)} {fmt(t.get('val_loss'), 10, 4)} "
          f"{fmt(l.get('loss'), 10, 4)} {fmt(t.get('loss'), 11, 4)} {fmt(lm and lm / 1024, 8)} {fmt(tm and tm / 1024, 9)}")

# Issue 6 (run_all.sh via dist_bench.sh): W2 data-parallel scaling, N ranks x 1 thread vs 1 rank x 1 thread.
for r in rows:
    if r["bench"] == "dist":
        if r is next(x for x in rows if x["bench"] == "dist"):
            print("\nW2 data-parallel     1 rank samples/s  N ranks samples/s  speed-up  efficiency  comm ms/step")
        print(f"  {r['ranks']} ranks x 1 thread {r['samples_per_s_1']:>18.0f} {r['samples_per_s_n']:>18.0f} "
              f"{r['speedup']:>8.2f}x {100 * r['efficiency']:>10.0f}% {r['comm_ms_per_step']:>13.2f}")

# Issue 13 (run_all.sh via gguf_vs_llama.sh): the same GGUF files decoded by loom and by llama.cpp, same threads.
gg = [r for r in rows if r["bench"] == "gguf_decode"]
if gg:
    print("\nGGUF decode (tok/s)            prompt  generated   loom/llama prompt  loom/llama generated")
    for f in sorted({r["file"] for r in gg}):
        loom = next((r for r in gg if r["file"] == f and r["impl"] == "loom"), {})
        for r in (x for x in gg if x["file"] == f):
            lp, lg = loom.get("prompt_tokens_per_s"), loom.get("generated_tokens_per_s")
            p, g = r.get("prompt_tokens_per_s"), r.get("generated_tokens_per_s")
            rp = f"{lp / p:.2f}x" if r is not loom and lp and p else "-"
            rg = f"{lg / g:.2f}x" if r is not loom and lg and g else "-"
            print(f"  {f:<14} {r['impl']:<24} {p or 0:>7.1f} {g or 0:>10.1f} {rp:>18} {rg:>21}")
