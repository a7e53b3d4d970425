#!/usr/bin/env bash
# Data-parallel scaling of `metalearn train` (issue 14), not a timed test: one process against
# two torchrun ranks on this host, one thread each, end to end (data pipeline included), on W1
# (configs/peer.json: the MLP of the Python reference, maml and fomaml), W2 (configs/synthetic.json
# as embedding_mlp with its hashed user and item tables of 2^18 x 32, maml: the row-sparse
# embedding gradients travel as touched rows, all-gathered) and W3 (configs/w3.json: the text
# transformer, maml). Prints a Markdown table with meta-iterations/s,
# the speed-up and scaling efficiency, how rank 0's meta-iteration split between computing and
# the collectives (as `train` logs it under a group), the bytes all-reduced per meta-iteration,
# and a projection for 8 and 64 ranks. Projection model (stated with the table):
#   t(n) = c / min(n, B) + k(n),  speed-up(n) = c / t(n)
# c: one process's time per meta-iteration; B: the meta-batch (ranks beyond it have no task);
# k2: the collectives' time per meta-iteration measured with 2 ranks. A ring all-reduce moves
# 2(n - 1)/n of the gradient per rank in 2(n - 1) steps, so k(n) lies between k2 * 2(n - 1)/n
# (bandwidth-bound: the optimistic figure) and k2 * (n - 1) (latency-bound: the pessimistic one).
# k2 includes waiting for the slower rank and, on one host, the ranks competing for its cores
# and its loopback, so both figures are pessimistic for hosts with a core per rank.
#
#   scripts/bench_dist.sh                 # about 4 minutes (W1 300, W2 100, W3 40 meta-iterations)
#   W2_ITERS=0 W3_ITERS=0 scripts/bench_dist.sh      # W1 only
#
# Needs torchrun (Debian: python3-torch), data/peer/tasks.csv (written here from the Python
# reference when missing) and data/synth/ (written here by `metalearn synth` when missing). Uses build/metalearn (scripts/setup.sh builds it). Say what else ran on
# the machine beside the figures: two ranks on two cores have nothing to spare.
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."
binary=${BINARY:-build/metalearn}
w1_iters=${W1_ITERS:-300}
w2_iters=${W2_ITERS:-100}
w3_iters=${W3_ITERS:-40}
command -v torchrun > /dev/null || { echo "bench_dist.sh: needs torchrun (apt install python3-torch)" >&2; exit 1; }
[[ -x $binary ]] || { echo "bench_dist.sh: no $binary (run scripts/setup.sh)" >&2; exit 1; }
mkdir -p data/peer
[[ -f data/peer/tasks.csv ]] ||
  /usr/bin/python3 ../shared/peer/maml_peer.py --export-csv data/peer/tasks.csv > /dev/null
((w2_iters == 0)) || [[ -f data/synth/events.csv ]] || "$binary" synth --out data/synth > /dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# W2's model: configs/synthetic.json's features with hashed user and item tables of 2^18 x 32.
w2_model=(--set model.type=embedding_mlp --set model.embedding_dim=32 --set features.hash_buckets=262144)

# One measurement: NAME CONFIG ALGORITHM ITERATIONS RANKS; its stderr kept as $tmp/NAME.err.
measure() {
  local name=$1 config=$2 algorithm=$3 iterations=$4 ranks=$5
  local args=(train --config "$config" --set run.dir="$tmp/run-$name" --set meta.algorithm="$algorithm"
              --set meta.iterations="$iterations" --set train.validate_every=0 --threads 1)
  [[ $name == W2-* ]] && args+=("${w2_model[@]}")
  echo "  $name ..." >&2
  if ((ranks == 1)); then
    "$binary" "${args[@]}" > /dev/null 2> "$tmp/$name.err"
  else
    # --redirects 2 --tee 2: Debian 12's torchrun fails on its default (docs/DISTRIBUTED.md).
    METALEARN_DIST_TIMEOUT=120 torchrun --nproc_per_node "$ranks" --redirects 2 --tee 2 \
      --master_port "$((29600 + RANDOM % 1000))" --no_python "$binary" "${args[@]}" \
      > /dev/null 2> "$tmp/$name.err"
  fi
}

echo "bench_dist: 1 process against 2 ranks, 1 thread each ..." >&2
cases=("W1 configs/peer.json maml $w1_iters" "W1 configs/peer.json fomaml $w1_iters")
((w2_iters > 0)) && cases+=("W2 configs/synthetic.json maml $w2_iters")
((w3_iters > 0)) && cases+=("W3 configs/w3.json maml $w3_iters")
for c in "${cases[@]}"; do
  read -r workload config algorithm iterations <<< "$c"
  for ranks in 1 2; do measure "$workload-$algorithm-$ranks" "$config" "$algorithm" "$iterations" "$ranks"; done
done

/usr/bin/python3 - "$tmp" "${cases[@]}" << 'EOF'
import json
import re
import sys

tmp, cases = sys.argv[1], sys.argv[2:]
rate = re.compile(r"meta-training \w+: (\d+) iterations in ([\d.]+) s")
split = re.compile(r"data-parallel: a meta-iteration took ([\d.]+) ms, ([\d.]+) ms of it in "
                   r"collectives .* and ([\d.]+) ms computing; it all-reduces (\d+) bytes"
                   r"(?: and each rank all-gathers (\d+) bytes)?")
print("| workload | algorithm | 1 process it/s | 2 ranks it/s | speed-up | efficiency "
      "| rank 0 per it: compute / collectives ms | bytes per it: all-reduced (+ all-gathered per rank) "
      "| projected speed-up, 8 ranks | 64 ranks |")
print("|---|---|---|---|---|---|---|---|---|---|")
for case in cases:
    workload, config, algorithm, _ = case.split()
    def read(ranks):
        text = open(f"{tmp}/{workload}-{algorithm}-{ranks}.err").read()
        m = rate.search(text)
        return text, int(m.group(1)) / float(m.group(2))
    _, one = read(1)
    text, two = read(2)
    s = split.search(text)
    compute, collectives, sent = float(s.group(3)), float(s.group(2)), f"{int(s.group(4)):,}"
    if s.group(5):
        sent += f" + {int(s.group(5)):,}"
    # The resolved config the one-process run wrote (a default meta_batch included).
    resolved = json.load(open(f"{tmp}/run-{workload}-{algorithm}-1/config.json"))
    meta_batch = resolved["meta"]["meta_batch"]
    c = 1000.0 / one  # ms per meta-iteration in one process
    def projected(n):
        busy = min(n, meta_batch)  # ranks beyond the meta-batch have no task
        bandwidth = c / (c / busy + collectives * 2 * (n - 1) / n)
        latency = c / (c / busy + collectives * (n - 1))
        return f"{latency:.2f}-{bandwidth:.2f}x"
    print(f"| {workload} | {algorithm} | {one:.1f} | {two:.1f} | {two / one:.2f}x "
          f"| {two / one / 2:.0%} | {compute:.2f} / {collectives:.2f} | {sent} "
          f"| {projected(8)} | {projected(64)} |")
EOF
