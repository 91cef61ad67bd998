# Runs a PyTorch reference script (bench/torch_ref/ or ../shared/bench/torch_ref/) under CPU bf16 autocast,
# PyTorch's counterpart of loom's `--precision bf16` / GPT_PRECISION=bf16: matrix products on bf16 operands
# (oneDNN, which uses AVX512-BF16 where the CPU has it), the rest f32.
#   cd ../shared/bench/torch_ref && python3 /path/to/bench/torch_autocast.py gpt_char.py KJV.txt 200
import runpy
import sys

import torch

script = sys.argv[1]
sys.argv = sys.argv[1:]
with torch.autocast("cpu", dtype=torch.bfloat16):
    runpy.run_path(script, run_name="__main__")
