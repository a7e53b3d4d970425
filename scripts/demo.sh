#!/usr/bin/env bash
# The main job end to end on data it generates: builds metalearn (installing what is missing),
# writes a synthetic shop log (60 categories, each with its own audience and premium preference
# on top of the shared purchase model; see README "The synthetic shop and the demo"), profiles
# it, meta-trains MAML on its categories, evaluates the cold-start protocol on the 12 held-out
# categories against the pretrain and scratch baselines, adapts to each new category from 10
# rows, recommends one category's items and explains its scores. Where the shared real
# datasets are present it profiles the Dunnhumby grocery log too.
#
#   scripts/demo.sh            # reuses data/synth if it exists
#   scripts/demo.sh --fresh    # regenerates data/synth and retrains
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=build/metalearn
run=runs/demo

if [[ "${1:-}" == "--fresh" || ! -f data/synth/events.csv ]]; then
  echo "== metalearn synth: a synthetic shop (2,000 users, 60 categories)"
  "$bin" synth --out data/synth --users 2000 --categories 60 --sessions 90000 --seed 7
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
echo "== metalearn eval: cold start on held-out categories, against tuned baselines"
echo "   (every setting chosen on the validation categories, the new ones scored once; the full"
echo "   grid is printed as an exploration, 0 steps = a global model)"
"$bin" eval --checkpoint "$run" --shots 5,10,20 --episodes 10 --json-out "$run/eval.json"

echo
echo "== metalearn adapt: each new category from 10 purchases/views (steps and inner lr chosen"
echo "   on the validation categories when train finished: RUN/adaptation.json)"
echo "   (before/after on one support set and a 30-row query each: single categories swing by"
echo "   chance; eval's means over 10 episodes above are the measurement)"
"$bin" adapt --checkpoint "$run" --all-new --shots 10

echo
echo "== metalearn predict: top-5 items of a new category for two users (its adapted model)"
# The first held-out category: the task table is fixed-width (name in the first 36 columns).
first_new=$("$bin" inspect --config configs/synthetic.json --tasks |
  awk '!found && substr($0, 69, 3) == "new" { name = substr($0, 1, 36); sub(/ +$/, "", name); print name; found = 1 }')
model="$run/adapted/${first_new// /_}.mlckpt"  # the model adapt wrote for that category
[[ -f "$model" ]] || model="$run"
"$bin" predict --checkpoint "$model" --recommend --task "$first_new" --user u000001 --user u000002 --top-k 5

echo
echo "== metalearn explain: why that model scores 40 of the category's rows as it does, and what"
echo "   adaptation changed (Integrated Gradients; the page: reports/demo_explained.html)"
rows="$run/explain_rows.csv"
(head -1 data/synth/events.csv; grep -F ",$first_new," data/synth/events.csv | tail -40) > "$rows"
"$bin" explain --checkpoint "$model" --input "$rows" --top 3 --output "$run/explained.csv" \
  --report reports/demo_explained.html
head -7 "$run/explained.csv"
