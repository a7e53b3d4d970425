#!/usr/bin/env bash
# Rehearses a two-host data-parallel `metalearn train` (issue 14) on this one machine: two network
# namespaces joined by a veth pair (10.77.0.1/24 and 10.77.0.2/24, loopback up in both) stand for
# the hosts. Writes a small synthetic shop (`metalearn synth`) and a small config, gives each
# "host" its own copy of both in its own folder, and runs in each namespace
#   torchrun --nnodes 2 --node_rank R --nproc_per_node 1 --master_addr 10.77.0.1
#     --master_port 29500 --redirects 2 --tee 2 --no_python BINARY train --config ...
# with GLOO_SOCKET_IFNAME set to that namespace's veth. Then trains the same config in one plain
# process and checks that the two hosts ended where it did: the `train --json` summaries' last
# loss and best validation within 1e-3 relative (and the same best iteration), and every weight
# of the two runs (`metalearn export`, compared with Python's torch) within 1e-3 relative.
# Prints each host's exit code and time, rank 0's `data-parallel:` log line, and PASS or FAIL.
#
# --kill rehearses a failure instead: mid-training (once rank 0 has written its first checkpoint)
# it kills host 1 with SIGKILL - its torchrun and its rank, the process group they run in, as
# when the host dies - and checks that host 0's rank stops within 30 s with exit code 10 and one
# error line (docs/DISTRIBUTED.md, "When something goes wrong") and keeps its latest checkpoint.
# It prints what each host printed and exited with, torchrun's own report included. torch
# 1.13's torchrun on host 0 then waits in its exit barrier for the dead host's agent (300 s):
# the script stops it after --agent-wait seconds and says so.
#
#   sudo scripts/rehearse_two_hosts.sh                        # about 15 s
#   sudo scripts/rehearse_two_hosts.sh --kill
#
# Options:
#   --binary PATH     the metalearn binary (default build/metalearn)
#   --config FILE     train this config instead of the generated one (both hosts then read its
#                     data where it names it); run.dir is set by the script
#   --kill            the failure rehearsal described above
#   --agent-wait S    --kill: how long to wait for host 0's torchrun once its rank stopped (10)
#   --keep            keep the temporary folder (data, configs, run folders, torchrun's logs)
#   --limit S         stop the hosts (FAIL) when they run longer than S seconds (60; --kill:
#                     until rank 0's first checkpoint); raise it for a bigger --config
#   --skip-code N     exit N instead of 2 when network namespaces cannot be created here (not
#                     root, no CAP_NET_ADMIN, no `ip netns`, no torchrun); also the env variable
#                     REHEARSE_SKIP_CODE. ctest passes 77 (SKIP_RETURN_CODE)
#   -h, --help        this text
#
# Needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN), iproute2's `ip netns`, and torchrun (Debian:
# python3-torch). Exit codes: 0 PASS, 1 FAIL, 2 (or --skip-code) cannot run here, 64 bad usage.
# Each namespace has its own ports, so the fixed master port cannot collide with other runs.
set -euo pipefail
source "$(dirname "$0")/lib/help.sh"

me=rehearse_two_hosts.sh
binary=build/metalearn
config=
kill_mode=0
keep=0
agent_wait=10   # --kill: seconds to wait for host 0's torchrun once its rank stopped
run_limit=60    # seconds the two hosts may take (--kill: until the kill) before they are stopped
skip_code=${REHEARSE_SKIP_CODE:-2}
while (($#)); do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --config) config=${2:?--config needs a file}; shift 2 ;;
    --kill) kill_mode=1; shift ;;
    --keep) keep=1; shift ;;
    --agent-wait) agent_wait=${2:?--agent-wait needs seconds}; shift 2 ;;
    --limit) run_limit=${2:?--limit needs seconds}; shift 2 ;;
    --skip-code) skip_code=${2:?--skip-code needs a number}; shift 2 ;;
    *) echo "$me: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done
[[ $skip_code =~ ^[0-9]+$ ]] || { echo "$me: --skip-code takes a number, not $skip_code" >&2; exit 64; }
[[ $agent_wait =~ ^[0-9]+$ ]] || { echo "$me: --agent-wait takes seconds, not $agent_wait" >&2; exit 64; }
[[ $run_limit =~ ^[0-9]+$ ]] || { echo "$me: --limit takes seconds, not $run_limit" >&2; exit 64; }

cannot() { echo "$me: $*" >&2; exit "$skip_code"; }
((EUID == 0)) || cannot "needs root for network namespaces (ip netns); run it with sudo"
if ! { command -v ip > /dev/null && ip netns list > /dev/null 2>&1; }; then
  cannot "needs iproute2's ip netns (apt install iproute2)"
