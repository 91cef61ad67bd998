# The PyTorch side of loom's parity tests. Reads one JSON request per line on stdin:
#   {"code": "...", "inputs": {"x": {"dtype": "float32", "shape": [2, 3], "data": [...], "requires_grad": true}}}
# runs `code` with torch, F, nn and the inputs in scope (it must fill the dict `out`), and writes one JSON
# line back: {"out": {name: {"dtype", "shape", "data"}}} or {"error": "..."}.
import json, sys, traceback
import torch, torch.nn as nn, torch.nn.functional as F

torch.set_num_threads(1)
DT = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64, "int32": torch.int32,
      "uint8": torch.uint8, "bool": torch.bool}

def decode(spec):
    t = torch.tensor(spec["data"], dtype=DT[spec["dtype"]]).reshape(spec["shape"])
    if spec.get("requires_grad"):
        t.requires_grad_(True)
    return t

def encode(t):
    if isinstance(t, (int, float)):
        t = torch.tensor(t)
    t = t.detach()
    name = str(t.dtype).replace("torch.", "")
    return {"dtype": name, "shape": list(t.shape), "data": t.reshape(-1).double().tolist() if t.is_floating_point() else t.reshape(-1).tolist()}

for line in sys.stdin:
    try:
        req = json.loads(line)
        scope = {"torch": torch, "F": F, "nn": nn, "out": {}}
        for k, v in req["inputs"].items():
            scope[k] = decode(v)
        exec(req["code"], scope)
        res = {"out": {k: encode(v) for k, v in scope["out"].items() if v is not None}}
    except Exception:
        res = {"error": traceback.format_exc()}
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()
