#!/usr/bin/env bash
# Whole-process timing of `aos air check` on a generated world of 1,000 schemas, 200 modules
# and 200 plans (the same shapes as benches/air.rs), with hyperfine.
#
#   bash benches/air_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
aos="${CARGO_TARGET_DIR:-$PWD/target}/release/aos"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work/air" <<'PY'
import json, os, sys
d = sys.argv[1]; os.makedirs(d)
S, M, P = 1000, 200, 200
schemas = []
for i in range(S):
    rec = {"id": {"nat": {}}, "label": {"text": {}}, "tags": {"set": {"text": {}}}, "note": {"option": {"text": {}}}}
    if i % 5 == 4:
        rec["prev"] = {"ref": f"bench/S{i-1}@1"}
    schemas.append({"$kind": "defschema", "name": f"bench/S{i}@1", "type": {"record": rec}})
modules = [{"$kind": "defmodule", "name": f"bench/M{i}@1", "module_kind": "reducer",
            "abi": {"reducer": {"state": f"bench/S{(2*i) % S}@1", "event": f"bench/S{(2*i+1) % S}@1",
                                "effects_emitted": [], "cap_slots": {}}}} for i in range(M)]
plans = []
for i in range(P):
    inp = f"bench/S{(3*i) % S}@1"
    plans.append({"$kind": "defplan", "name": f"bench/P{i}@1", "input": inp, "locals": {"n": inp},
        "steps": [{"id": "a", "op": "assign", "expr": {"ref": "@plan.input"}, "bind": {"as": "n"}},
                  {"id": "b", "op": "assign", "expr": {"op": "add", "args": [{"ref": "@plan.input.id"}, {"nat": 1}]}, "bind": {"as": "m"}},
                  {"id": "done", "op": "end"}],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "done", "when": {"op": "gt", "args": [{"ref": "@plan.input.id"}, {"nat": 0}]}}]})
manifest = {"$kind": "manifest", "air_version": "1",
    "schemas": [{"name": s["name"]} for s in schemas], "modules": [{"name": m["name"]} for m in modules],
    "plans": [{"name": p["name"]} for p in plans], "effects": [], "caps": [], "policies": [],
    "routing": {"events": [{"event": f"bench/S{(2*i+1) % S}@1", "reducer": f"bench/M{i}@1"} for i in range(M)], "inboxes": []},
    "triggers": []}
for name, nodes in [("schemas", schemas), ("modules", modules), ("plans", plans)]:
    json.dump(nodes, open(f"{d}/{name}.air.json", "w"), indent=1)
json.dump(manifest, open(f"{d}/manifest.air.json", "w"), indent=1)
PY
"$aos" air check "$work/air"
hyperfine --warmup 2 --runs 20 "$aos air check $work/air"
