#!/usr/bin/env bash
# Whole-process figures for worlds (issue 4), with hyperfine. Prints a markdown table.
#
#   bash benches/world.sh             # needs hyperfine (apt-get install hyperfine), python3
#   RUNS=3 bash benches/world.sh      # repetitions of the 1M-event timings (default 3)
#
# Counter example: `aos send W --batch FILE` of 100,000 and 1,000,000 events (durable, fresh
# store per run), `aos verify W` of the 1M-event world, peak RSS of send and verify at 100k
# and 1M events, and of sending 100k more events into the 1M-event world.
# Keyed example: one batch of 1,000,000 deposits to distinct accounts (1M cells), then 1,000
# deposits to existing accounts and `aos snapshot`: objects written by each step (from
# `aos fsck --json`), and the time of reading one cell (`aos state ... --key`).
# Std-built reducers (reducers/stdcounter, reducers/stdkeyed: std, serde, ciborium, the default
# allocator), beside the SDK ones on the same events: ingest and verify of STD_EVENTS counter
# Ticks and of STD_EVENTS deposits to distinct accounts (default 20,000; one run each, since
# they are still far slower).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
export STD_EVENTS="${STD_EVENTS:-20000}"
cargo build --release --quiet
aos="${CARGO_TARGET_DIR:-$PWD/target}/release/aos"
command -v hyperfine >/dev/null || { echo "hyperfine is required: apt-get install hyperfine" >&2; exit 1; }
RUNS="${RUNS:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "load before: $(uptime)" >&2

python3 - <<'PY'
start = '{"schema":"demo/CounterEvent@1","value":{"Start":{"target":1000000000000}}}\n'
tick = '{"schema":"demo/CounterEvent@1","value":"Tick"}\n'
for n, name in [(100_000, "c100k"), (1_000_000, "c1m")]:
    with open(f"{name}.jsonl", "w") as f:
        f.write(start)
        f.write(tick * (n - 1))
dep = '{{"schema":"demo/AccountEvent@1","value":{{"account":"acct-{}","op":{{"Deposit":{{"amount":{}}}}}}}}}\n'
with open("k1m.jsonl", "w") as f:
    f.writelines(dep.format(i, 10) for i in range(1_000_000))
# 1,000 existing accounts spread over the whole key space.
with open("k1k.jsonl", "w") as f:
    f.writelines(dep.format(i * 997 % 1_000_000, 3) for i in range(1000))
import os
n = int(os.environ["STD_EVENTS"])
with open("cstd.jsonl", "w") as f:
    f.write(start)
    f.write(tick * (n - 1))
with open("kstd.jsonl", "w") as f:
    f.writelines(dep.format(i, 10) for i in range(n))
PY

