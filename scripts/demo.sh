#!/usr/bin/env bash
# The main job end to end on data it generates: builds metalearn (installing what is missing),
# writes a synthetic shop log, profiles it, meta-trains MAML on its categories, evaluates the
# cold-start protocol against the pretrain and scratch baselines, adapts to one new category
# and recommends its items. Where the shared real datasets are present it profiles the
# Dunnhumby grocery log too.
#
#   scripts/demo.sh            # reuses data/synth if it exists
#   scripts/demo.sh --fresh    # regenerates data/synth and retrains
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=build/metalearn
run=runs/demo

if [[ "${1:-}" == "--fresh" || ! -f data/synth/events.csv ]]; then
  echo "== metalearn synth: a synthetic shop (2,000 users, 40 categories)"
  "$bin" synth --out data/synth --users 2000 --categories 40 --sessions 60000 --seed 7
  rm -rf "$run"
fi

echo
echo "== metalearn inspect: what training will see (purchase vs view, one task per category)"
"$bin" inspect --config configs/synthetic.json

if [[ -d ../shared/datasets/dunnhumby-completejourney ]]; then
  echo
  echo "== metalearn inspect: Dunnhumby grocery transactions, product categories as tasks"
  "$bin" inspect --config configs/dunnhumby.json
fi

echo
echo "== metalearn train: MAML across the training categories"
if [[ -f "$run/checkpoints/latest.mlckpt" ]]; then
  echo "(reusing $run; scripts/demo.sh --fresh retrains)"
else
  "$bin" train --config configs/synthetic.json --set run.dir="$run" --set meta.iterations=300
fi

echo
echo "== metalearn eval: cold start on held-out categories, against pretrain and scratch"
"$bin" eval --checkpoint "$run" --shots 5,10 --steps 0,1,5 --episodes 5 --json-out "$run/eval.json"

echo
echo "== metalearn adapt: a new category from 10 purchases/views"
"$bin" adapt --checkpoint "$run" --all-new --shots 10

echo
echo "== metalearn predict: top-5 items of a new category for two users (its adapted model)"
# The first held-out category: the task table is fixed-width (name in the first 36 columns).
first_new=$("$bin" inspect --config configs/synthetic.json --tasks |
  awk '!found && substr($0, 69, 3) == "new" { name = substr($0, 1, 36); sub(/ +$/, "", name); print name; found = 1 }')
model="$run/adapted/${first_new// /_}.mlckpt"  # the model adapt wrote for that category
[[ -f "$model" ]] || model="$run"
"$bin" predict --checkpoint "$model" --recommend --task "$first_new" --user u000001 --user u000002 --top-k 5
