#!/usr/bin/env python3
"""Lists the functions of object files or archives that use instructions a baseline x86-64 CPU lacks, unless
their (demangled) name says they are a dispatched kernel: it contains "avx512", "vnni" or "amx" (isa.h's
naming rule for functions that carry LOOM_TARGET_AVX512 / _VNNI or the AMX target). Used by
scripts/check_portable.sh on a LOOM_NATIVE=OFF build.
  scripts/portable_isa_scan.py build-portable/libloom_backend.a   # exit 1 and one line per offender
"""
import re
import subprocess
import sys

ALLOWED = re.compile(r"avx512|vnni|amx", re.IGNORECASE)
# VEX/EVEX-encoded instructions all start with "v"; the rest are non-baseline scalar or mask instructions.
WIDE_REG = re.compile(r"%(?:ymm|zmm)\d+|%k[0-7]\b")
NON_BASELINE = {"popcnt", "lzcnt", "tzcnt", "andn", "bextr", "blsi", "blsmsk", "blsr", "bzhi", "mulx", "pdep",
                "pext", "rorx", "sarx", "shlx", "shrx", "movbe", "crc32", "pshufb", "pmaddubsw", "ptest",
                "pblendvb", "blendvps", "roundps", "roundss", "roundsd", "pminsd", "pmaxsd", "pmulld",
                "pcmpeqq", "packusdw", "pmovzxbd", "pmovsxbd", "insertps", "extractps", "pextrd", "pinsrd",
                "dpps", "dppd", "ldtilecfg", "sttilecfg", "tilezero", "tileloadd", "tilestored", "tdpbf16ps"}
FUNC = re.compile(r"^[0-9a-f]+ <(.*)>:$")
INSN = re.compile(r"^\s+[0-9a-f]+:\s+(\S+)\s*(.*)$")


def offenders(path):
    out = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", path], check=True, capture_output=True,
                         text=True).stdout
    bad, func, why = {}, None, None
    for line in out.splitlines():
        m = FUNC.match(line)
        if m:
            func = m.group(1)
            continue
        m = INSN.match(line)
        if not m or func is None or func in bad or ALLOWED.search(func):
            continue
        op, args = m.group(1), m.group(2)
        if op.startswith("v") and op not in ("verr", "verw") or op.startswith("k") or op in NON_BASELINE \
                or WIDE_REG.search(args):
            bad[func] = f"{op} {args}".strip()
    return bad


def main(paths):
    if not paths:
        sys.exit(__doc__)
    found = 0
    for p in paths:
        for func, insn in offenders(p).items():
            print(f"{p}: {func}: {insn}")
            found += 1
    print(f"portable_isa_scan: {found} function(s) outside the dispatched kernels use non-baseline instructions")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
