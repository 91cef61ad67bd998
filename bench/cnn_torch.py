# PyTorch side of cnn_bench: W2's ops timed alone (forward, forward+backward), then the whole Adam step.
# usage: cnn_torch.py THREADS [BATCH [cpu]]   (cpu: best-of-N process CPU time instead of wall time)
import json, sys, time
import torch, torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
B = int(sys.argv[2]) if len(sys.argv) > 2 else 64
reps = 30
clock = time.process_time if len(sys.argv) > 3 and sys.argv[3] == "cpu" else time.perf_counter
torch.manual_seed(0)

def best(f):
    f()
    t = float("inf")
    for _ in range(reps):
        t0 = clock(); f(); t = min(t, clock() - t0)
    return t

def report(name, fwd, fb):
    print(json.dumps({"bench": "cnn_step", "impl": "torch", "op": name, "fwd_us": round(fwd * 1e6, 1),
                      "fwd_bwd_us": round(fb * 1e6, 1)}))

w1 = torch.randn(32, 1, 3, 3) * 0.3; b1 = torch.randn(32) * 0.1
w2 = torch.randn(64, 32, 3, 3) * 0.06; b2 = torch.randn(64) * 0.1
w3 = torch.randn(64, 1600) * 0.025; b3 = torch.randn(64) * 0.1
w4 = torch.randn(10, 64) * 0.1; b4 = torch.randn(10) * 0.1
x = torch.rand(B, 1, 28, 28); target = torch.randint(0, 10, (B,))
with torch.no_grad():
    a1 = F.conv2d(x, w1, b1); a2 = F.relu(a1); a3 = F.max_pool2d(a2, 2); a4 = F.conv2d(a3, w2, b2)
    a5 = F.relu(a4); a6 = F.max_pool2d(a5, 2); a7 = F.relu(F.linear(a6.reshape(B, 1600), w3, b3))
params = [w1, b1, w2, b2, w3, b3, w4, b4]
for p in params:
    p.requires_grad_(True)

def time_op(name, inp, f):
    xi = inp.detach().clone().requires_grad_(True)
    with torch.no_grad():
        g = torch.randn(f(xi).shape)
    def fwd():
        with torch.no_grad():
            f(xi)
    report(name, best(fwd), best(lambda: f(xi).backward(g)))

time_op("conv1_1_32_28", x, lambda t: F.conv2d(t.detach(), w1, b1))
time_op("relu1", a1, F.relu)
time_op("pool1", a2, lambda t: F.max_pool2d(t, 2))
time_op("conv2_32_64_13", a3, lambda t: F.conv2d(t, w2, b2))
time_op("relu2", a4, F.relu)
time_op("pool2", a5, lambda t: F.max_pool2d(t, 2))
time_op("linear_1600_64_relu", a6, lambda t: F.relu(F.linear(t.reshape(B, 1600), w3, b3)))
time_op("linear_64_10", a7, lambda t: F.linear(t, w4, b4))

opt = torch.optim.Adam(params, lr=1e-3)
def forward():
    h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, w2, b2)), 2)
    return F.linear(F.relu(F.linear(h.reshape(B, 1600), w3, b3)), w4, b4)
def fwd_only():
    with torch.no_grad():
        forward()
def step():
    opt.zero_grad(); F.cross_entropy(forward(), target).backward(); opt.step()
t_step = best(step)
report("step", best(fwd_only), t_step)
t_adam = best(lambda: opt.step())
report("adam_step", t_adam, t_adam)
print(json.dumps({"bench": "cnn_step", "impl": "torch", "op": "train_samples_per_s", "value": round(B / t_step)}))
