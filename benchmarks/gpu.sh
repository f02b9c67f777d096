#!/usr/bin/env bash
# One command for a lent GPU: SAM 2.1 hiera_large + DINOv2 ViT-L/14 with seeded random
# weights, bf16 autocast, compile_models off and on, image_batch_size 1 and 8. Needs no
# network; about 8 minutes at most on one H100/H200-class GPU (modes not started within
# --budget-s seconds are skipped and say so).
#
#   benchmarks/gpu.sh                         # the GPU figures
#   benchmarks/gpu.sh --json gpu.json         # and the figures as a JSON document
#   benchmarks/gpu.sh --tiny --device cpu     # tiny models, image and grid: a CPU smoke run
#
# Other flags: python benchmarks/bench_gpu.py --help. PYTHON picks the interpreter
# (default: the project's .venv if there is one, else python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
# Nothing is downloaded: the weights are built locally from a seed.
export HF_HUB_OFFLINE=1 TIMM_OFFLINE=1 PYTHONUNBUFFERED=1
exec "$PYTHON" "$ROOT/benchmarks/bench_gpu.py" "$@"
