#!/usr/bin/env bash
# A world from the built-in counter example, in a temporary store: create it, send events
# (one by one and as a batch), read state, look at the journal, snapshot, and verify it
# offline. Run from the repository root: bash examples/world.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
aos="${CARGO_TARGET_DIR:-$PWD/target}/release/aos"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
step() { printf '\n\033[1m$ aos %s\033[0m\n' "${*:2}"; "$@"; }

step "$aos" init
step "$aos" world new demo --example counter
step "$aos" send demo demo/CounterEvent@1 '{"Start": {"target": 3}}'
step "$aos" send demo demo/CounterEvent@1 '"Tick"'
step "$aos" state demo demo/Counter@1

python3 - <<'PY'
with open("ticks.jsonl", "w") as f:
    for _ in range(20000):
        f.write('{"schema": "demo/CounterEvent@1", "value": "Tick"}\n')
PY
step "$aos" send demo --batch ticks.jsonl
step "$aos" state demo demo/Counter@1
step "$aos" state demo demo/Counter@1 --at 3
step "$aos" log demo -n 4
step "$aos" snapshot demo
step "$aos" verify demo

step "$aos" world new bank --example keyed
printf '%s\n' \
  '{"schema":"demo/AccountEvent@1","value":{"account":"alice","op":{"Deposit":{"amount":10}}}}' \
  '{"schema":"demo/AccountEvent@1","value":{"account":"bob","op":{"Deposit":{"amount":5}}}}' \
  '{"schema":"demo/AccountEvent@1","value":{"account":"bob","op":{"Withdraw":{"amount":9}}}}' \
  > bank.jsonl
step "$aos" send bank --batch bank.jsonl
step "$aos" state bank demo/Accounts@1 --keys
step "$aos" state bank demo/Accounts@1 --key '"bob"'
step "$aos" log bank -n 2
step "$aos" verify bank
step "$aos" fsck
