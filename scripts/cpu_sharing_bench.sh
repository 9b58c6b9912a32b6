#!/usr/bin/env bash
# CPU sharing: one run alone, two at once and three at once, on this machine's CPUs.
#   1. `omuda train configs/synthetic/source_only.yaml` for 80 iterations (no evaluation) on
#      a prepared synthetic benchmark: wall time of each run;
#   2. `omuda bench` of the MiT-B0 256-crop DAFormer step (docs/PERFORMANCE.md's CPU setting):
#      median step of each copy (`omuda bench --concurrent N`: one table format for 1, 2, 3).
# Configs are used as they ship: each run decides its own thread count. Run it with nothing
# else on the machine; about 10 minutes on 2 cores.
# Usage: bash scripts/cpu_sharing_bench.sh [DATA_ROOT] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${1:-data/synthetic}"
OUT="${2:-bench_sharing}"
OMUDA="${OMUDA_VENV:-.venv}/bin/omuda"
mkdir -p "$OUT"
if [ ! -f "$DATA/README.txt" ]; then
  "$OMUDA" --quiet synth "$DATA"
  "$OMUDA" --quiet prepare gta "$DATA/gta"
  "$OMUDA" --quiet prepare cityscapes "$DATA/cityscapes"
fi

train_runs() {  # N: start N trainings together, print each one's wall time
  local n=$1 pids=() starts=()
  rm -rf "$OUT/train"
  for i in $(seq "$n"); do
    ( start=$(date +%s%N)
      "$OMUDA" --quiet train configs/synthetic/source_only.yaml --work-dir "$OUT/train/run$i" \
        "data.root=$DATA" train.iters=80 train.eval_interval=0 train.checkpoint_interval=0 \
        > "$OUT/train_${n}_$i.log" 2>&1
      echo $(( ($(date +%s%N) - start) / 1000000 )) > "$OUT/train_${n}_$i.ms" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  for i in $(seq "$n"); do
    ms=$(cat "$OUT/train_${n}_$i.ms")
    printf '  synthetic source-only, %d at once, run %d: %d.%d s wall (%s)\n' "$n" "$i" \
      $((ms / 1000)) $((ms % 1000 / 100)) \
      "$(grep -m1 -o 'threads [0-9]* (.*)' "$OUT/train/run$i/train.log")"
  done
}

for n in 1 2 3; do
  train_runs "$n"
done
shape=(model.backbone=mit_b0 "data.crop_size=[256,256]" model.pretrained=null train.amp=none)
for n in 1 2 3; do
  "$OMUDA" --quiet bench configs/gta2cs/daformer.yaml --iters 6 --warmup 2 --concurrent "$n" \
    "${shape[@]}" --out "$OUT/daformer_mitb0_$n.json" | sed "s/^/  /"
done
