#!/usr/bin/env bash
# The main job on the embedded synthetic benchmark: generate it, prepare it, train a
# source-only baseline and OMUDA, print their per-class IoU side by side and write their report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
OMUDA="${OMUDA_VENV:-.venv}/bin/omuda"
DATA="${OMUDA_DATA:-data/synthetic}"
RUN="work_dirs/demo-$(date +%Y%m%d-%H%M%S)"
if [ ! -f "$DATA/README.txt" ]; then
  "$OMUDA" synth "$DATA"
fi
"$OMUDA" prepare gta "$DATA/gta"
"$OMUDA" prepare cityscapes "$DATA/cityscapes"
"$OMUDA" train configs/synthetic/source_only.yaml --work-dir "$RUN/source_only" "data.root=$DATA" "$@"
"$OMUDA" train configs/synthetic/omuda.yaml --work-dir "$RUN/omuda" "data.root=$DATA" "$@"
"$OMUDA" compare "$RUN/source_only" "$RUN/omuda"
# The run report: per-class tables, curves and the paper's figures (prints the page to open).
"$OMUDA" report "$RUN/source_only" "$RUN/omuda" --out "$RUN/report"
