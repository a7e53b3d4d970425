#!/usr/bin/env bash
# Reproduces the real-data tables of docs/RESULTS.md: trains every algorithm per dataset with the
# defaults chosen on validation tasks, evaluates all of them (plus pretrain and scratch) on the
# same episodes, first on the validation tasks (to choose settings) and then on the held-out new
# tasks, and prints the wall time of every step (also appended to OUT/wall_times.txt).
#
#   scripts/results.sh                          # every dataset below
#   scripts/results.sh dunnhumby_affinity       # some of: dunnhumby dunnhumby_affinity
#                                               #          movielens movielens_regression
#
# Environment: ITERATIONS (meta-iterations per run, default 300), EPISODES (per task and K, 10),
# SHOTS (1,5,10,20), STEPS (0,1,5,10), THREADS (1), OUT (data/results), RUNS (runs/results),
# REUSE=1 keeps runs that already finished instead of retraining them.
# Results: OUT/DATASET/{validation,new}.{json,txt} (and OUT/DATASET/report.{html,md,json} for the new tasks).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/metalearn ]] || scripts/setup.sh

bin=build/metalearn
iterations=${ITERATIONS:-300}
episodes=${EPISODES:-10}
shots=${SHOTS:-1,5,10,20}
steps=${STEPS:-0,1,5,10}
threads=${THREADS:-1}
out=${OUT:-data/results}
runs=${RUNS:-runs/results}
mkdir -p "$out"
times=$out/wall_times.txt

# timed LABEL COMMAND...: runs COMMAND, then prints and records how long it took; returns its
# exit code.
timed() {
  local label=$1
  shift
  local start end rc=0
  start=$(date +%s.%N)
  "$@" || rc=$?
  end=$(date +%s.%N)
  awk -v l="$label" -v a="$start" -v b="$end" 'BEGIN { printf "%s: %.1f s\n", l, b - a }' |
    tee -a "$times" >&2
  return "$rc"
}

# train DATASET CONFIG NAME [--set KEY=VALUE ...]: one run into RUNS/DATASET/NAME.
train() {
  local dataset=$1 config=$2 name=$3
  shift 3
  local dir=$runs/$dataset/$name
  if [[ ${REUSE:-0} == 1 && -f $dir/checkpoints/latest.mlckpt ]]; then
    echo "reusing $dir" >&2
    return
  fi
  rm -rf "$dir"
  timed "train $dataset/$name" "$bin" --log-level warn train --config "$config" \
    --set run.dir="$dir" --set run.threads="$threads" --set run.device=cpu \
    --set meta.iterations="$iterations" "$@" >/dev/null
}

# evaluate DATASET ROLE [eval options]: every run of DATASET on the same episodes of the ROLE
# (validation or new) tasks; the first run listed first.
evaluate() {
  local dataset=$1 role=$2
  shift 2
  local checkpoints
  checkpoints=$(find "$runs/$dataset" -mindepth 1 -maxdepth 1 -type d -not -name baselines |
    sort | paste -sd, -)
  mkdir -p "$out/$dataset"
  local args=(--log-level warn eval --checkpoint "$checkpoints" --tasks "$role" --shots "$shots"
    --steps "$steps" --episodes "$episodes" --threads "$threads" --device cpu
    --json-out "$out/$dataset/$role.json" "$@")
  local txt=$out/$dataset/$role.txt report=() rc=0
  [[ $role == new ]] && report=(--report "$out/$dataset/report.html")
  timed "eval $dataset ($role tasks${report:+, with --report})" "$bin" "${args[@]}" "${report[@]}" \
    >"$txt" || rc=$?
  cat "$txt"
  return "$rc"
}

# Each dataset: its runs (the algorithms, and the settings compared on validation tasks), then
# the two evaluations.
dunnhumby() {  # product categories, the reference's features: with aggregates from training
  # tasks only (the default) and from every task's rows before the cutoff
  local c=configs/dunnhumby.json d=dunnhumby
  for a in maml anil pretrain; do
    train $d $c "$a" --set meta.algorithm="$a"
    train $d $c "${a}_history" --set meta.algorithm="$a" --set features.aggregate_rows=before_cutoff
  done
  evaluate $d validation
  evaluate $d new
}

dunnhumby_affinity() {  # + household x item affinities, negatives = not bought after the cutoff
  local c=configs/dunnhumby_affinity.json d=dunnhumby_affinity
  for a in maml fomaml reptile anil metasgd protonet pretrain; do
    train $d $c "$a" --set meta.algorithm="$a"
  done
  train $d $c maml_lr0.1 --set meta.algorithm=maml --set meta.inner_lr=0.1
  train $d $c anil_lr1 --set meta.algorithm=anil --set meta.inner_lr=1.0
  # Is pretrain only short of training, or of gentler fine-tuning? Ten times the budget, and
  # fine-tuning the head only at a lower rate.
  train $d $c pretrain_x10 --set meta.algorithm=pretrain --set meta.iterations=$((iterations * 10))
  train $d $c pretrain_head --set meta.algorithm=pretrain --set meta.inner_params=head \
    --set meta.inner_lr=0.1
  evaluate $d validation
  evaluate $d new
}

movielens() {  # users with 13-100 ratings, rating >= 4 positive, MeLU-style embeddings
  local c=configs/movielens.json d=movielens
  for a in maml fomaml reptile anil metasgd protonet pretrain; do
    train $d $c "$a" --set meta.algorithm="$a" --set model.type=embedding_mlp
  done
  train $d $c maml_mlp --set meta.algorithm=maml --set model.type=mlp
  evaluate $d validation --top-label-ranking
  evaluate $d new --top-label-ranking
}

movielens_regression() {  # the same users, the rating itself (MAE; ranking by predicted rating)
  local c=configs/movielens_regression.json d=movielens_regression
  for a in maml anil pretrain; do
    train $d $c "$a" --set meta.algorithm="$a" --set model.type=embedding_mlp \
      --set meta.inner_lr=0.05
  done
  evaluate $d validation --top-label-ranking
  evaluate $d new --top-label-ranking
}

datasets=("$@")
[[ ${#datasets[@]} == 0 ]] && datasets=(dunnhumby dunnhumby_affinity movielens movielens_regression)
for d in "${datasets[@]}"; do
  case $d in
    dunnhumby | dunnhumby_affinity | movielens | movielens_regression) timed "all of $d" "$d" ;;
    *)
      echo "scripts/results.sh: unknown dataset '$d' (dunnhumby, dunnhumby_affinity, movielens," \
        "movielens_regression)" >&2
      exit 2
      ;;
  esac
done
