//! Golden vectors of objects-spec/: every vector decodes, re-encodes byte for byte and hashes
//! to its recorded id; every invalid input is rejected with the recorded rule and offset; the
//! fixture store reads back exactly as listed.
//!
//! Run with `AOS_BLESS=1` to (re)compute the derived fields (`cbor`, `id`) and to rebuild the
//! fixture store after a deliberate format change; review the diff before committing.

use std::fs;
use std::path::{Path, PathBuf};

use aos::codec::{cbor, json};
use aos::object::{Kind, ObjectId, hash};
use aos::store::Store;
use aos::store::refs::{Expected, RefName};
use serde_json::{Value as J, json};

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("objects-spec/vectors")
}

fn bless() -> bool {
    std::env::var_os("AOS_BLESS").is_some()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex in vector"))
        .collect()
}

fn load(name: &str) -> Vec<J> {
    let text = fs::read_to_string(vectors().join(name)).expect("vector file");
    serde_json::from_str::<J>(&text)
        .expect("vector JSON")
        .as_array()
        .expect("array")
        .clone()
}

fn save(name: &str, v: &[J]) {
    fs::write(
        vectors().join(name),
        serde_json::to_string_pretty(v).expect("json") + "\n",
    )
    .expect("write vectors");
}

fn s<'a>(v: &'a J, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("field {k} in {v}"))
}

#[test]
fn value_vectors() {
    let mut vs = load("values.json");
    for v in &mut vs {
        let name = s(v, "name").to_owned();
        let value = json::from_json(s(v, "json")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let enc = cbor::encode(&value);
        let id = hash(Kind::Value, &enc);
        if bless() {
            v["cbor"] = json!(hex(&enc));
            v["id"] = json!(id.to_string());
            continue;
        }
        assert_eq!(s(v, "cbor"), hex(&enc), "{name}: encoding");
        assert_eq!(s(v, "id"), id.to_string(), "{name}: id");
        let bytes = unhex(s(v, "cbor"));
        let decoded = cbor::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, value, "{name}: decode");
        assert_eq!(cbor::encode(&decoded), bytes, "{name}: re-encode");
        assert_eq!(
            json::from_json(&json::to_json(&decoded)).expect("render parses"),
            decoded,
            "{name}: JSON"
        );
        assert_eq!(
            Store::check(Kind::Value, &bytes).expect("valid"),
            id,
            "{name}: check"
        );
    }
    if bless() {
        save("values.json", &vs);
    }
}

#[test]
fn invalid_vectors() {
    for v in load("invalid.json") {
        let name = s(&v, "name");
        let err = cbor::decode(&unhex(s(&v, "cbor"))).expect_err(name);
        assert_eq!(err.rule.name(), s(&v, "rule"), "{name}: rule");
        assert_eq!(
            err.offset as u64,
            v["offset"].as_u64().expect("offset"),
            "{name}: offset"
        );
        assert_eq!(
            cbor::validate(&unhex(s(&v, "cbor"))),
            Err(err),
            "{name}: validate agrees"
        );
    }
}

#[test]
fn blob_vectors() {
    let mut vs = load("blobs.json");
    for v in &mut vs {
        let id = hash(Kind::Blob, &unhex(s(v, "hex")));
        if bless() {
            v["id"] = json!(id.to_string());
        } else {
            assert_eq!(s(v, "id"), id.to_string(), "{}", s(v, "name"));
        }
    }
    if bless() {
        save("blobs.json", &vs);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let dest = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).expect("copy");
        }
    }
}

/// Builds the fixture store: a few loose objects, a pack, links between them, two refs.
fn build_fixture(root: &Path) -> J {
    let _ = fs::remove_dir_all(root);
    let (store, _) = Store::init(root).expect("init fixture");
    let mut objects = Vec::new();
    let mut record = |id: ObjectId, kind: Kind, payload: &[u8]| {
        objects.push(json!({ "id": id.to_string(), "kind": kind.name(), "payload": hex(payload) }));
    };
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 7) as u8).collect();
    let blob = store.put(Kind::Blob, &big).expect("put");
    record(blob, Kind::Blob, &big);
    let small = b"a raw blob, stored uncompressed".to_vec();
    let small_id = store.put(Kind::Blob, &small).expect("put");
    record(small_id, Kind::Blob, &small);
    let mut batch = store.batch();
    let mut packed = Vec::new();
    for i in 0..5u64 {
        let v = cbor::encode(&cbor::Value::Array(vec![
            i.into(),
            cbor::Value::Text("packed ".repeat(20)),
        ]));
        let id = batch.add(Kind::Value, &v).expect("add");
        record(id, Kind::Value, &v);
        packed.push(cbor::Value::Link(id));
    }
    batch.commit().expect("commit");
    let root_val = cbor::encode(
        &json::from_json(&format!(
            r#"{{"blob": {{"$link": "{blob}"}}, "small": {{"$link": "{small_id}"}}, "name": "fixture"}}"#
        ))
        .expect("json"),
    );
    let root_id = store.put(Kind::Value, &root_val).expect("put");
    record(root_id, Kind::Value, &root_val);
    let list = cbor::encode(&cbor::Value::Array(packed));
    let list_id = store.put(Kind::Value, &list).expect("put");
    record(list_id, Kind::Value, &list);
    let refs = store.refs();
    let main = RefName::new("refs/heads/main").expect("name");
    refs.update(&main, Some(list_id), Expected::Absent, "fixture: first")
        .expect("ref");
    refs.update(
        &main,
        Some(root_id),
        Expected::Is(list_id),
        "fixture: second",
    )
    .expect("ref");
    let w = RefName::new("refs/worlds/demo").expect("name");
    refs.update(&w, Some(list_id), Expected::Absent, "fixture")
        .expect("ref");
    let _ = fs::remove_dir(root.join("tmp"));
    json!({
        "objects": objects,
        "refs": { "refs/heads/main": root_id.to_string(), "refs/worlds/demo": list_id.to_string() },
        "reflogs": reflogs(&store),
    })
}

