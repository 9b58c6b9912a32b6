#!/usr/bin/env bash
# The main job on the embedded synthetic benchmark: generate it, prepare it, train a
# source-only baseline and OMUDA, print their per-class IoU side by side and write their report.
# Extra arguments are KEY=VALUE overrides for both trainings (e.g. train.iters=200).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
OMUDA="${OMUDA_VENV:-.venv}/bin/omuda"
DATA="${OMUDA_DATA:-data/synthetic}"
RUN="work_dirs/demo-$(date +%Y%m%d-%H%M%S)"
echo "omuda demo: source-only and OMUDA on the synthetic benchmark in $DATA,"
echo "  1000 iterations each: 10-11 minutes on 2 free CPU cores. Runs go to $RUN/"
if [ ! -f "$DATA/README.txt" ]; then
  # The GTA5- and Cityscapes-like frames only: the synthetic configs use no SYNTHIA-like data.
  "$OMUDA" synth "$DATA" --synthia-frames 0
fi
"$OMUDA" prepare gta "$DATA/gta"
"$OMUDA" prepare cityscapes "$DATA/cityscapes"
# Both trainings at once: omuda shares the cores between its runs (1 thread each, 2 for
# OMUDA once source-only is done), which keeps both cores busy through data loading and
# evaluation. Source-only prints to its train.log; OMUDA shows its progress here.
mkdir -p "$RUN"
echo "source-only trains in the background (log: $RUN/source_only/train.log)"
"$OMUDA" --quiet train configs/synthetic/source_only.yaml --work-dir "$RUN/source_only" \
  "data.root=$DATA" "$@" > "$RUN/source_only.console" 2>&1 &
source_only_pid=$!
# A background job ignores Ctrl-C: stop it whenever the demo ends early.
trap 'kill "$source_only_pid" 2>/dev/null || true' EXIT
"$OMUDA" train configs/synthetic/omuda.yaml --work-dir "$RUN/omuda" "data.root=$DATA" "$@"
if ! wait "$source_only_pid"; then
  echo "the source-only run failed; its last lines:" >&2
  tail -n 5 "$RUN/source_only.console" >&2
  exit 1
fi
trap - EXIT
# The run report: per-class tables, curves and the paper's figures (prints the page to open).
"$OMUDA" report "$RUN/source_only" "$RUN/omuda" --out "$RUN/report"
echo
"$OMUDA" compare "$RUN/source_only" "$RUN/omuda" --out "$RUN/comparison.md"
cat <<EOF

The runs are in $RUN/: source_only/ and omuda/, each with train.log (what was printed),
config.yaml, metrics.jsonl, eval.json and checkpoints/ (latest.pt; best.pt, the best val mIoU).
Next, after \`source .venv/bin/activate\` (it puts \`omuda\` on the PATH):
  omuda predict --checkpoint $RUN/omuda --out $RUN/predictions $DATA/cityscapes/leftImg8bit/val
  omuda config show configs/synthetic/omuda.yaml       # every setting, its value and choices
  omuda train configs/synthetic/daformer.yaml data.root=$DATA && omuda compare $RUN/omuda work_dirs/synthetic/daformer
EOF
