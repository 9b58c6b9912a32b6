#!/usr/bin/env bash
# CPU benchmark of issue 6's reference setting: the DAFormer and full OMUDA steps on MiT-B0,
# 2 source + 2 target crops of 256x256, 2 threads, random init, fp32 and bf16 autocast, with
# glibc's default allocator and the tuned one. About 6 minutes on 2 cores; run it with
# nothing else on the machine. Usage: bash scripts/cpu_bench.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-bench_cpu}"
mkdir -p "$OUT"
OMUDA="${OMUDA_VENV:-.venv}/bin/omuda"
shape=(model.backbone=mit_b0 "data.crop_size=[256,256]" model.pretrained=null train.threads=2)
tuned=(MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=68719476736
  MALLOC_TOP_PAD_=1073741824)
for config in daformer omuda; do
  for amp in none bf16; do
    for malloc in default tuned; do
      name="${config}_${amp}_${malloc}"
      prefix=(env)
      [ "$malloc" = tuned ] && prefix=(env "${tuned[@]}")
      "${prefix[@]}" "$OMUDA" bench "configs/gta2cs/$config.yaml" --iters 8 --warmup 3 --quiet \
        "${shape[@]}" "train.amp=$amp" --out "$OUT/$name.json" > "$OUT/$name.txt"
      echo "$name: $(sed -n 2p "$OUT/$name.txt")"
    done
  done
done
