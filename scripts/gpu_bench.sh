#!/usr/bin/env bash
# GPU benchmark of the full gta2cs OMUDA step (MiT-B5, 2x512x512 source + target, all
# components, bf16 autocast), plus DAFormer and MIC for reference. Runs in about 3 minutes on
# one H100/H200 with the machine's own PyTorch; random init (no weight files needed).
# Usage: bash scripts/gpu_bench.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-bench_out}}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$OUT/gpu.txt"
common=(--device cuda --iters 30 --warmup 10 model.pretrained=null)
for config in omuda daformer mic; do
  "$PY" -m omuda.cli bench "configs/gta2cs/$config.yaml" "${common[@]}" --out "$OUT/$config.json" \
    2>&1 | tee "$OUT/$config.txt"
done
# Variants kept only where they help: torch.compile and channels_last on the full OMUDA step.
"$PY" -m omuda.cli bench configs/gta2cs/omuda.yaml "${common[@]}" train.compile=true \
  --out "$OUT/omuda_compile.json" 2>&1 | tee "$OUT/omuda_compile.txt"
"$PY" -m omuda.cli bench configs/gta2cs/omuda.yaml "${common[@]}" train.channels_last=true \
  --out "$OUT/omuda_channels_last.json" 2>&1 | tee "$OUT/omuda_channels_last.txt"
