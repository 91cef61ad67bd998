# W4 with a validation loss: OUR COPY of the recipe in /work/shared/bench/torch_ref/lstm_char.py (embedding 64,
# 2-layer LSTM 256, seq 100, batch 32, Adam 2e-3, clip 1.0, torch.manual_seed(0)), changed only so that it
# trains on the first 90% of the characters and reports the mean cross-entropy over the last 10% in
# consecutive non-overlapping blocks of 100 (what `loom train --model lstm-lm` reports as val_loss).
# usage: lstm_char_val.py TEXT STEPS [VAL_TOKENS]   (VAL_TOKENS: evaluate only the first N validation tokens)
import json, os, sys, time, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(int(os.environ.get("THREADS", "2"))); torch.manual_seed(0)
text = open(sys.argv[1], encoding="utf-8").read(); steps = int(sys.argv[2]); T, B, Hd = 100, 32, 256
val_tokens = int(sys.argv[3]) if len(sys.argv) > 3 else 0
chars = sorted(set(text)); stoi = {c: i for i, c in enumerate(chars)}; V = len(chars)
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(0.9 * len(data)); train, val = data[:n], data[n:]
class M(nn.Module):
    def __init__(s): super().__init__(); s.emb = nn.Embedding(V, 64); s.rnn = nn.LSTM(64, Hd, num_layers=2, batch_first=True); s.out = nn.Linear(Hd, V)
    def forward(s, x): return s.out(s.rnn(s.emb(x))[0])
m = M(); opt = torch.optim.Adam(m.parameters(), lr=2e-3); t0 = time.perf_counter()
for it in range(1, steps + 1):
    ix = torch.randint(len(train) - T - 1, (B,)); x = torch.stack([train[i:i+T] for i in ix]); y = torch.stack([train[i+1:i+T+1] for i in ix])
    loss = F.cross_entropy(m(x).reshape(-1, V), y.reshape(-1)); opt.zero_grad(); loss.backward(); nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
train_s = time.perf_counter() - t0
starts = list(range(0, len(val) - T, T))
if val_tokens > 0: starts = starts[:max(1, val_tokens // T)]
m.eval(); total = 0.0
with torch.no_grad():
    for b in range(0, len(starts), B):
        s = starts[b:b+B]; x = torch.stack([val[i:i+T] for i in s]); y = torch.stack([val[i+1:i+T+1] for i in s])
        total += F.cross_entropy(m(x).reshape(-1, V), y.reshape(-1)).item() * len(s)
print(json.dumps({"loss": loss.item(), "val_loss": total / len(starts), "train_tokens_per_s": steps * B * T / train_s}), flush=True)
