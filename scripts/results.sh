#!/usr/bin/env bash
# Reproduces the real-data tables of docs/RESULTS.md: trains every algorithm per dataset, then
# evaluates all of them with the baselines on the same episodes under eval's protocol (every
# setting - method, inner lr, steps, baseline variant - chosen on the validation tasks, the new
# tasks scored once), and prints the wall time of every step (also appended to
# OUT/wall_times.txt).
#
#   scripts/results.sh                          # every dataset below
#   scripts/results.sh dunnhumby_affinity       # some of: dunnhumby dunnhumby_affinity
#                                               #          movielens movielens_regression
#
# Environment: ITERATIONS (meta-iterations per run, default 300), EPISODES (per task and K, 10),
# SHOTS (1,5,10,20), STEPS (0,1,5,10), INNER_LRS (0.1,0.3,1: the meta-learners' adaptation rates
# chosen among), THREADS (1), OUT (data/results), RUNS (runs/results), REUSE=1 keeps runs that
# already finished instead of retraining them.
# Results: OUT/DATASET/new.{json,txt} and OUT/DATASET/report.{html,md,json}.
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"
cd "$(dirname "$0")/.."
[[ -x build/metalearn ]] || scripts/setup.sh

bin=build/metalearn
iterations=${ITERATIONS:-300}
episodes=${EPISODES:-10}
shots=${SHOTS:-1,5,10,20}
steps=${STEPS:-0,1,5,10}
inner_lrs=${INNER_LRS:-0.1,0.3,1}
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

# evaluate DATASET [eval options]: every run of DATASET on the same episodes: choices on the
# validation tasks, then the new tasks scored once.
evaluate() {
  local dataset=$1 role=new
  shift
  local checkpoints
  checkpoints=$(find "$runs/$dataset" -mindepth 1 -maxdepth 1 -type d -not -name baselines |
    sort | paste -sd, -)
  mkdir -p "$out/$dataset"
  local args=(--log-level warn eval --checkpoint "$checkpoints" --tasks "$role" --shots "$shots"
    --steps "$steps" --inner-lrs "$inner_lrs" --episodes "$episodes" --threads "$threads"
    --device cpu
    --json-out "$out/$dataset/$role.json" "$@")
  local txt=$out/$dataset/$role.txt rc=0
  timed "eval $dataset (validation, then new tasks, with --report)" "$bin" "${args[@]}" \
    --report "$out/$dataset/report.html" >"$txt" || rc=$?
  cat "$txt"
  return "$rc"
}

# Each dataset: its runs (the algorithms, and settings eval's grid cannot vary: features, model,
# training budget), then the evaluation. Inner lrs, steps and the baselines' fine-tuning
# (rate, head or all, checkpoint) are eval's variants, chosen on validation tasks.
dunnhumby() {  # product categories, the reference's features: with aggregates from training
  # tasks only (the default) and from every task's rows before the cutoff
  local c=configs/dunnhumby.json d=dunnhumby
  for a in maml anil; do
    train $d $c "$a" --set meta.algorithm="$a"
    train $d $c "${a}_history" --set meta.algorithm="$a" --set features.aggregate_rows=before_cutoff
  done
  evaluate $d
}

dunnhumby_affinity() {  # + household x item affinities, negatives = not bought after the cutoff
  local c=configs/dunnhumby_affinity.json d=dunnhumby_affinity
  for a in maml fomaml reptile anil metasgd protonet; do
    train $d $c "$a" --set meta.algorithm="$a"
  done
  # Meta-trained with the inner lr the old tables found best for each (adaptation rates are
  # chosen again by eval).
  train $d $c maml_lr0.1 --set meta.algorithm=maml --set meta.inner_lr=0.1
  train $d $c anil_lr1 --set meta.algorithm=anil --set meta.inner_lr=1.0
  evaluate $d
}

movielens() {  # users with 13-100 ratings, rating >= 4 positive, MeLU-style embeddings
  local c=configs/movielens.json d=movielens
  for a in maml fomaml reptile anil metasgd protonet; do
    train $d $c "$a" --set meta.algorithm="$a" --set model.type=embedding_mlp
  done
  train $d $c maml_mlp --set meta.algorithm=maml --set model.type=mlp
  evaluate $d --top-label-ranking
}

movielens_regression() {  # the same users, the rating itself (MAE; ranking by predicted rating)
  local c=configs/movielens_regression.json d=movielens_regression
  for a in maml anil; do
    train $d $c "$a" --set meta.algorithm="$a" --set model.type=embedding_mlp \
      --set meta.inner_lr=0.05
  done
  inner_lrs=0.01,0.05,0.1 evaluate $d --top-label-ranking --baseline-lrs 0.005,0.01
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
