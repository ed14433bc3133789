#!/usr/bin/env bash
# Whole-process figures for the git-like porcelain (issue 5), with hyperfine. Prints a
# markdown table on stdout.
#
#   bash benches/porcelain.sh          # needs hyperfine (apt-get install hyperfine), python3
#
# Builds a 1,000,000-event counter world and a 1,000,000-cell keyed world, then measures:
# `aos fork` of the 1M-event world (at its head and at a past height); `aos diff` between two
# forks of the 1M-cell world that differ in 10 cells; a clone of the 1M-event world; `aos push`
# of one more event to a path remote (bytes sent and time); bundle create/verify/unbundle
# throughput of the whole 1M-event world.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
aos="${CARGO_TARGET_DIR:-$PWD/target}/release/aos"
command -v hyperfine >/dev/null || { echo "hyperfine is required: apt-get install hyperfine" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "load before: $(uptime)" >&2

python3 - <<'PY'
start = '{"schema":"demo/CounterEvent@1","value":{"Start":{"target":1000000000000}}}\n'
tick = '{"schema":"demo/CounterEvent@1","value":"Tick"}\n'
with open("c1m.jsonl", "w") as f:
    f.write(start)
    f.write(tick * 999_999)
dep = '{{"schema":"demo/AccountEvent@1","value":{{"account":"acct-{}","op":{{"Deposit":{{"amount":{}}}}}}}}}\n'
with open("k1m.jsonl", "w") as f:
    f.writelines(dep.format(i, 10) for i in range(1_000_000))
with open("k10.jsonl", "w") as f:
    f.writelines(dep.format(i * 99_991 % 1_000_000, 3) for i in range(10))
PY

json() { hyperfine --style none --export-json "$1.json" "${@:2}" >/dev/null 2>&1; }
median() { python3 -c "import json; r=json.load(open('$1.json'))['results']; print(' '.join(f\"{x['median']:.5f}\" for x in r))"; }
secs() { local s0 s1; s0=$(date +%s.%N); "$@" >/dev/null; s1=$(date +%s.%N); python3 -c "print(f'{$s1 - $s0:.4f}')"; }

"$aos" init c >/dev/null && "$aos" -C c -q world new W --example counter >/dev/null
"$aos" -C c -q send W --batch ../c1m.jsonl >/dev/null
"$aos" init k >/dev/null && "$aos" -C k -q world new W --example keyed >/dev/null
"$aos" -C k -q send W --batch ../k1m.jsonl >/dev/null
"$aos" -C k -q fork W W2 >/dev/null
"$aos" -C k -q send W2 --batch ../k10.jsonl >/dev/null

# fork: fresh name per run (the refs and reflogs of the previous run removed).
rmf="rm -f c/.aos/refs/worlds/F c/.aos/refs/checkpoints/F c/.aos/logs/refs/worlds/F c/.aos/logs/refs/checkpoints/F"
json fork -N -w 3 -r 30 --prepare "$rmf" "$aos -C c -q fork W F"
json fork_past -w 1 -r 5 --prepare "$rmf" "$aos -C c -q fork W@500000 F"
# diff exits 1 when the sides differ.
json diff -N -i -w 3 -r 20 "$aos -C k -q diff W W2" "$aos -C k -q diff W W2 --stat"
read -r t_fork < <(median fork)
read -r t_fork_past < <(median fork_past)
read -r t_diff t_diff_stat < <(median diff)
cells=$("$aos" -C k -q --json diff W W2 --stat | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"]["cells_changed"])' || true)

# clone, then push one more event.
t_clone=$(secs "$aos" -q clone c d)
"$aos" -C d -q send W demo/CounterEvent@1 '"Tick"' >/dev/null
sent=$("$aos" -C d -q --json push origin W | python3 -c 'import json,sys; print(json.load(sys.stdin)["sent"]["bytes"])')
json push -N -w 2 -r 20 --prepare "$aos -C d -q send W demo/CounterEvent@1 '\"Tick\"'" "$aos -C d -q push origin W"
read -r t_push < <(median push)

echo "load after: $(uptime)" >&2
python3 - "$t_fork" "$t_fork_past" "$t_diff" "$t_diff_stat" "$cells" "$t_clone" "$sent" "$t_push" <<'PY'
import sys
a = sys.argv[1:]
fork, fork_past, diff, diff_stat = map(float, a[0:4])
cells = a[4]; clone = float(a[5]); sent = int(a[6]); push = float(a[7])
print("| measurement | figure | target |")
print("| --- | ---: | --- |")
print(f"| `aos fork W F` on the 1,000,000-event counter world (median) | **{fork*1e3:.1f} ms** | < 20 ms |")
print(f"| `aos fork W@500000 F` (walks back 500,000 entries) | {fork_past:.3f} s | |")
print(f"| `aos diff W W2`, forks of a 1,000,000-cell world differing in {cells} cells (median) | **{diff*1e3:.1f} ms** | < 100 ms |")
print(f"| same with `--stat` | {diff_stat*1e3:.1f} ms | |")
print(f"| `aos clone` of the 1,000,000-event counter world (one run) | {clone:.2f} s | |")
print(f"| `aos push origin W` after one more event: bytes sent | **{sent:,} B** | < 64 KiB |")
print(f"| same: time (median) | **{push*1e3:.1f} ms** | < 200 ms |")
PY
