#!/usr/bin/env python3
"""Label-noise helpers for the audit-labels measurements (docs/data-and-explanations.md).

  label_noise.py flip SRC_DIR OUT_DIR FRACTION SEED    # OUT_DIR: Fashion-MNIST with FRACTION of train labels flipped
  label_noise.py score OUT_DIR ISSUES_CSV              # precision / recall of issues.csv against the flips
  label_noise.py clean OUT_DIR ISSUES_CSV CLEAN_DIR    # CLEAN_DIR: OUT_DIR's training set without the flagged rows

Flips go to a uniformly chosen *other* class (numpy's default_rng(SEED)); the tool under test never sees the
seed or flipped.txt.
"""
import gzip
import os
import shutil
import struct
import sys

import numpy as np


def read_idx(path):
    with open(path, "rb") as f:
        b = f.read()
    if b[:2] == b"\x1f\x8b":
        b = gzip.decompress(b)
    ndim = b[3]
    dims = struct.unpack(">" + "I" * ndim, b[4:4 + 4 * ndim])
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, a):
    a = np.ascontiguousarray(a, dtype=np.uint8)
    with open(path + ".tmp", "wb") as f:
        f.write(bytes([0, 0, 8, a.ndim]) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.tobytes())
    os.replace(path + ".tmp", path)


def find(d, stem):
    for name in (stem + "-ubyte", stem + "-ubyte.gz"):
        if os.path.exists(os.path.join(d, name)):
            return os.path.join(d, name)
    raise SystemExit(f"{d}: no {stem}-ubyte[.gz]")


def flip(src, out, fraction, seed):
    os.makedirs(out, exist_ok=True)
    y = read_idx(find(src, "train-labels-idx1")).copy()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(y), size=int(round(fraction * len(y))), replace=False)
    y[idx] = (y[idx] + rng.integers(1, 10, size=len(idx))) % 10
    write_idx(os.path.join(out, "train-labels-idx1-ubyte"), y)
    for stem in ("train-images-idx3", "t10k-images-idx3", "t10k-labels-idx1"):
        p = find(src, stem)
        dst = os.path.join(out, os.path.basename(p))
        if not os.path.exists(dst):
            os.symlink(os.path.abspath(p), dst)
    np.savetxt(os.path.join(out, "flipped.txt"), np.sort(idx), fmt="%d")
    print(f"flipped {len(idx)} of {len(y)} labels into {out}")


def flagged(issues):
    rows = [l.split(",")[0] for l in open(issues).read().splitlines()[1:] if l]
    return set(int(r) for r in rows)


def score(out, issues):
    flipped = set(np.loadtxt(os.path.join(out, "flipped.txt"), dtype=np.int64).tolist())
    f = flagged(issues)
    hit = len(f & flipped)
    p = hit / max(1, len(f))
    r = hit / max(1, len(flipped))
    print(f"flagged {len(f)}, flipped {len(flipped)}, both {hit}: precision {p:.3f} recall {r:.3f}")


def clean(out, issues, clean_dir):
    os.makedirs(clean_dir, exist_ok=True)
    x = read_idx(find(out, "train-images-idx3"))
    y = read_idx(find(out, "train-labels-idx1"))
    keep = np.setdiff1d(np.arange(len(y)), np.fromiter(flagged(issues), dtype=np.int64))
    write_idx(os.path.join(clean_dir, "train-images-idx3-ubyte"), x[keep])
    write_idx(os.path.join(clean_dir, "train-labels-idx1-ubyte"), y[keep])
    for stem in ("t10k-images-idx3", "t10k-labels-idx1"):
        p = find(out, stem)
        shutil.copyfile(p, os.path.join(clean_dir, os.path.basename(p)))
    print(f"kept {len(keep)} of {len(y)} training samples in {clean_dir}")


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "flip" and len(sys.argv) == 6:
        flip(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "score" and len(sys.argv) == 4:
        score(sys.argv[2], sys.argv[3])
    elif cmd == "clean" and len(sys.argv) == 5:
        clean(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        print(__doc__)
        sys.exit(2)
