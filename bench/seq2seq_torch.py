# PyTorch side of `loom train --model seq2seq --data dates` throughput: the same encoder-decoder (embedding 32,
# bidirectional GRU 64 packed by length, tanh bridge, GRU decoder 128 over the whole target, Luong dot attention
# with the padding masked, combine + tanh, output over 99 ids), Adam 3e-3, clip 1.0, batch 128, on batches with
# the dates task's shapes (sources of 6..30 characters bucketed by length, targets <bos> + 10 + <eos>).
# usage: seq2seq_torch.py THREADS [STEPS]   prints {"bench": "seq2seq", "impl": "torch", "train_samples_per_s": ...}
import json, random, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 100
torch.manual_seed(0); random.seed(0)
V, E, H, B = 99, 32, 64, 128
D = 2 * H

class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.src_emb = nn.Embedding(V, E, padding_idx=0)
        self.enc = nn.GRU(E, H, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(D, D)
        self.tgt_emb = nn.Embedding(V, E, padding_idx=0)
        self.dec = nn.GRU(E, D, batch_first=True)
        self.combine = nn.Linear(2 * D, D)
        self.out = nn.Linear(D, V)

    def forward(self, src, lengths, tgt_in):
        packed = nn.utils.rnn.pack_padded_sequence(self.src_emb(src), lengths, batch_first=True, enforce_sorted=False)
        out, h = self.enc(packed)
        keys, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        h0 = torch.tanh(self.bridge(torch.cat([h[0], h[1]], 1))).unsqueeze(0)
        states, _ = self.dec(self.tgt_emb(tgt_in), h0)
        s = torch.bmm(states, keys.transpose(1, 2))
        mask = torch.arange(src.shape[1]).unsqueeze(0) >= lengths.unsqueeze(1)
        w = torch.softmax(s.masked_fill(mask.unsqueeze(1), float("-inf")), -1)
        c = torch.bmm(w, keys)
        return self.out(torch.tanh(self.combine(torch.cat([c, states], -1))))

def batch():
    lengths = sorted(random.randint(6, 30) for _ in range(B))  # bucketed: one batch spans a few lengths
    base = random.randint(0, B - 8)
    lengths = torch.tensor([lengths[min(B - 1, base + i % 8)] for i in range(B)])
    S = int(lengths.max())
    src = torch.randint(4, V, (B, S))
    src[torch.arange(S).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    tgt = torch.randint(4, V, (B, 12)); tgt[:, 0] = 2; tgt[:, -1] = 3
    return src, lengths, tgt

model = Seq2Seq()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
data = [batch() for _ in range(STEPS + 5)]

def step(src, lengths, tgt):
    logits = model(src, lengths, tgt[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, V), tgt[:, 1:].reshape(-1), ignore_index=0)
    opt.zero_grad(); loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

for b in data[:5]: step(*b)
t0 = time.perf_counter()
for b in data[5:]: step(*b)
dt = time.perf_counter() - t0
print(json.dumps({"bench": "seq2seq", "impl": "torch", "threads": torch.get_num_threads(),
                  "train_samples_per_s": round(STEPS * B / dt, 1)}))
