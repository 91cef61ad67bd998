#!/usr/bin/env python3
"""Runs ~150 bad inputs (files and flags) through every loom command and checks each is handled well:
a nonzero exit without a signal, within a time and address-space limit, and a message that names the problem.

    python3 tests/bad_inputs/run_bad_inputs.py build/tools/loom [--keep DIR] [-k FILTER] [-v]

Fixtures (a small image run, an lstm-lm run and a gpt run, images, CSVs) are made first with the same binary;
then each case edits a copy or passes a bad flag. Exit status 0 when every case passes. The important cases
are also GoogleTest CLI tests (tests/test_cli_bad_inputs.cpp); this script is the wider net (docs/reliability.md).
"""
import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

TIME_LIMIT_S = 60
ADDRESS_SPACE = 6 << 30  # ulimit -v: a case that tries to allocate without bound fails fast instead of swapping


def png_bytes(w, h, channels=3, pixels=None):
    """A PNG of w x h (grey, RGB), filled from `pixels` (bytes) or a gradient."""
    color = {1: 0, 3: 2, 4: 6}[channels]
    if pixels is None:
        pixels = bytes((x * 7 + y * 3 + c * 50) % 256 for y in range(h) for x in range(w) for c in range(channels))
    raw = b"".join(b"\x00" + pixels[y * w * channels:(y + 1) * w * channels] for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_header_only(w, h):
    """A valid PNG signature and IHDR declaring w x h, with a tiny IDAT: a decompression bomb's header."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


def jpeg_header(w, h):
    """SOI + a baseline SOF0 declaring h x w (3 components), then EOI: too short to decode."""
    sof = struct.pack(">BBHBHHB", 0xFF, 0xC0, 17, 8, h, w, 3) + bytes([1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0])
    return b"\xff\xd8" + sof + b"\xff\xd9"


def bmp_header(w, h):
    head = b"BM" + struct.pack("<IHHI", 54 + w * h * 3, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, w * h * 3, 2835, 2835, 0, 0)
    return head + info + b"\x00" * 64


class Runner:
    def __init__(self, loom, work, verbose):
        self.loom, self.work, self.verbose = loom, work, verbose
        self.results = []
        self.address_limit = True

    def run(self, args, env=None, timeout=TIME_LIMIT_S):
        def limits():
            if self.address_limit:
                resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
        e = dict(os.environ, OMP_NUM_THREADS="2", **(env or {}))
        t0 = time.time()
        try:
            p = subprocess.run([self.loom] + args, capture_output=True, timeout=timeout, env=e, preexec_fn=limits,
                               cwd=self.work)
            return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"), time.time() - t0
        except subprocess.TimeoutExpired as x:
            return None, (x.stdout or b"").decode(errors="replace"), (x.stderr or b"").decode(errors="replace"), timeout

    def expect(self, name, args, needles, env=None, status=None):
        """The case passes when loom exits nonzero (or `status`), not on a signal, in time, and stderr holds every
        needle (case-insensitive; a needle may be a tuple of alternatives)."""
        rc, out, err, secs = self.run(args, env)
        problems = []
        if rc is None:
            problems.append(f"did not finish in {TIME_LIMIT_S} s")
        elif rc < 0:
            problems.append(f"killed by signal {-rc}")
        elif rc == 0:
            problems.append("exit status 0")
        elif status is not None and rc != status:
            problems.append(f"exit status {rc}, expected {status}")
        low = err.lower()
        for n in needles:
            alts = n if isinstance(n, tuple) else (n,)
            if not any(a.lower() in low for a in alts):
                problems.append(f"message lacks {alts!r}")
        for bad in ("std::bad_alloc", "json.exception", "stoll", "stoull", "stod", "basic_string", "terminate called"):
            if bad in err:
                problems.append(f"raw internal message {bad!r}")
        self.results.append((name, problems, err.strip().splitlines()[-1:] if err.strip() else [""], secs))
        if self.verbose or problems:
            mark = "FAIL" if problems else "ok  "
            print(f"{mark} {name} ({secs:.1f} s): {'; '.join(problems)}\n      {err.strip()[-300:]}", flush=True)

    def fixture(self, args):
        rc, out, err, _ = self.run(args, timeout=600)
        if rc != 0:
            sys.exit(f"fixture failed: loom {' '.join(args)}\n{out}\n{err}")


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


def copy_run(src, dst, edit_config=None, edit_text=None):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    # No manifest: the folder is like a hand-made one, so the config's own checks answer (an edit with the
    # manifest in place is caught first as "config.json: changed", tested in test_cli_bad_inputs.cpp).
    if os.path.exists(os.path.join(dst, "manifest.json")):
        os.remove(os.path.join(dst, "manifest.json"))
    cfg = os.path.join(dst, "config.json")
    if edit_config:
        with open(cfg) as f:
            j = json.load(f)
        edit_config(j)
        write(cfg, json.dumps(j))
    if edit_text is not None:
        write(cfg, edit_text)
    return dst


def safetensors_bytes(tensors, metadata):
    """tensors: name -> (dtype, shape, raw bytes)."""
    header, off, blob = {}, 0, b""
    for k, (dt, shape, raw) in tensors.items():
        header[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blob += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {k: (v["dtype"], v["shape"], data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
               for k, v in header.items()}
    return tensors, meta


def with_metadata(src_file, dst_file, edit=None, nan_tensor=None):
    tensors, meta = read_safetensors(src_file)
    if edit:
        edit(meta)
    if nan_tensor:
        dt, shape, raw = tensors[nan_tensor]
        tensors[nan_tensor] = (dt, shape, struct.pack("<f", float("nan")) * (len(raw) // 4))
    write(dst_file, safetensors_bytes(tensors, meta))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("loom")
    ap.add_argument("--keep", help="work folder to use and keep (default: a temporary one, removed)")
    ap.add_argument("-k", dest="filter", default="", help="only cases whose name contains this")
    ap.add_argument("-v", action="store_true", help="print every case")
    ap.add_argument("--no-address-limit", action="store_true",
                    help="no ulimit -v (for sanitizer builds, which reserve terabytes of address space)")
    a = ap.parse_args()
    loom = os.path.abspath(a.loom)
    work = a.keep or tempfile.mkdtemp(prefix="loom_bad_inputs_")
    os.makedirs(work, exist_ok=True)
    r = Runner(loom, work, a.v)
    r.address_limit = not a.no_address_limit
    W = lambda *p: os.path.join(work, *p)

    # ---------------------------------------------------------------- fixtures
    for split in ("train", "val"):
        for ci, cls in enumerate(("a", "b")):
            for i in range(4):
                px = bytes(((x * 5 + y + ci * 120 + i) % 256) for y in range(20) for x in range(24) for _ in range(3))
                write(W("imgs", split, cls, f"{i}.png"), png_bytes(24, 20, 3, px))
    for ci, cls in enumerate("abcd"):
        for i in range(2):
            write(W("imgs4", cls, f"{i}.png"), png_bytes(12, 12, 3))
    write(W("good.png"), png_bytes(16, 16))
    r.fixture(["train", "--model", "lenet", "--data", "imagefolder:" + W("imgs"), "--image-size", "16", "--steps", "2",
               "--batch-size", "4", "--threads", "2", "--progress", "none", "--out", W("img_run")])
    corpus = "In the beginning God created the heaven and the earth.\n" * 40
    write(W("corpus.txt"), corpus)
    r.fixture(["train", "--model", "lstm-lm", "--data", "text:" + W("corpus.txt"), "--steps", "3", "--hidden", "16",
               "--embedding", "8", "--layers", "1", "--context", "16", "--batch-size", "4", "--threads", "2",
               "--out", W("lstm_run")])
    r.fixture(["train", "--model", "gpt", "--data", "text:" + W("corpus.txt"), "--steps", "3", "--width", "16",
               "--heads", "2", "--layers", "1", "--context", "16", "--batch-size", "4", "--threads", "2",
               "--out", W("gpt_run")])
    write(W("ok.csv"), "x1,x2,y\n" + "".join(f"{i},{i * 2 % 7},{i * 0.5}\n" for i in range(30)))
    r.fixture(["train", "--model", "linreg", "--data", "csv:" + W("ok.csv"), "--target", "y", "--steps", "2",
               "--progress", "none", "--out", W("csv_run")])

    cases = []

    def case(name, args, needles, env=None, status=None):
        cases.append((name, args, needles, env, status))

    img_model = W("img_run", "model.safetensors")

    # ---------------------------------------------------------------- unbounded resources from files
    for key, val in [("n_layer", 10**9), ("n_embd", 10**9), ("vocab_size", 10**12), ("n_positions", 10**12),
                     ("n_head", 10**9), ("n_inner", 10**10), ("n_layer", 2**63 - 1), ("n_embd", 18446744073709551615)]:
        d = copy_run(W("gpt_run"), W(f"gpt_{key}_{val}"), lambda j, k=key, v=val: j.__setitem__(k, v))
        for cmd in (["generate", "--checkpoint", d, "--prompt", "In", "--max-tokens", "2"],
                    ["eval", "--checkpoint", d, "--max-tokens", "32"]):
            case(f"gpt config {key}={val} ({cmd[0]})", cmd, ["config.json", key])
    # within every per-field bound, but far beyond memory together
    d = copy_run(W("gpt_run"), W("gpt_big"), lambda j: j.update(n_layer=1024, n_embd=65536, n_head=64))
    case("gpt config too big for memory", ["generate", "--checkpoint", d, "--prompt", "In"], ["memory"])
    for key, val in [("layers", 10**9), ("hidden", 10**9), ("embedding", 10**9), ("vocab_size", 10**13),
                     ("layers", -3), ("hidden", 0)]:
        d = copy_run(W("lstm_run"), W(f"lstm_{key}_{val}"), lambda j, k=key, v=val: j.__setitem__(k, v))
        for cmd in (["generate", "--checkpoint", d, "--prompt", "In", "--max-tokens", "2"],
                    ["eval", "--checkpoint", d]):
            case(f"lstm config {key}={val} ({cmd[0]})", cmd, ["config.json", key])
    d = copy_run(W("lstm_run"), W("lstm_big"), lambda j: j.update(layers=1000, hidden=100000))
    case("lstm config too big for memory", ["generate", "--checkpoint", d, "--prompt", "In"], ["memory"])

    for name, data in [("png 20000x20000", png_header_only(20000, 20000)),
                       ("png 100000x100000", png_header_only(100000, 100000)),
                       ("png 2^31-1 wide", png_header_only(2**31 - 1, 1)),
                       ("jpeg 60000x60000", jpeg_header(60000, 60000)),
                       ("bmp 30000x30000", bmp_header(30000, 30000))]:
        f = W("bomb", name.replace(" ", "_").replace("^", "") + (".png" if "png" in name else ".jpg" if "jpeg" in name else ".bmp"))
        write(f, data)
        case(f"predict on {name}", ["predict", "--checkpoint", W("img_run"), f], [os.path.basename(f), "pixels"])
        dd = W("bombfolder_" + name.replace(" ", "_").replace("^", ""))
        for cls in "ab":
            write(os.path.join(dd, cls, "ok.png"), png_bytes(10, 10))
        shutil.copy(f, os.path.join(dd, "a", os.path.basename(f)))
        case(f"train on a folder with {name}", ["train", "--model", "lenet", "--data", "imagefolder:" + dd, "--steps",
                                               "2", "--out", W("never"), "--progress", "none"],
             [os.path.basename(f), "pixels"])
    write(W("small_limit.png"), png_bytes(40, 40))
    case("LOOM_MAX_IMAGE_PIXELS below the image", ["predict", "--checkpoint", W("img_run"), W("small_limit.png")],
         ["LOOM_MAX_IMAGE_PIXELS", "small_limit.png"], env={"LOOM_MAX_IMAGE_PIXELS": "1000"})
    case("LOOM_MAX_IMAGE_PIXELS not a number", ["predict", "--checkpoint", W("img_run"), W("good.png")],
         ["LOOM_MAX_IMAGE_PIXELS"], env={"LOOM_MAX_IMAGE_PIXELS": "lots"})

    # loom metadata declaring absurd sizes
    for key, val, needle in [("loom.input", "[3, 100000, 100000]", "loom.input"),
                             ("loom.input", "[3, -5, 16]", "loom.input"),
                             ("loom.input", "[30000, 16, 16]", "loom.input"),
                             ("loom.input", "\"3x16x16\"", "loom.input"),
                             ("loom.num_classes", "1000000000000", "loom.num_classes"),
                             ("loom.num_classes", "abc", "loom.num_classes"),
                             ("loom.num_classes", "", "loom.num_classes"),
                             ("loom.num_classes", "99999999999999999999999", "loom.num_classes"),
                             ("loom.classes", "{\"a\": 1}", "loom.classes"),
                             ("loom.classes", "[1, 2]", "loom.classes"),
                             ("loom.classes", "[\"a\", \"b\", \"c\"]", "loom.classes"),
                             ("loom.seed", "-1", "loom.seed"),
                             ("loom.seed", "x1", "loom.seed"),
                             ("loom.image_size", "1e9", "loom.image_size"),
                             ("loom.normalize", "{\"mean\": [0.5, 0.5, 0.5], \"std\": [0, 1, 1]}", "loom.normalize"),
                             ("loom.normalize", "{\"mean\": [0.5], \"std\": [1]}", "loom.normalize"),
                             ("loom.normalize", "[1, 2]", "loom.normalize"),
                             ("loom.normalize", "{\"mean\": [\"a\", 0, 0], \"std\": [1, 1, 1]}", "loom.normalize"),
                             ("loom.normalize", "not json", "loom.normalize")]:
        f = W("meta", f"{key}_{abs(hash(val))}.safetensors")
        os.makedirs(W("meta"), exist_ok=True)
        with_metadata(img_model, f, lambda m, k=key, v=val: m.__setitem__(k, v))
        case(f"metadata {key}={val} (eval)", ["eval", "--checkpoint", f, "--data", "imagefolder:" + W("imgs")],
             [os.path.basename(f), needle])
        case(f"metadata {key}={val} (predict)", ["predict", "--checkpoint", f, W("good.png")], [needle])

    # ---------------------------------------------------------------- unbounded resources from flags
    text = "text:" + W("corpus.txt")
    for flags, needle in [(["--model", "gpt", "--width", "100000000"], "--width"),
                          (["--model", "gpt", "--width", "65536", "--heads", "1", "--layers", "1024"], "memory"),
                          (["--model", "gpt", "--layers", "1000000000"], "--layers"),
                          (["--model", "gpt", "--heads", "1000000000"], "--heads"),
                          (["--model", "gpt", "--context", "1000000000"], "--context"),
                          (["--model", "gpt", "--batch-size", "1000000", "--context", "100000"], ("memory", "tokens")),
                          (["--model", "gpt", "--context", "100000", "--batch-size", "8"], ("memory", "tokens")),
                          (["--model", "lstm-lm", "--hidden", "1000000000"], "--hidden"),
                          (["--model", "lstm-lm", "--embedding", "1000000000"], "--embedding"),
                          (["--model", "lstm-lm", "--layers", "99999999999999999999"], "--layers"),
                          (["--model", "lstm-lm", "--hidden", "100000", "--layers", "1000"], "memory")]:
        case("train " + " ".join(flags), ["train", "--data", text, "--steps", "1", "--out", W("never")] + flags,
             [needle])
    for flags, needle in [(["--model", "linreg", "--features", "1000000000"], "--features"),
                          (["--model", "linreg", "--features", "99999999999999999999"], "--features"),
                          (["--model", "linreg", "--features", "-4"], "--features"),
                          (["--model", "cnn", "--data", "imagefolder:" + W("imgs"), "--image-size", "100000"],
                           "--image-size")]:
        case("summary " + " ".join(flags), ["summary"] + flags, [needle])
    case("seq2seq --train-samples 1e12", ["train", "--model", "seq2seq", "--data", "dates", "--train-samples",
                                          "1000000000000", "--steps", "1", "--out", W("never")], ["--train-samples"])
    case("generate --max-tokens 1e12", ["generate", "--checkpoint", W("lstm_run"), "--prompt", "In", "--max-tokens",
                                        "1000000000000"], ["--max-tokens"])
    case("eval lm --batch-size 1e9", ["eval", "--checkpoint", W("lstm_run"), "--batch-size", "1000000000"],
         ["--batch-size"])
    case("train --batch-size 1e12", ["train", "--model", "cnn", "--batch-size", "1000000000000"], ["--batch-size"])

    # ---------------------------------------------------------------- wrong results that exited 0
    for run, tensor in [("img_run", "0.weight")]:
        f = W("nan", "model.safetensors")
        os.makedirs(W("nan"), exist_ok=True)
        with_metadata(img_model, f, nan_tensor=tensor)
        case("eval with NaN weights", ["eval", "--checkpoint", W("nan"), "--data", "imagefolder:" + W("imgs")],
             ["NaN", "WARNING", "0.weight"])
        case("eval --json with NaN weights", ["eval", "--checkpoint", W("nan"), "--json"], ["NaN"])
        case("predict with NaN weights", ["predict", "--checkpoint", W("nan"), W("good.png")], ["NaN"])
    tensors, meta = read_safetensors(W("lstm_run", "model.safetensors"))
    d = copy_run(W("lstm_run"), W("lstm_nan"))
    k0 = sorted(tensors)[0]
    dt, shape, raw = tensors[k0]
    tensors[k0] = (dt, shape, struct.pack("<f", float("inf")) * (len(raw) // 4))
    write(os.path.join(d, "model.safetensors"), safetensors_bytes(tensors, meta))
    case("lm eval with inf weights", ["eval", "--checkpoint", d], ["NaN/inf", "WARNING"])
    case("generate with inf weights", ["generate", "--checkpoint", d, "--prompt", "In"], ["NaN/inf"])
    for cls in "ab":
        for i in range(3):
            write(W("flat_imgs", cls, f"{i}.png"), png_bytes(8, 8, 3, bytes([0, 100 + i, 50]) * 64))
    case("constant channel normalisation (std 0)", ["train", "--model", "lenet", "--data",
                                                    "imagefolder:" + W("flat_imgs"), "--steps", "1", "--out",
                                                    W("never"), "--image-size", "16"], ["constant", "--no-normalize"])
    for rows in (1, 2):
        f = W(f"rows{rows}.csv")
        write(f, "a,b\n" + "".join(f"{i},{i}\n" for i in range(rows)))
        case(f"csv with {rows} row(s)", ["train", "--model", "linreg", "--data", "csv:" + f, "--target", "b",
                                         "--steps", "1", "--out", W("never")], [os.path.basename(f), "row"])
    d = W("lstm_resume")
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(W("lstm_run"), d)
    lstm_flags = ["--model", "lstm-lm", "--data", text, "--hidden", "16", "--embedding", "8", "--layers", "1",
                  "--context", "16", "--batch-size", "4", "--out", d, "--resume"]
    case("lm --resume --steps below the checkpoint", ["train", "--steps", "2"] + lstm_flags, ["--steps", "step 3"])
    case("lm --resume --steps equal to the checkpoint", ["train", "--steps", "3"] + lstm_flags, ["--steps"])
    hidden32 = list(lstm_flags)
    hidden32[hidden32.index("--hidden") + 1] = "32"
    case("lm --resume with other --hidden", ["train", "--steps", "5"] + hidden32, ["--hidden"])
    case("lm --resume with another --model", ["train", "--steps", "5", "--model", "gpt", "--data", text, "--out", d,
                                              "--resume", "--context", "16", "--batch-size", "4"], ["--model"])
    case("cosine --min-lr above --lr", ["train", "--model", "lstm-lm", "--data", text, "--scheduler", "cosine",
                                        "--lr", "0.001", "--min-lr", "0.01", "--out", W("never")], ["--min-lr"])
    case("--min-lr without cosine", ["train", "--model", "gpt", "--data", text, "--min-lr", "0.01", "--out",
                                     W("never")], ["--min-lr"])
    case("image --resume --steps below", ["train", "--model", "lenet", "--data", "imagefolder:" + W("imgs"),
                                          "--image-size", "16", "--steps", "1", "--batch-size", "4", "--out",
                                          W("img_run"), "--resume"], ["--steps"])
    case("image --resume with another --batch-size", ["train", "--model", "lenet", "--data", "imagefolder:" + W("imgs"),
                                                      "--image-size", "16", "--steps", "9", "--batch-size", "8",
                                                      "--out", W("img_run"), "--resume"], ["--batch-size"])
    for val in (-5, 0, "\"wide\"", 1.5, 10**12):
        d = copy_run(W("gpt_run"), W(f"gpt_inner_{abs(hash(str(val)))}"),
                     lambda j, v=val: j.__setitem__("n_inner", json.loads(str(v))))
        case(f"gpt n_inner {val}", ["generate", "--checkpoint", d, "--prompt", "In"], ["n_inner", "config.json"])

    # ---------------------------------------------------------------- messages that must say what is wrong
    os.makedirs(W("adir"), exist_ok=True)
    os.makedirs(W("adir.png"), exist_ok=True)
    case("directory as --data text:", ["train", "--model", "gpt", "--data", "text:" + W("adir"), "--out", W("never")],
         [W("adir")])
    case("directory as csv:", ["train", "--model", "linreg", "--data", "csv:" + W("adir"), "--target", "y", "--out",
                               W("never")], [W("adir"), ("folder", "directory")])
    case("directory as predict image", ["predict", "--checkpoint", W("img_run"), W("adir.png")],
         [W("adir.png"), ("folder", "directory")])
    case("directory as tokenize input", ["tokenize", "--tokenizer", "char", W("adir")], [W("adir")])
    case("directory as --tokenizer char:", ["tokenize", "--tokenizer", "char:" + W("adir"), W("corpus.txt")],
         [W("adir")])
    case("directory as --prompts-file", ["generate", "--checkpoint", W("lstm_run"), "--prompts-file", W("adir")],
         [W("adir")])
    case("directory as --checkpoint file", ["eval", "--checkpoint", W("adir")], [W("adir")])
    d = copy_run(W("lstm_run"), W("lstm_cfgdir"))
    os.remove(os.path.join(d, "config.json"))
    os.makedirs(os.path.join(d, "config.json"))
    case("config.json is a directory", ["generate", "--checkpoint", d, "--prompt", "In"], ["config.json"])
    case("/dev/zero as a csv", ["train", "--model", "linreg", "--data", "csv:/dev/zero", "--target", "y", "--out",
                                W("never")], ["/dev/zero"])
    for name, text_ in [("truncated", '{"arch": "lstm-lm", "vocab_size": '), ("empty", ""), ("not json", "hello"),
                        ("array", "[1, 2, 3]"), ("trailing comma", '{"arch": "lstm-lm",}')]:
        d = copy_run(W("lstm_run"), W(f"lstm_cfg_{name.replace(' ', '_')}"), edit_text=text_)
        case(f"malformed config.json ({name}, generate)", ["generate", "--checkpoint", d, "--prompt", "In"],
             ["config.json"])
        case(f"malformed config.json ({name}, eval)", ["eval", "--checkpoint", d], ["config.json"])
    deep = copy_run(W("lstm_run"), W("lstm_cfg_deep"), edit_text='{"arch": ' + "[" * 200000 + "]" * 200000 + "}")
    case("config.json nested 200000 deep (generate)", ["generate", "--checkpoint", deep, "--prompt", "In"],
         ["config.json", "nested"])
    case("config.json nested 200000 deep (eval)", ["eval", "--checkpoint", deep], ["config.json", "nested"])
    h = b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}"
    write(W("deep_run", "model.safetensors"), struct.pack("<Q", len(h)) + h)
    case("safetensors header nested 100000 deep", ["predict", "--checkpoint", W("deep_run"), W("good.png")],
         ["model.safetensors", "nested"])
    write(W("deep_tok.json"), '{"type": "char", "chars": ' + "[" * 100000 + "]" * 100000 + "}")
    case("tokenizer file nested 100000 deep", ["tokenize", "--tokenizer", W("deep_tok.json"), W("corpus.txt")],
         ["deep_tok.json", "nested"])
    for key, val in [("n_layer", "\"12\""), ("n_embd", "1.5"), ("vocab_size", "null"), ("dropout", "\"x\""),
                     ("tie_word_embeddings", "\"yes\""), ("activation_function", "3"), ("n_head", "[4]"),
                     ("layer_norm_epsilon", "{}")]:
        d = copy_run(W("gpt_run"), W(f"gpt_type_{key}"), lambda j, k=key, v=val: j.__setitem__(k, json.loads(v)))
        if val == "null":  # null means "the default": vocab_size 50257 then mismatches the weights
            case(f"gpt config {key}={val}", ["generate", "--checkpoint", d, "--prompt", "In"], ["model.safetensors"])
            continue
        case(f"gpt config {key}={val}", ["generate", "--checkpoint", d, "--prompt", "In"], ["config.json", key])
    for key, val in [("layers", "\"2\""), ("hidden", "16.5"), ("arch", "5"), ("vocab_size", "\"big\""),
                     ("dropout", "true")]:
        d = copy_run(W("lstm_run"), W(f"lstm_type_{key}"), lambda j, k=key, v=val: j.__setitem__(k, json.loads(v)))
        case(f"lstm config {key}={val}", ["eval", "--checkpoint", d], ["config.json", key])
    d = copy_run(W("lstm_run"), W("lstm_loom_train"), lambda j: j.__setitem__("loom_train", {"context": "long"}))
    case("lm config loom_train.context a string", ["eval", "--checkpoint", d, "--data", text], ["context"])
    d = copy_run(W("lstm_run"), W("lstm_loom_train2"), lambda j: j.__setitem__("loom_train", [1]))
    case("lm config loom_train an array", ["eval", "--checkpoint", d, "--data", text], ["loom_train"])

    good = png_bytes(30, 20)
    for cut in (8, 30, 60, len(good) - 20):
        f = W("trunc", f"cut{cut}.png")
        write(f, good[:cut])
        case(f"truncated PNG ({cut} bytes)", ["predict", "--checkpoint", W("img_run"), f], [f"cut{cut}.png", "PNG"])
    write(W("trunc", "garbage.jpg"), b"\xff\xd8\xff\xe0" + b"\x00" * 10)
    case("truncated JPEG", ["predict", "--checkpoint", W("img_run"), W("trunc", "garbage.jpg")], ["garbage.jpg", "JPEG"])
    write(W("trunc", "text.png"), b"this is not an image at all")
    case("text named .png", ["predict", "--checkpoint", W("img_run"), W("trunc", "text.png")], ["text.png"])
    write(W("trunc", "empty.png"), b"")
    case("empty .png", ["predict", "--checkpoint", W("img_run"), W("trunc", "empty.png")], ["empty.png", "empty"])
    for cls in "ab":
        write(W("trunc_folder", cls, "ok.png"), png_bytes(10, 10))
    write(W("trunc_folder", "b", "bad.png"), good[:40])
    case("truncated PNG inside an image folder", ["train", "--model", "lenet", "--data", "imagefolder:" + W("trunc_folder"),
                                                  "--steps", "2", "--batch-size", "2", "--out", W("never"),
                                                  "--progress", "none"], ["bad.png"])

    write(W("only_target.csv"), "y\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n")
    case("csv with only the target column", ["train", "--model", "linreg", "--data", "csv:" + W("only_target.csv"),
                                             "--target", "y", "--steps", "1", "--out", W("never")],
         ["only_target.csv", "feature"])
    write(W("header_only.csv"), "a,b\n")
    case("csv header only", ["train", "--model", "linreg", "--data", "csv:" + W("header_only.csv"), "--target", "b",
                             "--out", W("never")], ["header_only.csv"])
    write(W("ragged.csv"), "a,b\n1,2\n3\n")
    case("csv ragged row", ["train", "--model", "linreg", "--data", "csv:" + W("ragged.csv"), "--target", "b",
                            "--out", W("never")], ["ragged.csv"])
    write(W("nonnum.csv"), "a,b\n1,2\nx,3\n4,5\n6,7\n8,9\n")
    case("csv non-numeric", ["train", "--model", "linreg", "--data", "csv:" + W("nonnum.csv"), "--target", "b",
                             "--out", W("never")], ["nonnum.csv", "'a'"])
    case("csv missing target", ["train", "--model", "linreg", "--data", "csv:" + W("ok.csv"), "--target", "zz",
                                "--out", W("never")], ["zz"])
    write(W("rows3.csv"), "a,b\n1,1\n2,2\n3,3\n4,4\n5,5\n")
    case("eval csv model on fewer features", ["eval", "--checkpoint", W("csv_run"), "--data", "csv:" + W("rows3.csv"),
                                              "--target", "b"], ["rows3.csv", "expects"])
    case("eval on data with more classes", ["eval", "--checkpoint", W("img_run"), "--data", "imagefolder:" + W("imgs4")],
         ["2 classes", "has 4"])
    case("eval image model on mnist-shaped data it cannot take", ["eval", "--checkpoint", W("img_run"), "--data",
                                                                  "csv:" + W("ok.csv"), "--target", "y"],
         [("regression", "does not fit")])
    for cmd in (["predict", "--checkpoint", W("lstm_run"), W("good.png")],
                ["predict", "--checkpoint", W("gpt_run"), W("good.png")],
                ["predict", "--checkpoint", W("lstm_run", "model.safetensors"), W("good.png")]):
        case(f"predict on an LM ({os.path.basename(cmd[2])})", cmd, [("language model", "language-model"),
                                                                        ("generate", "eval")])
    case("eval image model given --model on an LM folder", ["eval", "--checkpoint", W("gpt_run", "model.safetensors")],
         [("language model", "language-model")])
    case("generate on an image run", ["generate", "--checkpoint", W("img_run"), "--prompt", "x"],
         [W("img_run"), ("language-model", "language model")])
    case("translate on an image run", ["translate", "--checkpoint", W("img_run"), "March 5"], [W("img_run")])
    if os.path.isdir("/usr/share/datasets/fashion-mnist"):
        case("eval an RGB model on Fashion-MNIST", ["eval", "--checkpoint", W("img_run"), "--data", "fashion-mnist",
                                                    "--test-samples", "10"], ["expects", "[1, 1, 28, 28]"])
    for vocab in (5, 500):
        d = copy_run(W("lstm_run"), W(f"lstm_vocab{vocab}"), lambda j, v=vocab: j.__setitem__("vocab_size", v))
        case(f"lstm config vocab_size {vocab} unlike the weights", ["generate", "--checkpoint", d, "--prompt", "In"],
             ["model.safetensors", "config.json", "emb.weight"])
    d = copy_run(W("lstm_run"), W("lstm_noweights"))
    os.remove(os.path.join(d, "model.safetensors"))
    case("lm folder without model.safetensors", ["eval", "--checkpoint", d], ["model.safetensors"])
    case("predict checkpoint missing", ["predict", "--checkpoint", W("nope"), W("good.png")], [W("nope")])
    case("predict image missing", ["predict", "--checkpoint", W("img_run"), W("nope.png")], [W("nope.png")])
    write(W("garbage_run", "model.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}")
    case("garbage safetensors", ["eval", "--checkpoint", W("garbage_run"), "--data", "imagefolder:" + W("imgs")],
         ["model.safetensors"])
    write(W("huge_header", "model.safetensors"), struct.pack("<Q", 2**62) + b"{}")
    case("safetensors header length 2^62", ["predict", "--checkpoint", W("huge_header"), W("good.png")],
         ["model.safetensors"])
    case("idx index out of range", ["predict", "--checkpoint", W("img_run"), "idx:" + W("ok.csv") + ":99"],
         ["ok.csv"])
    case("tokenize missing file", ["tokenize", "--tokenizer", "char", W("nope.txt")], [W("nope.txt")])
    write(W("bad_tok.json"), "{\"type\": 7}")
    case("tokenizer file of the wrong form", ["tokenize", "--tokenizer", W("bad_tok.json"), W("corpus.txt")],
         ["bad_tok.json"])
    write(W("ids.txt"), "1 2 99999999999999999999 3\n")
    case("detokenize id overflow", ["detokenize", "--tokenizer", "char:" + W("corpus.txt"), W("ids.txt")],
         ["99999999999999999999"])
    write(W("ids2.txt"), "1 2 -7\n")
    case("detokenize negative id", ["detokenize", "--tokenizer", "char:" + W("corpus.txt"), W("ids2.txt")], ["-7"])

    # ---------------------------------------------------------------- run
    for name, args, needles, env, status in cases:
        if a.filter in name:
            r.expect(name, args, needles, env, status)
    failed = [x for x in r.results if x[1]]
    slowest = max(r.results, key=lambda x: x[3]) if r.results else None
    print(f"{len(r.results) - len(failed)} of {len(r.results)} bad-input cases handled well"
          + (f"; slowest {slowest[3]:.1f} s ({slowest[0]})" if slowest else ""))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
