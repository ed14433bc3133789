#!/usr/bin/env bash
# Whole-process comparison of aos and git on the same data, in one run, with hyperfine.
# Prints a markdown table of medians and ratios (git time / aos time: >1 means aos is faster).
#
#   bash benches/vs_git.sh            # needs hyperfine (apt-get install hyperfine) and git
#
# Data: 20,000 files of 1 KiB; one 64 MiB blob (base64 text of random bytes: compresses
# about 25%, like typical mixed content); 100,000 objects of 1 KiB for fsck.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
aos="${CARGO_TARGET_DIR:-$PWD/target}/release/aos"
command -v hyperfine >/dev/null || { echo "hyperfine is required: apt-get install hyperfine" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export GIT_CONFIG_NOSYSTEM=1 HOME="$work"

python3 - <<'PY'
import os, random, base64
random.seed(7)
os.makedirs("small", exist_ok=True)
with open("paths", "w") as p:
    for i in range(20000):
        with open(f"small/f{i}", "wb") as f:
            f.write(random.randbytes(512) + (f"object {i} " * 60).encode()[:512])
        p.write(f"{os.getcwd()}/small/f{i}\n")
with open("big.bin", "wb") as f:
    f.write(base64.b64encode(random.randbytes(48 << 20)))
os.makedirs("many", exist_ok=True)
with open("paths100k", "w") as p:
    for i in range(100000):
        with open(f"many/f{i}", "wb") as f:
            f.write(random.randbytes(256) + (f"item {i} " * 120).encode()[:768])
        p.write(f"{os.getcwd()}/many/f{i}\n")
PY

json() { hyperfine --style none --export-json "$1.json" "${@:2}" >/dev/null 2>&1; }
median() { python3 -c "import json,sys; r=json.load(open('$1.json'))['results']; print(' '.join(f\"{x['median']:.4f}\" for x in r))"; }

# 20,000 x 1 KiB via --stdin-paths, into a fresh store/repository each run.
json small -w 1 -r 10 \
  -p "rm -rf g && git init -q g" "git -C g hash-object -w --stdin-paths < paths > /dev/null" \
  -p "rm -rf a && $aos init a > /dev/null" "$aos -C a hash-object -w --stdin-paths < paths > /dev/null"
read -r g_small a_small < <(median small)

# 64 MiB blob in.
json bigw -w 1 -r 10 \
  -p "rm -rf g && git init -q g" "git -C g hash-object -w ../big.bin > /dev/null" \
  -p "rm -rf a && $aos init a > /dev/null" "$aos -C a hash-object -w ../big.bin > /dev/null"
read -r g_bigw a_bigw < <(median bigw)

# 64 MiB blob out.
rm -rf g a && git init -q g && "$aos" init a >/dev/null
gid=$(git -C g hash-object -w ../big.bin); aid=$("$aos" -C a hash-object -w ../big.bin)
json bigr -w 2 -r 15 "git -C g cat-file blob $gid > /dev/null" "$aos -C a cat-object --raw $aid > /dev/null"
read -r g_bigr a_bigr < <(median bigr)

# fsck over 100,000 objects (written by one batch, i.e. packed), against git fsck on the
# same objects packed by git gc.
rm -rf g a && git init -q g && "$aos" init a >/dev/null
git -C g hash-object -w --stdin-paths < paths100k > /dev/null && git -C g gc -q
"$aos" -C a hash-object -w --stdin-paths < paths100k > /dev/null
json fsck -w 1 -r 5 "git -C g fsck --no-dangling --no-progress" "$aos -C a -q fsck"
read -r g_fsck a_fsck < <(median fsck)

python3 - "$g_small" "$a_small" "$g_bigw" "$a_bigw" "$g_bigr" "$a_bigr" "$g_fsck" "$a_fsck" <<'PY'
import sys
v = list(map(float, sys.argv[1:]))
rows = [("write 20,000 x 1 KiB (--stdin-paths)", v[0], v[1], 20000 * 1024),
        ("write one 64 MiB blob", v[2], v[3], 64 << 20),
        ("read one 64 MiB blob", v[4], v[5], 64 << 20),
        ("fsck 100,000 packed objects", v[6], v[7], 100000 * 1024)]
print("| operation | git (s) | aos (s) | git/aos | aos MB/s |")
print("| --- | ---: | ---: | ---: | ---: |")
for name, g, a, n in rows:
    print(f"| {name} | {g:.3f} | {a:.3f} | {g/a:.2f}x | {n/a/1e6:.0f} |")
PY