fi
command -v torchrun > /dev/null || cannot "needs torchrun (apt install python3-torch)"
[[ -x $binary ]] || { echo "$me: no binary $binary (run scripts/setup.sh, or give --binary)" >&2; exit 1; }
[[ -z $config || -f $config ]] || { echo "$me: no config $config" >&2; exit 1; }
binary=$(realpath "$binary")
[[ -z $config ]] || config=$(realpath "$config")
# The binary's own libraries (libmetalearn_sentencepiece.so) beside it, for a copy outside build/.
LD_LIBRARY_PATH="$(dirname "$binary")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
# Python with torch: the interpreter torchrun runs on (export and the weight comparison).
python=$(sed -n '1s/^#! *//p' "$(command -v torchrun)" | cut -d' ' -f1)
[[ -x $python ]] || python=/usr/bin/python3

# Names unique to this run: namespaces and veth ends (interface names: 15 characters at most).
tag=$$
ns=("mlrh$tag-0" "mlrh$tag-1")
veth=("mlrh${tag}a" "mlrh${tag}b")
addr=(10.77.0.1 10.77.0.2)
port=29500
dist_timeout=60   # METALEARN_DIST_TIMEOUT: the bound for a rendezvous or a collective
kill_bound=30     # --kill: seconds host 0 may take to stop after host 1 died
tmp=$(mktemp -d /tmp/rehearse_two_hosts.XXXXXX)

