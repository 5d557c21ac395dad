#!/usr/bin/env bash
# Operator guide walk-through: runs the commands of docs/operating.md as an
# operator would, with the built binary, on loopback: a `chain run` node, a
# subnet, a miner and a validator each in a home of its own (as on their
# own machines), the dashboard, then a backup and restore of keys and a
# node restart (the upgrade procedure). It checks every command's exit
# status and what it prints: the miner registers and serves its axon, the
# validator sets weights, the miner earns incentive, /metrics and the
# dashboard answer, restored keys are the same keys, and the restarted node
# carries on from its height.
#
# Every wait polls with a deadline; the whole run takes about a minute
# (under 3 on a loaded 2-core machine). Any failure prints the logs and
# exits 1. Needs Go and python3 (to read JSON); installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -INT "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL operator-guide: $*"
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $(basename "$f") (last 20 lines)"; tail -n 20 "$f"; }; done
  exit 1
}
step() { echo "== $*"; }

# wait_for SECONDS WHAT COMMAND...: run COMMAND until it succeeds.
wait_for() {
  local end=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || fail "no $what after ${SECONDS}s"
    sleep 0.2
  done
}

# A free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# json EXPR: evaluate a Python expression over the JSON on stdin (as j).
json() { python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
# http_get URL: the body, or a failure.
http_get() { python3 -c 'import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }

step "build"
go build -o "$work/cybertensor" ./cmd/cybertensor
ct="$work/cybertensor"
echo "a long and secret passphrase" > "$work/pw" && chmod 600 "$work/pw"
# Three machines: the chain node (whose operator is the chain's root), a
# miner and a validator.
node_home="$work/node" miner_home="$work/miner" vali_home="$work/vali"
rpc_port=$(free_port) p2p_port=$(free_port)
chain="http://127.0.0.1:$rpc_port"

step "keys: a wallet on each machine"
for h in "$node_home" "$miner_home" "$vali_home"; do
  out=$("$ct" --home "$h" wallet new --name default --password-file "$work/pw") || fail "wallet new in $h"
  [[ $out == *"mnemonic"* || $out == *"Mnemonic"* ]] || fail "wallet new printed no mnemonic: $out"
done
address() { "$ct" --home "$1" wallet show --json | json "j[\"$2\"]$3"; }
miner_cold=$(address "$miner_home" coldkey '["address"]')
miner_hot=$(address "$miner_home" hotkeys '[0]["address"]')
[[ $miner_hot == ct1* && $miner_cold == ct1* ]] || fail "wallet show: coldkey $miner_cold hotkey $miner_hot"

step "chain node: chain init, chain run"
"$ct" --home "$node_home" chain init --rpc "tcp://127.0.0.1:$rpc_port" --p2p "tcp://127.0.0.1:$p2p_port" \
  --block-time 200ms >"$work/init.out" || fail "chain init"
grep -q 'Created chain "cybertensor-dev"' "$work/init.out" || fail "chain init said: $(cat "$work/init.out")"
"$ct" --home "$node_home" chain run >"$work/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
height() { "$ct" chain status --chain "$chain" --timeout 2s --json 2>/dev/null | json 'j["height"]'; }
above() { local h; h=$(height) && [ "${h:-0}" -gt "$1" ]; }
wait_for 60 "block 2 from the node" above 1

step "subnet: the owner opens it (netuid 1)"
out=$("$ct" --home "$node_home" subnets create --name qa --chain "$chain" --password-file "$work/pw") || fail "subnets create: $out"
[[ $out == *"included in block"* ]] || fail "subnets create said: $out"
"$ct" subnets list --chain "$chain" --json | json '[s["name"] for s in j if s["netuid"] == 1][0]' | grep -qx qa ||
  fail "subnets list has no subnet 1 named qa"
"$ct" --home "$node_home" subnets set-hyperparam --netuid 1 --name tempo --value 10 --chain "$chain" \
  --password-file "$work/pw" >/dev/null || fail "subnets set-hyperparam tempo"

step "funds: the dev faucet pays the miner's and the validator's coldkeys"
for h in "$miner_home" "$vali_home"; do
  "$ct" --home "$h" faucet --chain "$chain" --password-file "$work/pw" >/dev/null || fail "faucet for $h"
done
"$ct" --home "$miner_home" wallet balance --chain "$chain" --json | json 'j["balance"] > 0' | grep -qx True ||
  fail "the miner's coldkey has no balance after the faucet"

step "miner: miner run (registers, binds, serves its axon), with --metrics"
metrics_port=$(free_port)
"$ct" --home "$miner_home" miner run --netuid 1 --listen /ip4/127.0.0.1/tcp/0 --metrics "127.0.0.1:$metrics_port" \
  --chain "$chain" --password-file "$work/pw" >"$work/miner.log" 2>&1 &
miner_pid=$!
pids+=("$miner_pid")
wait_for 90 "miner serving" grep -q "miner uid 0 on subnet 1 serving at /ip4/127.0.0.1/tcp/" "$work/miner.log"
axon() { "$ct" metagraph --netuid 1 --chain "$chain" --json | json "[a for a, h in zip(j['axons'], j['hotkeys']) if h == '$miner_hot'][0]['peer_id']"; }
[ -n "$(axon)" ] || fail "no axon on chain for the miner's hotkey"
wait_for 30 "miner metrics" bash -c "$(declare -f http_get); http_get http://127.0.0.1:$metrics_port/metrics | grep -q '^go_goroutines '"

step "validator: validator run --stake 50 (queries, scores, sets weights)"
"$ct" --home "$vali_home" validator run --netuid 1 --stake 50 --listen /ip4/127.0.0.1/tcp/0 \
  --chain "$chain" --password-file "$work/pw" >"$work/validator.log" 2>&1 &
vali_pid=$!
pids+=("$vali_pid")
wait_for 90 "validator running" grep -q "validator uid 1 on subnet 1 running" "$work/validator.log"
# Row 1 (the validator's) weights uid 0 (the miner).
weights_set() { "$ct" weights show --netuid 1 --chain "$chain" --json | json 'len(j) > 1 and any(e["uid"] == 0 and e["value"] > 0 for e in (j[1] or []))' | grep -qx True; }
wait_for 90 "the validator's weights on the miner" weights_set

step "incentive: the miner earns after an epoch"
incentive() { "$ct" metagraph --netuid 1 --chain "$chain" --json | json "[i for i, h in zip(j['incentive'], j['hotkeys']) if h == '$miner_hot'][0]"; }
earns() { [ "$(incentive)" -gt 0 ]; }
wait_for 120 "incentive for the miner" earns
earned=$(incentive)

step "dashboard --chain URL"
dash_port=$(free_port)
"$ct" dashboard --chain "$chain" --listen "127.0.0.1:$dash_port" >"$work/dashboard.log" 2>&1 &
dash_pid=$!
pids+=("$dash_pid")
wait_for 30 "dashboard URL" grep -q "^dashboard: http://127.0.0.1:$dash_port$" "$work/dashboard.log"
dash_state() { http_get "http://127.0.0.1:$dash_port/api/state" | json "[len(s['neurons']) for s in j['subnets'] if s['netuid'] == 1][0]" | grep -qx 2; }
wait_for 30 "both neurons on the dashboard" dash_state

step "stop the neurons (Ctrl-C): they exit 0 and say what they did"
stop() { # PID LOG WHAT
  kill -INT "$1"
  local code=0
  wait "$1" || code=$?
  [ "$code" = 0 ] || fail "$3 exited $code on SIGINT"
}
stop "$miner_pid" "$work/miner.log" "miner run"
grep -q "^served [0-9]* queries" "$work/miner.log" || fail "miner run did not say what it served"
stop "$vali_pid" "$work/validator.log" "validator run"
grep -q "^sent [0-9]* queries, set weights [1-9][0-9]* times" "$work/validator.log" || fail "validator run did not say it set weights"
[ -f "$vali_home/neurons/default/default/validator-state.json" ] || fail "no validator state in <home>/neurons/WALLET/HOTKEY"
stop "$dash_pid" "$work/dashboard.log" "dashboard"

step "backup and restore of keys: the wallets directory"
tar -C "$miner_home" -czf "$work/miner-wallets.tgz" wallets
restored="$work/restored"
mkdir -p "$restored"
tar -C "$restored" -xzf "$work/miner-wallets.tgz"
[ "$(address "$restored" hotkeys '[0]["address"]')" = "$miner_hot" ] || fail "the restored hotkey differs"
"$ct" --home "$restored" wallet sign --message backup --coldkey --password-file "$work/pw" >/dev/null ||
  fail "the restored coldkey does not open with its password"

step "node upgrade: stop, back up the node home, restart on the same home"
before=$(height)
stop "$node_pid" "$work/node.log" "chain run"
tar -C "$node_home" -czf "$work/node-home.tgz" chain || fail "backing up the node home"
"$ct" --home "$node_home" chain run >>"$work/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
wait_for 60 "blocks after the restart" above $((before + 2))
stop "$node_pid" "$work/node.log" "chain run (restarted)"

echo "PASS operator-guide: node, subnet, miner (uid 0, incentive $earned), validator, dashboard, key backup and node restart from height $before"