json() { hyperfine --style none --export-json "$1.json" "${@:2}" >/dev/null 2>&1; }
median() { python3 -c "import json; r=json.load(open('$1.json'))['results']; print(' '.join(f\"{x['median']:.4f}\" for x in r))"; }
# Peak RSS in MiB of a command (GNU time if present, else python's resource module).
rss() {
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -v "$@" 2> rss.txt >/dev/null
    awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' rss.txt
  else
    python3 -c 'import resource,subprocess,sys; subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL); print(f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024:.1f}")' "$@"
  fi
}
objects() { "$aos" -C "$1" -q --json fsck | python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"])'; }
mk() { rm -rf "$1" && "$aos" init "$1" >/dev/null && "$aos" -C "$1" -q world new W --example "$2" >/dev/null; }

# Ingest: fresh store and world per run.
json send100k -w 1 -r 5 -p "rm -rf s && $aos init s >/dev/null && $aos -C s -q world new W --example counter >/dev/null" \
  "$aos -C s -q send W --batch ../c100k.jsonl"
json send1m -w 0 -r "$RUNS" -p "rm -rf s && $aos init s >/dev/null && $aos -C s -q world new W --example counter >/dev/null" \
  "$aos -C s -q send W --batch ../c1m.jsonl"
read -r t_send100k < <(median send100k)
read -r t_send1m < <(median send1m)

# Memory: send and verify at 100k and 1M events; then 100k more into the 1M world.
mk a counter; rss_send100k=$(rss "$aos" -C a -q send W --batch ../c100k.jsonl)
mk b counter; rss_send1m=$(rss "$aos" -C b -q send W --batch ../c1m.jsonl)
rss_verify100k=$(rss "$aos" -C a -q verify W)
rss_verify1m=$(rss "$aos" -C b -q verify W)
json verify1m -w 1 -r "$RUNS" "$aos -C b -q verify W"
read -r t_verify1m < <(median verify1m)
cp -r b b2
rss_send100k_on1m=$(rss "$aos" -C b2 -q send W --batch ../c100k.jsonl)

# Keyed: 1M distinct cells in one batch, then 1,000 changed cells, then a snapshot.
mk k keyed
s0=$(date +%s.%N)
"$aos" -C k -q send W --batch ../k1m.jsonl >/dev/null
s1=$(date +%s.%N)
t_keyed1m=$(python3 -c "print(f'{$s1 - $s0:.4f}')")
o0=$(objects k)
"$aos" -C k -q send W --batch ../k1k.jsonl >/dev/null
o1=$(objects k)
"$aos" -C k -q snapshot W >/dev/null
o2=$(objects k)
json state -w 3 -r 20 "$aos -C k -q state W demo/Accounts@1 --key '\"acct-123456\"'"
read -r t_state < <(median state)
json state_mean -w 3 -r 20 "$aos -C k -q state W demo/Accounts@1 --key '\"acct-999\"'"
read -r t_state2 < <(median state_mean)
"$aos" -C k -q state W demo/Accounts@1 --key '"acct-123456"' >&2

# The same events through the SDK module and the std-built one: seconds to send, to verify.
pair() { # NAME EXAMPLE MODULE STDWASM BATCH
  local t0 t1 t2
  for kind in sdk std; do
    rm -rf "$1$kind" && "$aos" init "$1$kind" >/dev/null
    if [ "$kind" = sdk ]; then
      "$aos" -C "$1$kind" -q world new W --example "$2" >/dev/null
    else
      "$aos" -C "$1$kind" -q world new W --air "$repo/examples/worlds/$2/air" \
        --wasm "$3=$repo/reducers/wasm/$4.wasm" >/dev/null
    fi
    t0=$(date +%s.%N)
    "$aos" -C "$1$kind" -q send W --batch "../$5" >/dev/null
    t1=$(date +%s.%N)
    "$aos" -C "$1$kind" -q verify W >/dev/null
    t2=$(date +%s.%N)
    python3 -c "print(f'{$t1 - $t0:.4f} {$t2 - $t1:.4f}', end=' ')"
  done
}
read -r c_sdk_send c_sdk_verify c_std_send c_std_verify < <(pair pc counter demo/Counter@1 stdcounter cstd.jsonl; echo)
read -r k_sdk_send k_sdk_verify k_std_send k_std_verify < <(pair pk keyed demo/Accounts@1 stdkeyed kstd.jsonl; echo)

echo "load after: $(uptime)" >&2
python3 - "$t_send100k" "$t_send1m" "$t_verify1m" "$rss_send100k" "$rss_send1m" \
  "$rss_verify100k" "$rss_verify1m" "$rss_send100k_on1m" "$t_keyed1m" "$o0" "$o1" "$o2" \
  "$t_state" "$t_state2" "$STD_EVENTS" "$c_sdk_send" "$c_sdk_verify" "$c_std_send" "$c_std_verify" \
  "$k_sdk_send" "$k_sdk_verify" "$k_std_send" "$k_std_verify" <<'PY'
import sys
a = sys.argv[1:]
s100k, s1m, v1m = map(float, a[0:3])
r_s100k, r_s1m, r_v100k, r_v1m, r_s100k_on1m = map(float, a[3:8])
k1m = float(a[8]); o0, o1, o2 = map(int, a[9:12]); st, st2 = map(float, a[12:14])
print("| measurement | figure | target |")
print("| --- | ---: | --- |")
print(f"| `send --batch` 100,000 counter events (median, fresh store) | {s100k:.3f} s = **{1e5/s100k:,.0f} events/s** | ≥ 50,000/s (aim 100,000) |")
print(f"| `send --batch` 1,000,000 counter events (median, fresh store) | {s1m:.3f} s = **{1e6/s1m:,.0f} events/s** | ≥ 50,000/s (aim 100,000) |")
print(f"| `verify` of the 1,000,000-event counter world (median) | {v1m:.3f} s = **{1e6/v1m:,.0f} events/s** | ≥ 100,000/s (aim 200,000) |")
print(f"| peak RSS, `send` 100k / 1M events (fresh world) | {r_s100k:.1f} / {r_s1m:.1f} MiB | flat |")
print(f"| peak RSS, `verify` 100k / 1M-event world | {r_v100k:.1f} / {r_v1m:.1f} MiB | flat |")
print(f"| peak RSS, `send` 100k events into the 1M-event world | {r_s100k_on1m:.1f} MiB (vs {r_s100k:.1f} into a fresh one) | flat |")
print(f"| keyed: `send --batch` 1,000,000 deposits to distinct accounts (one run) | {k1m:.3f} s = {1e6/k1m:,.0f} events/s | |")
print(f"| keyed: objects written by `send` of 1,000 deposits to existing cells (entries + checkpoint) | {o1-o0:,} | |")
print(f"| keyed: objects written by `snapshot` after those 1,000 changed cells (of 1M) | **{o2-o1:,}** | O(changes × depth) |")
print(f"| keyed: objects in the store after 1M cells / after 1,000 more / after snapshot | {o0:,} / {o1:,} / {o2:,} | |")
print(f"| keyed: `state W demo/Accounts@1 --key '\"acct-123456\"'` (median, 1M cells) | **{st*1e3:.1f} ms** | < 50 ms |")
print(f"| keyed: same for `\"acct-999\"` | {st2*1e3:.1f} ms | < 50 ms |")
n = int(a[14])
c = list(map(float, a[15:19]))
k = list(map(float, a[19:23]))
for what, (ss, sv, ts, tv), target in [("counter Ticks", c, "≥ 50,000/s send, ≥ 100,000/s verify"), (f"keyed deposits to distinct accounts", k, "≥ 40,000/s send (at 1M cells)")]:
    print(f"| {n:,} {what}, SDK vs std-built: `send --batch` | {n/ss:,.0f} vs **{n/ts:,.0f} events/s** | {target} |")
    print(f"| {n:,} {what}, SDK vs std-built: `verify` | {(n+1)/sv:,.0f} vs **{(n+1)/tv:,.0f} entries/s** | |")
PY
