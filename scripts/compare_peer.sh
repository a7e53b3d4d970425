#!/usr/bin/env bash
# Side by side with the Python reference (../shared/peer/maml_peer.py): the same task family
# (200 base + 50 held-out tasks, 32 features), the same MLP 32-128-64-1 and settings (meta-batch
# 16, K=10 balanced, Q=40, 5 inner SGD steps at 0.3, Adam 1e-3, 300 meta-iterations). Prints the
# reference's held-out AUC at K=10 after 5 steps for each algorithm and ours (eval --json).
#   scripts/compare_peer.sh            # needs Debian's python3-torch (installed if missing)
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."
scripts/setup.sh
dpkg-query -W -f='${Status}' python3-torch 2>/dev/null | grep -q "install ok installed" ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-numpy; }
peer=../shared/peer/maml_peer.py
mkdir -p data/peer
/usr/bin/python3 "$peer" --export-csv data/peer/tasks.csv >/dev/null
new_tasks=$(printf '"t%03d",' $(seq 200 249)); new_tasks="[${new_tasks%,}]"
for algo in maml fomaml reptile; do
  run=runs/peer-$algo
  rm -rf "$run"
  build/metalearn --log-level warn train --config configs/peer.json --set split.new_tasks="$new_tasks" \
    --set meta.algorithm=$algo --set run.dir=$run >/dev/null
  methods=$algo
  [[ $algo == maml ]] && methods=maml,pretrain,scratch
  build/metalearn --log-level warn eval --checkpoint "$run" --shots 10 --steps 0,5 --episodes 10 \
    --methods "$methods" --json-out "$run/eval.json" | grep -E "^10 +5 " || true
done
echo "reference (maml_peer.py, K=10, 5 steps):"
for algo in maml fomaml reptile pretrain scratch; do
  /usr/bin/python3 "$peer" --algo $algo --threads 1 | /usr/bin/python3 -c \
    'import json,sys; r=json.load(sys.stdin); c=r.get("eval",r).get("K10_steps5",{}); print(sys.argv[1], c.get("auc"), "+-", c.get("auc_ci95"))' $algo
done