/// Every reflog as `{name: [[old, new, message], ...]}` (`-` for none).
fn reflogs(store: &Store) -> J {
    let mut out = serde_json::Map::new();
    for (name, _) in store.refs().list("refs/").expect("refs") {
        let entries: Vec<J> = store
            .refs()
            .reflog(&name)
            .expect("reflog")
            .into_iter()
            .map(|e| {
                let show = |id: Option<ObjectId>| id.map_or("-".to_owned(), |i| i.to_string());
                json!([show(e.old), show(e.new), e.message])
            })
            .collect();
        out.insert(name.to_string(), J::Array(entries));
    }
    J::Object(out)
}

#[test]
fn fixture_store() {
    let fixture = vectors().join("store");
    if bless() {
        let listing = build_fixture(&fixture);
        fs::write(
            vectors().join("store.json"),
            serde_json::to_string_pretty(&listing).expect("json") + "\n",
        )
        .expect("write listing");
    }
    let listing: J =
        serde_json::from_str(&fs::read_to_string(vectors().join("store.json")).expect("listing"))
            .expect("listing JSON");
    // Work on a copy: opening a store may create its empty tmp/ directory.
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture, tmp.path());
    let store = Store::open(tmp.path()).expect("open fixture");
    let objs = listing["objects"].as_array().expect("objects");
    let mut ids: Vec<ObjectId> = Vec::new();
    for o in objs {
        let id: ObjectId = s(o, "id").parse().expect("id");
        let got = store.get(&id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(got.kind.name(), s(o, "kind"));
        assert_eq!(hex(&got.data), s(o, "payload"));
        assert_eq!(hash(got.kind, &got.data), id);
        ids.push(id);
    }
    ids.sort();
    assert_eq!(
        store.list_objects().expect("list"),
        ids,
        "the listing names every object in the store"
    );
    assert!(store.packs().len() == 1, "the fixture has one pack");
    for (name, id) in listing["refs"].as_object().expect("refs") {
        let got = store
            .refs()
            .read(&RefName::new(name).expect("name"))
            .expect("read");
        assert_eq!(got.map(|i| i.to_string()).as_deref(), id.as_str());
    }
    assert_eq!(
        reflogs(&store),
        listing["reflogs"],
        "reflogs read back as listed"
    );
    let report = aos::store::fsck::fsck(&store, &aos::progress::NoProgress).expect("fsck");
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.refs, 2);
}

/// The journal vectors (objects-spec §12–13): every valid entry and snapshot decodes, encodes
/// back to its bytes (the fast event encoding included) and hashes to its id; every invalid
/// one is rejected at its JSON pointer.
#[test]
fn journal_vectors() {
    use aos::kernel::entry::{Entry, EntryError};
    use aos::kernel::snapshot::Snapshot;
    let text = fs::read_to_string(vectors().join("journal.json")).expect("journal vectors");
    let mut file: J = serde_json::from_str(&text).expect("vector JSON");
    let mut kinds = std::collections::BTreeSet::new();
    for v in file["valid"].as_array_mut().expect("valid") {
        let name = s(v, "name").to_owned();
        let value = json::from_json(s(v, "json")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = cbor::encode(&value);
        let (enc, id) = match s(v, "kind") {
            "entry" => {
                let e = Entry::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                kinds.insert(e.kind_word());
                e.encode()
            }
            "snapshot" => {
                let snap = Snapshot::decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                kinds.insert(if snap.manifest.is_some() {
                    "snapshot format 2"
                } else {
                    "snapshot format 1"
                });
                snap.encode()
            }
            k => panic!("{name}: kind {k}"),
        };
        assert_eq!(hex(&enc), hex(&bytes), "{name}: re-encoding");
        let kind = if s(v, "kind") == "entry" {
            Kind::Entry
        } else {
            Kind::Snapshot
        };
        if bless() {
            v["cbor"] = json!(hex(&bytes));
            v["id"] = json!(id.to_string());
            continue;
        }
        assert_eq!(s(v, "cbor"), hex(&bytes), "{name}: encoding");
        assert_eq!(s(v, "id"), id.to_string(), "{name}: id");
        assert_eq!(
            Store::check(kind, &unhex(s(v, "cbor"))).expect("valid"),
            id,
            "{name}: check"
        );
    }
    for k in [
        "genesis",
        "event",
        "fault",
        "snapshot",
        "manifest",
        "snapshot format 1",
        "snapshot format 2",
    ] {
        assert!(kinds.contains(k), "the vectors cover {k}");
    }
    for v in file["invalid"].as_array().expect("invalid") {
        let name = s(v, "name");
        let value = json::from_json(s(v, "json")).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = cbor::encode(&value);
        let err = match s(v, "kind") {
            "entry" => Entry::decode(&bytes).map(|_| ()),
            _ => Snapshot::decode(&bytes).map(|_| ()),
        }
        .expect_err(name);
        let EntryError::Shape(shape) = &err else {
            panic!("{name}: {err}")
        };
        assert_eq!(shape.path, s(v, "pointer"), "{name}: {err}");
    }
    if bless() {
        fs::write(
            vectors().join("journal.json"),
            serde_json::to_string_pretty(&file).expect("json") + "\n",
        )
        .expect("write vectors");
    }
}
