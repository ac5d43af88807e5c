#!/usr/bin/env bash
# GPU check, one short run: the CUDA paths against the step-by-step reference (tests/test_gpu.py), then
# `rouser bench` with its CUDA rows (engine, snntorch, spikingjelly where installed, dense GEMM).
# Usage: tools/gpu_check.sh [output folder]   (writes gpu_tests.txt and gpu_bench.json/.txt there)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-.}}"
mkdir -p "$out"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0), 'torch', torch.__version__)"
python -c "import triton; print('triton', triton.__version__)" || echo "no Triton: the CUDA scan runs the PyTorch loop"
python -m pytest -q tests/test_gpu.py tests/test_neuron.py tests/test_kernels.py 2>&1 | tee "$out/gpu_tests.txt"
python -m engine bench --rounds 1 --batches 2 --json > "$out/gpu_bench.json"
python -c "import json, sys; from engine.bench import format_bench; print(format_bench(json.load(open(sys.argv[1]))))" \
    "$out/gpu_bench.json" | tee "$out/gpu_bench.txt"