cleanup() {
  local rc=$? n p
  trap - EXIT INT TERM
  for n in "${ns[@]}"; do
    # Whatever still runs in our namespaces was started here (a run stopped by Ctrl-C or a FAIL).
    for p in $(ip netns pids "$n" 2> /dev/null); do kill -KILL "$p" 2> /dev/null || true; done
    ip netns del "$n" 2> /dev/null || true   # takes the veth end inside it along
  done
  for n in "${veth[@]}"; do ip link del "$n" 2> /dev/null || true; done
  if ((keep)); then echo "$me: kept $tmp" >&2; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the network ---------------------------------------------------------------------------------
if ! { ip netns add "${ns[0]}" && ip netns add "${ns[1]}"; } 2> "$tmp/netns.err"; then
  cannot "cannot create network namespaces here: $(head -1 "$tmp/netns.err") (needs CAP_NET_ADMIN and CAP_SYS_ADMIN)"
fi
ip link add "${veth[0]}" netns "${ns[0]}" type veth peer name "${veth[1]}" netns "${ns[1]}"
for i in 0 1; do
  ip -n "${ns[i]}" link set lo up
  ip -n "${ns[i]}" addr add "${addr[i]}/24" dev "${veth[i]}"
  ip -n "${ns[i]}" link set "${veth[i]}" up
done
if command -v ping > /dev/null && ! ip netns exec "${ns[1]}" ping -c 1 -W 5 "${addr[0]}" > /dev/null 2>&1; then
  echo "$me: note: ${addr[0]} does not answer a ping from ${addr[1]}; going on" >&2
fi

# --- data and config: one copy per host ---------------------------------------------------------
if [[ -z $config ]]; then
  "$binary" --log-level warn synth --out "$tmp/data" --users 300 --categories 12 --sessions 3000 \
    --seed 3 > /dev/null
  # configs/synthetic.json, small: 40 meta-iterations of 4 tasks, validation every 10.
  cat > "$tmp/config.json" << 'EOF'
{
  "seed": 42,
  "data": {
    "files": ["data/events.csv"],
    "columns": {"user": "user_id", "item": "item_id", "task": "category", "timestamp": "timestamp",
                "event": "event", "rating": "rating", "price": "price", "quantity": "quantity"},
    "features": {"numeric": ["price"]},
    "side_tables": [
      {"files": ["data/items.csv"], "join": "item", "key": "item_id",
       "features": {"numeric": ["base_price"], "categorical": ["brand", "price_tier"], "text": ["title"]}},
      {"files": ["data/users.csv"], "join": "user", "key": "user_id",
       "features": {"numeric": ["signup_days", "loyalty_member"], "categorical": ["age_band", "region"]}}
    ],
    "bad_rows": "skip"
  },
  "features": {"categorical": "vocab", "onehot_max": 32, "text_buckets": 32,
               "aggregates": ["user_frequency", "user_spend", "user_recency", "item_popularity", "item_mean_price"]},
  "task": {"label": {"kind": "event_binary", "positive_events": ["purchase"], "negative_events": ["view", "cart"]},
           "support": 10, "query": 30},
  "split": {"new_fraction": 0.2, "validation_fraction": 0.2, "time_cutoff": "2026-03-01"},
  "meta": {"algorithm": "maml", "iterations": 40, "meta_batch": 4},
  "train": {"validate_every": 10, "checkpoint_every": 20, "log_every": 10},
  "run": {"dir": "run", "device": "cpu", "threads": 1}
}
EOF
  for i in 0 1; do
    mkdir -p "$tmp/host$i"
    cp -r "$tmp/data" "$tmp/config.json" "$tmp/host$i/"   # data paths are relative to the config
    host_config[i]=$tmp/host$i/config.json
  done
else
  for i in 0 1; do mkdir -p "$tmp/host$i"; host_config[i]=$config; done
fi
if ((kill_mode)); then
  # Long enough to be killed mid-training; stop only by the kill (or the run limit).
  extra=(--set meta.iterations=100000 --set train.validate_every=0 --set train.checkpoint_every=50)
else
  extra=()
fi

# --- the two hosts -------------------------------------------------------------------------------
# Runs in a namespace as the leader of its own process group: the command's output into DIR, its
# pid, exit code and start/end times beside it.
# shellcheck disable=SC2016  # expanded by the inner bash
wrapper='dir=$1; shift
echo $$ > "$dir/pgid"
start=$EPOCHREALTIME
"$@" > "$dir/stdout" 2> "$dir/stderr" &
echo $! > "$dir/pid"
rc=0; wait $! || rc=$?
echo "$start $EPOCHREALTIME" > "$dir/time"
echo $rc > "$dir/rc"'

launch() {
  local i=$1 dir=$tmp/host$1
  ip netns exec "${ns[i]}" setsid bash -c "$wrapper" wrapper "$dir" \
    env GLOO_SOCKET_IFNAME="${veth[i]}" METALEARN_DIST_TIMEOUT=$dist_timeout \
    torchrun --nnodes 2 --node_rank "$i" --nproc_per_node 1 --master_addr "${addr[0]}" \
    --master_port $port --redirects 2 --tee 2 --log_dir "$dir/logs" --no_python \
    "$binary" train --config "${host_config[i]}" --set run.dir="$dir/run" --device cpu "${extra[@]}" --json \
    < /dev/null &
  disown   # polled through its files; no "Killed" notice from bash when it is stopped
}

# Waits until FILE exists (or SECONDS pass); returns 1 on the deadline.
wait_for() {
  local file=$1 deadline=$((SECONDS + $2))
  until [[ -s $file ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

echo "$me: ${ns[0]} (${addr[0]}, ${veth[0]}) and ${ns[1]} (${addr[1]}, ${veth[1]}), veth pair up;" \
  "torchrun on both, $tmp" >&2
launch 0
launch 1
run_deadline=$((SECONDS + run_limit))
for i in 0 1; do wait_for "$tmp/host$i/pgid" 10 || { echo "$me: host $i did not start" >&2; exit 1; }; done

# Stops host I (its process group: the wrapper, torchrun, its rank) with SIGKILL.
stop_host() { kill -KILL -- "-$(cat "$tmp/host$1/pgid")" 2> /dev/null || true; }

killed_at=
rank0_stop=
agent0_seen=
agent0_note=
if ((kill_mode)); then
  # Mid-training: once rank 0 has written its first checkpoint (checkpoint_every 50).
  if wait_for "$tmp/host0/run/checkpoints/latest.mlckpt" "$((run_deadline - SECONDS))"; then
    sleep 0.3
    killed_at=$EPOCHREALTIME
    stop_host 1
    logged=$(grep -c '"loss"' "$tmp/host0/run/metrics.jsonl" || true)
    echo "$me: killed host 1 (SIGKILL to its torchrun and its rank) after rank 0's first" \
      "checkpoint, $((logged * 10))+ meta-iterations in" >&2
    # Host 0's rank has stopped when it prints its error (a line that is no info or warning log
    # line, in the stderr.log torchrun keeps for it); torchrun says "failed (exitcode: N)" when its
    # monitor next looks (every 5 s, --monitor_interval), or host 0's torchrun ends.
    deadline=$((SECONDS + kill_bound))
    while ((SECONDS < deadline)) && [[ -z $rank0_stop || -z $agent0_seen ]] && [[ ! -f $tmp/host0/rc ]]; do
      now=$EPOCHREALTIME
      if [[ -z $rank0_stop ]] && find "$tmp/host0/logs" -path '*/0/stderr.log' -exec \
          grep -Evq '^\[[0-9:.]+\] \[(info|warning)\]' {} + 2> /dev/null; then
        rank0_stop=$(awk -v a="$killed_at" -v b="$now" 'BEGIN{printf "%.1f", b - a}')
      fi
      if [[ -z $agent0_seen ]] && grep -q 'failed (exitcode:' "$tmp/host0/stderr" 2> /dev/null; then
        agent0_seen=$(awk -v a="$killed_at" -v b="$now" 'BEGIN{printf "%.1f", b - a}')
      fi
      sleep 0.1
    done
    # torch 1.13's agent then waits in its exit barrier for the dead host's agent (300 s).
    if ! wait_for "$tmp/host0/rc" "$agent_wait"; then
      agent0_note="still running ${agent_wait} s after its rank stopped (torchrun's exit barrier waits for the dead host's agent); stopped by this script"
      stop_host 0
    fi
  else
    echo "$me: rank 0 wrote no checkpoint within $run_limit s" >&2
    stop_host 1
    stop_host 0
  fi
else
  for i in 0 1; do
    if ! wait_for "$tmp/host$i/rc" "$((run_deadline - SECONDS))"; then
      echo "$me: host $i still runs after $run_limit s; stopping it" >&2
      stop_host "$i"
    fi
  done
fi

# --- report --------------------------------------------------------------------------------------
# torchrun's own summary names each rank's exit code ("exitcode  : 10") when a rank failed.
host_report() {
  local i=$1 dir=$tmp/host$1 rc="none (stopped by this script)" time="-" worker
  ((kill_mode && i == 1)) && rc="none (killed)"
  [[ -f $dir/rc ]] && rc=$(cat "$dir/rc")
  [[ -f $dir/time ]] && time=$(awk '{printf "%.1f s", $2 - $1}' "$dir/time")
  worker=$(grep -ho 'exitcode *: *-\?[0-9]*' "$dir/stderr" 2> /dev/null | head -1 | tr -s ' ' || true)
  [[ -z $worker ]] || worker=", torchrun reports the rank's $worker"
  echo "host $i (${ns[i]}, ${addr[i]}): torchrun exit ${rc}, ${time}${worker}"
}
fail=0
check() {  # check OK WHAT
  if (($1)); then echo "  ok    $2"; else echo "  FAIL  $2"; fail=1; fi
}

echo
if ((kill_mode)); then
  echo "two-host rehearsal, failure: host 1 killed mid-training"
else
  echo "two-host rehearsal: torchrun --nnodes 2 over a veth pair, 1 rank per host"
fi
host_report 0
host_report 1
line=$(grep -h 'data-parallel:' "$tmp/host0/run/train.log" 2> /dev/null | tail -1 | sed 's/^\[[^]]*\] \[[a-z]*\] //' || true)
echo "rank 0's train.log: ${line:-no data-parallel: line}"

if ((kill_mode)); then
  rc0=$(cat "$tmp/host0/rc" 2> /dev/null || echo none)
  # The rank's own stderr, as torchrun kept it (--redirects 2): LOG_DIR/RUN_ID/attempt_0/0/stderr.log
  rank_log=$(find "$tmp/host0/logs" -path '*/0/stderr.log' 2> /dev/null | head -1)
  # What it printed besides its info and warning log lines.
  errors=$(grep -Ev '^\[[0-9:.]+\] \[(info|warning)\]' "$rank_log" 2> /dev/null || true)
  n_errors=$(grep -c . <<< "$errors" || true)
  rank_exit=$(grep -ho 'exitcode: *-\?[0-9]*' "$tmp/host0/stderr" 2> /dev/null | head -1 | grep -o -- '-\?[0-9]*$' || true)
  echo "host 0's rank: exit ${rank_exit:-unknown}, printed its error ${rank0_stop:-?} s after the kill" \
    "(torchrun reported its exit ${agent0_seen:-?} s after the kill); it printed:"
  while IFS= read -r l; do echo "    $l"; done <<< "${errors:-(nothing)}"
  echo "host 0's torchrun: ${agent0_note:-exit $rc0}; its own lines:"
  grep -v '^\[default0\]:' "$tmp/host0/stderr" 2> /dev/null | grep -v '^ *$' | tail -12 | sed 's/^/    /' || true
  echo "host 1's torchrun and rank: killed (SIGKILL); what torchrun printed:"
  { grep -v '^ *$' "$tmp/host1/stderr" 2> /dev/null || echo "(nothing)"; } | tail -3 | sed 's/^/    /'
  check "$( [[ -n $killed_at ]] && echo 1 || echo 0)" "host 1 was killed mid-training"
  check "$( [[ -n $rank0_stop ]] && echo 1 || echo 0)" \
    "host 0's rank stopped within ${kill_bound} s of the kill (${rank0_stop:-no}${rank0_stop:+ s}; collectives time out at ${dist_timeout} s)"
  check "$( [[ $rank_exit == 10 ]] && echo 1 || echo 0)" "host 0's rank exited with 10 (torchrun reports ${rank_exit:-nothing})"
  check "$( ((n_errors == 1)) && echo 1 || echo 0)" "host 0's rank printed one error line (${n_errors})"
  check "$( [[ -s $tmp/host0/run/checkpoints/latest.mlckpt ]] && echo 1 || echo 0)" \
    "host 0 kept its run folder and latest.mlckpt"
  check "$( [[ $rc0 != 0 ]] && echo 1 || echo 0)" "host 0's torchrun did not report success (${agent0_note:+stopped, }exit $rc0)"
else
  # The same config in one plain process, one thread (torchrun gives each rank OMP_NUM_THREADS=1).
  mkdir -p "$tmp/single"
  start=$EPOCHREALTIME
  rc_single=0
  "$binary" train --config "${host_config[0]}" --set run.dir="$tmp/single/run" --device cpu --threads 1 --json \
    > "$tmp/single/stdout" 2> "$tmp/single/stderr" || rc_single=$?
  echo "one process: exit $rc_single, $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f s", b - a}')"
  check "$( [[ $(cat "$tmp/host0/rc" 2> /dev/null) == 0 ]] && echo 1 || echo 0)" "host 0 exited 0"
  check "$( [[ $(cat "$tmp/host1/rc" 2> /dev/null) == 0 ]] && echo 1 || echo 0)" "host 1 exited 0"
  check "$( ((rc_single == 0)) && echo 1 || echo 0)" "the single process exited 0"
  check "$( [[ -n $line ]] && echo 1 || echo 0)" "rank 0 logged its data-parallel split"
  check "$( [[ -z $(ls -A "$tmp/host1/run" 2> /dev/null) ]] && echo 1 || echo 0)" "host 1 wrote no run folder"
  if ((rc_single == 0)); then
    for r in host0 single; do
      "$binary" --log-level warn export --checkpoint "$tmp/$r/run" --output "$tmp/$r/model.pt" \
        > /dev/null 2> "$tmp/$r/export.err" || true
    done
  fi
  # The two hosts' summary is rank 0's stdout (torchrun passes it untouched).
  comparison=$("$python" - "$tmp/host0/stdout" "$tmp/single/stdout" "$tmp/host0/model.pt" \
    "$tmp/single/model.pt" 2>&1 << 'EOF' || true
import json, sys
def summary(path):
    text = open(path).read()
    return json.loads(text[text.index("{"):])
def close(a, b):
    return abs(a - b) <= 1e-3 * max(abs(a), abs(b), 1e-12)
try:
    two, one = summary(sys.argv[1]), summary(sys.argv[2])
except Exception as e:  # a run failed: no summary
    print(f"0 no summary to compare ({e.__class__.__name__}: {e})")
    sys.exit()
for key in ("last_loss", "best_validation"):
    a, b = two.get(key), one.get(key)
    ok = a is not None and b is not None and close(a, b)
    print(f"{int(ok)} {key}: two hosts {a!r}, one process {b!r}")
print(f"{int(two.get('best_iteration') == one.get('best_iteration'))} best_iteration: "
      f"two hosts {two.get('best_iteration')}, one process {one.get('best_iteration')}")
try:
    import torch
    a = torch.jit.load(sys.argv[3]).state_dict()
    b = torch.jit.load(sys.argv[4]).state_dict()
    same = a.keys() == b.keys() and all(
        torch.allclose(a[k].double(), b[k].double(), rtol=1e-3, atol=1e-6) for k in b)
    diff = max((a[k].double() - b[k].double()).abs().max().item() for k in b)
    print(f"{int(same)} weights (metalearn export, within 1e-3 relative): "
          f"{sum(v.numel() for v in b.values())} values, largest difference {diff:.3g}")
except Exception as e:
    print(f"0 weights: cannot compare ({e.__class__.__name__}: {e})")
EOF
  )
  while read -r ok what; do check "$ok" "$what"; done <<< "$comparison"
fi
if ((fail)); then
  echo "FAIL (files: $tmp$( ((keep)) || echo ', removed; --keep keeps them'))"
  exit 1
fi
echo PASS
