#!/usr/bin/env bash
# A short tour of the aos store in a temporary directory: init, hash-object (blob, value,
# batch), cat-object, refs, fsck and gc. Run from the repository root: bash examples/tour.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
aos="${CARGO_TARGET_DIR:-$PWD/target}/release/aos"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
step() { printf '\n\033[1m$ aos %s\033[0m\n' "${*:2}"; "$@"; }

step "$aos" init
printf 'hello, world\n' > hello.txt
step "$aos" hash-object -w hello.txt
blob=$("$aos" hash-object -w hello.txt)
step "$aos" cat-object "${blob:3:12}"

echo '{"name": "demo", "blob": {"$link": "'"$blob"'"}, "tags": ["a", "b"], "n": -7}' > value.json
step "$aos" hash-object -w -t value value.json
value=$("$aos" hash-object -w -t value value.json)
step "$aos" cat-object "$value"
printf '\n\033[1m$ aos cat-object --raw %s | od -An -tx1\033[0m\n' "${value:0:14}"
"$aos" cat-object --raw "${value:0:14}" | od -An -tx1

printf '\n\033[1m$ printf "\\x18\\x01" | aos hash-object -t value --format cbor -   # non-canonical\033[0m\n'
printf '\x18\x01' | "$aos" hash-object -t value --format cbor - || echo "(exit $?)"

for i in $(seq 1 1000); do echo "file $i" > "f$i"; done
printf '\n\033[1m$ seq 1 1000 | sed s/^/f/ | aos hash-object -w --stdin-paths | tail -1\033[0m\n'
seq 1 1000 | sed 's/^/f/' | "$aos" hash-object -w --stdin-paths | tail -1

step "$aos" update-ref refs/heads/main "$value" -
step "$aos" show-ref
step "$aos" fsck
step "$aos" gc --prune=now
step "$aos" fsck
