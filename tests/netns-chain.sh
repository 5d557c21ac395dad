#!/usr/bin/env bash
# Multi-host test: 4 chain validator hosts, a client host, a miner host and a
# neuron-validator host, each in its own network namespace on a private
# bridge that this script creates (and removes). The chain validators run
# "cybertensor chain run"; the client sends transactions through the chain
# RPC (chainlink/comet); the miner and the validator neuron run on their own
# hosts against the chain's RPC and query each other over libp2p; one chain
# validator host is partitioned from the others and healed, and must catch up
# with the same app hash, and the miner must be earning incentive. A second
# miner on a host of its own joins too: the three neurons find each other
# from the axons on chain and the DHT, and each hears the other two's
# heartbeats over gossip.
#
# Needs root and `ip netns`; without them it says why and skips (exit 0).
set -euo pipefail

skip() { echo "SKIP netns-chain: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
ip netns add ct-probe-$$ 2>/dev/null || skip "cannot create network namespaces here"
ip netns del ct-probe-$$

cd "$(dirname "$0")/.."
work=$(mktemp -d)
prefix="ct$$"
hub="${prefix}-hub"
hosts=(10.231.0.1 10.231.0.2 10.231.0.3 10.231.0.4 10.231.0.10 10.231.0.11 10.231.0.12 10.231.0.13)
names=("${prefix}-v0" "${prefix}-v1" "${prefix}-v2" "${prefix}-v3" "${prefix}-c0" "${prefix}-m0" "${prefix}-n0" "${prefix}-m1")
pids=()

cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "${names[@]}" "$hub"; do ip netns del "$n" 2>/dev/null || true; done
  [ -n "${KEEP_LOGS:-}" ] && cp "$work"/*.log /tmp/ 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT

echo "== building"
go build -o "$work/cybertensor" ./cmd/cybertensor
ct="$work/cybertensor"

echo "== network: bridge in $hub, one veth per host"
ip netns add "$hub"
ip -n "$hub" link add br0 type bridge
ip -n "$hub" link set br0 up
ip -n "$hub" link set lo up
for i in "${!names[@]}"; do
  n=${names[$i]}
  ip netns add "$n"
  # Created inside the hub namespace, so no name touches the host's.
  ip -n "$hub" link add "h$i" type veth peer name "e$i" netns "$n"
  ip -n "$hub" link set "h$i" master br0
  ip -n "$hub" link set "h$i" up
  ip -n "$n" addr add "${hosts[$i]}/24" dev "e$i"
  ip -n "$n" link set "e$i" up
  ip -n "$n" link set lo up
done

echo "== genesis and node homes"
home="$work/home"
echo pw > "$work/pw"
for w in default miner vali miner2; do
  "$ct" --home "$home" wallet new --name "$w" --password-file "$work/pw" >/dev/null
done
coldkey() { "$ct" --home "$home" wallet show --name "$1" --json | sed -n 's/.*"address": "\(ct1[a-z0-9]*\)".*/\1/p' | head -1; }
"$ct" --home "$home" chain testnet --validators 4 --out "$work/net" --block-time 200ms \
  --fund "$(coldkey miner)=1000" --fund "$(coldkey vali)=1000" --fund "$(coldkey miner2)=1000" \
  --hosts "$(IFS=,; echo "${hosts[*]:0:4}")" >/dev/null

for i in 0 1 2 3; do
  ip netns exec "${names[$i]}" "$ct" --home "$home" --log-level warn chain run --node-home "$work/net/node$i" >"$work/node$i.log" 2>&1 &
  pids+=($!)
done

rpc() { echo "http://${hosts[$1]}:26657"; }
# height I: the latest height seen by validator I, from the client host.
height() { ip netns exec "${names[4]}" "$ct" --home "$home" chain status --chain "$(rpc "$1")" --timeout 3s --json 2>/dev/null | sed -n 's/.*"height": \([0-9]*\).*/\1/p' || true; }
wait_height() { # validator, height, seconds
  local end=$((SECONDS + $3)) h
  while :; do
    h=$(height "$1"); h=${h:-0}
    [ "$h" -ge "$2" ] && return 0
    [ $SECONDS -ge $end ] && { echo "FAIL: validator $1 at height $h, wanted $2"; tail -5 "$work/node$1.log"; exit 1; }
    sleep 0.2
  done
}
apphash() { ip netns exec "${names[4]}" "$ct" --home "$home" chain status --chain "$(rpc "$1")" --height "$2" --json | sed -n 's/.*"app_hash": "\([0-9A-F]*\)".*/\1/p'; }

echo "== consensus across hosts"
for i in 0 1 2 3; do wait_height "$i" 5 90; done

echo "== transactions from the client host through validator 1"
to=$("$ct" --home "$home" wallet show --json | sed -n 's/.*"address": "\(ct1[a-z0-9]*\)".*/\1/p' | head -1)
ip netns exec "${names[4]}" "$ct" --home "$home" subnets create --name alpha --chain "$(rpc 1)" --password-file "$work/pw" >/dev/null
ip netns exec "${names[4]}" "$ct" --home "$home" subnets register --netuid 1 --chain "$(rpc 2)" --password-file "$work/pw" >/dev/null
ip netns exec "${names[4]}" "$ct" --home "$home" stake add --amount 10 --chain "$(rpc 3)" --password-file "$work/pw" >/dev/null

echo "== two miners and a validator neuron on their own hosts"
ip netns exec "${names[5]}" "$ct" --home "$home" --log-level info miner run --wallet miner --netuid 1 \
  --listen "/ip4/${hosts[5]}/tcp/4001" --chain "$(rpc 1)" --password-file "$work/pw" >"$work/miner.log" 2>&1 &
pids+=($!)
ip netns exec "${names[7]}" "$ct" --home "$home" --log-level info miner run --wallet miner2 --netuid 1 \
  --listen "/ip4/${hosts[7]}/tcp/4001" --chain "$(rpc 0)" --password-file "$work/pw" >"$work/miner2.log" 2>&1 &
pids+=($!)
ip netns exec "${names[6]}" "$ct" --home "$home" --log-level info validator run --wallet vali --netuid 1 --stake 100 \
  --listen "/ip4/${hosts[6]}/tcp/4001" --chain "$(rpc 2)" --password-file "$work/pw" --query-every 1 --weights-every 3 >"$work/vali.log" 2>&1 &
pids+=($!)

echo "== partition validator 3"
ip -n "$hub" link set "h3" down
h=$(height 0)
wait_height 0 $((h + 10)) 60
stalled=$(ip netns exec "${names[3]}" "$ct" --home "$home" chain status --chain "$(rpc 3)" --json | sed -n 's/.*"height": \([0-9]*\).*/\1/p' || true)
echo "   others at $(height 0), partitioned validator at $stalled"

echo "== heal"
ip -n "$hub" link set "h3" up
target=$(height 0)
wait_height 3 "$target" 120
# The app hash after block H is committed in block H+1's header.
for i in 0 1 2 3; do wait_height "$i" $((target + 1)) 60; done
for i in 0 1 2 3; do
  got=$(apphash "$i" "$target")
  [ "$got" = "$(apphash 0 "$target")" ] || { echo "FAIL: validator $i app hash $got at $target differs"; exit 1; }
done
echo "== the miner on its host earns incentive"
miner_hotkey=$("$ct" --home "$home" wallet show --name miner --json | sed -n 's/.*"address": "\(ct1[a-z0-9]*\)".*/\1/p' | sed -n 2p)
end=$((SECONDS + 90))
while :; do
  incentive=$(ip netns exec "${names[4]}" "$ct" --home "$home" metagraph --netuid 1 --json --chain "$(rpc 0)" 2>/dev/null |
    python3 -c 'import json,sys; m=json.load(sys.stdin); h=sys.argv[1]; print(m["incentive"][m["hotkeys"].index(h)] if h in m["hotkeys"] else 0)' "$miner_hotkey" || echo 0)
  [ "${incentive:-0}" -gt 0 ] && break
  [ $SECONDS -ge $end ] && { echo "FAIL: the miner earns no incentive"; tail -n 5 "$work/miner.log" "$work/vali.log"; ip netns exec "${names[4]}" "$ct" --home "$home" metagraph --netuid 1 --chain "$(rpc 0)"; exit 1; }
  sleep 0.5
done
echo "== the neurons found each other and gossip"
heard() { grep -a "heard neuron" "$1" | sed -n 's/.*peer=\([0-9A-Za-z]*\).*/\1/p' | sort -u | wc -l; }
end=$((SECONDS + 90))
for log in miner miner2 vali; do
  while [ "$(heard "$work/$log.log")" -lt 2 ]; do
    [ $SECONDS -ge $end ] && { echo "FAIL: the $log neuron heard $(heard "$work/$log.log") of 2 other neurons over gossip"; tail -n 20 "$work/$log.log"; exit 1; }
    sleep 0.5
  done
done
echo "PASS netns-chain: 4 hosts agree at height $target after a partition and heal; the miner on its own host earns incentive $incentive/65535; 3 neurons on 3 hosts each heard the other two over gossip"
