#!/usr/bin/env bash
# Builds the example reducers for wasm32-unknown-unknown and copies them to reducers/wasm/:
# the SDK ones (counter, keyed; the SDK workspace) and the ones written the ordinary way
# without the SDK (stdcounter, stdkeyed: each its own workspace, the default release profile, no stack
# setting). The flags make the bytes independent of the machine: paths of the cargo
# home, the repository and the target dir are remapped, so the same rustc and Cargo.lock give
# the same modules anywhere.
#
#   reducers/build.sh           build and update reducers/wasm/*.wasm
#   reducers/build.sh --check   build and compare byte-for-byte with the committed files;
#                               exit 1 on any difference
#
# Target dir: $CARGO_TARGET_DIR if set, else reducers/target.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

modules=(counter keyed)
std_modules=(stdcounter stdkeyed)
triple=wasm32-unknown-unknown
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
target="${CARGO_TARGET_DIR:-$here/target}"
mkdir -p "$target"
target="$(cd "$target" && pwd)"

if ! rustc --print target-list >/dev/null 2>&1 \
  || [ ! -d "$(rustc --print sysroot)/lib/rustlib/$triple" ]; then
  echo "build.sh: the $triple target is not installed (rustup target add $triple)" >&2
  exit 2
fi

remap=(
  "--remap-path-prefix=$cargo_home=/cargo"
  "--remap-path-prefix=$repo=/aos"
  "--remap-path-prefix=$target=/target"
)
# Cargo passes CARGO_ENCODED_RUSTFLAGS verbatim (unit-separated), so paths with spaces work.
encode() {
  local e
  e="$(printf '%s\x1f' "$@")"
  printf '%s' "${e%$'\x1f'}"
}

# SDK modules. -zstack-size: a 64 KiB stack instead of the default 1 MiB keeps the initial
# memory at a few pages.
(
  cd "$here"
  unset RUSTFLAGS
  CARGO_ENCODED_RUSTFLAGS="$(encode "-Clink-arg=-zstack-size=65536" "${remap[@]}")" \
    CARGO_TARGET_DIR="$target" \
    cargo build --release --locked --target "$triple" \
    $(printf -- '-p %s ' "${modules[@]}")
)
# Modules built the ordinary way: each crate its own workspace, only the path remapping.
for m in "${std_modules[@]}"; do
  (
    cd "$here/$m"
    unset RUSTFLAGS
    CARGO_ENCODED_RUSTFLAGS="$(encode "${remap[@]}")" CARGO_TARGET_DIR="$target" \
      cargo build --release --locked --target "$triple"
  )
done

built="$target/$triple/release"
status=0
for m in "${modules[@]}" "${std_modules[@]}"; do
  out="$built/$m.wasm"
  committed="$here/wasm/$m.wasm"
  if [ "$check" = 1 ]; then
    if [ ! -f "$committed" ]; then
      echo "build.sh --check: $committed is missing; run reducers/build.sh and commit it" >&2
      status=1
    elif ! cmp -s "$out" "$committed"; then
      echo "build.sh --check: reducers/wasm/$m.wasm differs from a fresh build" \
        "($(wc -c <"$committed") committed vs $(wc -c <"$out") built bytes, built with" \
        "$(rustc --version)); run reducers/build.sh and commit the result" >&2
      status=1
    else
      echo "build.sh --check: reducers/wasm/$m.wasm is up to date ($(wc -c <"$out") bytes)"
    fi
  else
    mkdir -p "$here/wasm"
    cp "$out" "$committed"
    echo "reducers/wasm/$m.wasm: $(wc -c <"$out") bytes"
  fi
done
exit "$status"
