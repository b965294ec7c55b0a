#!/usr/bin/env bash
# Each tiny diffusion stack on a CUDA GPU at fp16/bf16 under every memory plan: peak memory vs the plan's
# computed estimate (benchmarks/gpu_check.py). Under 5 minutes on any CUDA card; prints SKIP and exits 0
# without one.   Usage: benchmarks/gpu_check.sh [python]   (default: $GVFX_PYTHON, else python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${1:-${GVFX_PYTHON:-python3}}"
export PYTHONPATH="$here/..${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 300 "$py" "$here/gpu_check.py"
