//! Bundle header parsing, round trips and damage detection.

use super::*;
use crate::object::ObjectId;
use crate::progress::NoProgress;
use crate::store::refs::RefName;
use crate::transfer::tests::{temp_store, ticks, world};

const A: &str = "b3:1111111111111111111111111111111111111111111111111111111111111111";
const B: &str = "b3:2222222222222222222222222222222222222222222222222222222222222222";

fn header(lines: &[&str]) -> String {
    let mut s = String::from("# aos bundle v1\n@object-format=blake3\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s.push('\n');
    s
}

/// Parses `input`; `Ok(n)` expects success with `n` refs, `Err(text)` a failure whose
/// message contains `text`, on line `line` if given.
#[track_caller]
fn check(input: &str, expect: Result<usize, (&str, Option<usize>)>) {
    let got = parse_header(input.as_bytes());
    match (got, expect) {
        (Ok((h, len)), Ok(n)) => {
            assert_eq!(h.refs.len(), n);
            assert_eq!(len, input.len());
            // What parses renders back to the same bytes.
            assert_eq!(h.render(), input.as_bytes());
        }
        (Err(e), Err((text, line))) => {
            assert!(
                e.message.contains(text),
                "{input:?}: expected {text:?}, got {e}"
            );
            if let Some(l) = line {
                assert_eq!(e.line, l, "{input:?}: {e}");
            }
        }
        (got, expect) => panic!("{input:?}: expected {expect:?}, got {got:?}"),
    }
}

#[test]
fn well_formed_headers() {
    check(&header(&[&format!("{A} refs/worlds/a")]), Ok(1));
    check(
        &header(&[
            &format!("-{A}"),
            &format!("-{B}"),
            &format!("{B} refs/checkpoints/a"),
            &format!("{A} refs/worlds/a"),
            &format!("{A} refs/worlds/b"),
        ]),
        Ok(3),
    );
    // Whatever follows the empty line is not the header's business.
    let mut s = header(&[&format!("{A} refs/worlds/a")]);
    let len = s.len();
    s.push_str("aosP\u{1}...");
    assert_eq!(parse_header(s.as_bytes()).unwrap().1, len);
}

#[test]
fn malformed_headers() {
    let r = format!("{A} refs/worlds/a");
    let cases: Vec<(String, &str, Option<usize>)> = vec![
        (String::new(), "the file is empty", Some(1)),
        ("# aos bun".into(), "without an empty line", Some(1)),
        ("GIT".into(), "not an aos bundle", Some(1)),
        (
            "# aos bundle v2\n".into(),
            "unsupported bundle version `v2`",
            Some(1),
        ),
        ("# v3 git bundle\n".into(), "not an aos bundle", Some(1)),
        ("# aos bundle v1\r\n".into(), "not printable ASCII", Some(1)),
        (
            format!("# aos bundle v1\n{r}\n\n"),
            "lacks `@object-format=blake3`",
            Some(3),
        ),
        (
            header(&["@filter=blob:none", &r]),
            "unknown capability `@filter`",
            Some(3),
        ),
        (
            "# aos bundle v1\n@object-format=sha1\n\n".into(),
            "unsupported object format `sha1`",
            Some(2),
        ),
        (
            header(&["@object-format=blake3", &r]),
            "given twice",
            Some(3),
        ),
        (header(&["@object-format", &r]), "`@name=value`", Some(3)),
        (
            header(&["@Object-Format=blake3", &r]),
            "bad capability name",
            Some(3),
        ),
        (
            header(&["@object-format=blake3 x", &r]),
            "no spaces",
            Some(3),
        ),
        (
            header(&[&r, "@object-format=blake3"]),
            "after prerequisites or refs",
            Some(4),
        ),
        (header(&["-b3:xyz", &r]), "bad prerequisite", Some(3)),
        (
            header(&[&format!("-{}", A.to_uppercase()), &r]),
            "bad prerequisite",
            Some(3),
        ),
        (
            header(&[&format!("-{}", &A[3..]), &r]),
            "bad prerequisite",
            Some(3),
        ),
        (
            header(&[&format!("-{B}"), &format!("-{A}"), &r]),
            "ascending",
            Some(4),
        ),
        (
            header(&[&format!("-{A}"), &format!("-{A}"), &r]),
            "given twice",
            Some(4),
        ),
        (
            header(&[&r, &format!("-{A}")]),
            "prerequisite after refs",
            Some(4),
        ),
        (
            header(&[&format!("{A}refs/worlds/a")]),
            "`b3:<64 hex> <ref name>`",
            Some(3),
        ),
        (header(&["b3:12 refs/worlds/a"]), "bad ref target", Some(3)),
        (
            header(&[&format!("{A} refs/worlds/../x")]),
            "invalid ref name",
            Some(3),
        ),
        (
            header(&[&format!("{A} refs/worlds/..")]),
            "invalid ref name",
            Some(3),
        ),
        (
            header(&[&format!("{A} refs/worlds/a b")]),
            "invalid ref name",
            Some(3),
        ),
        (
            header(&[&format!("{A} refs/worlds/a.lock")]),
            "invalid ref name",
            Some(3),
        ),
        (
            header(&[&format!("{A} refs/heads/main")]),
            "cannot be bundled",
            Some(3),
        ),
        (
            header(&[&format!("{A} refs/worlds/a/b")]),
            "cannot be bundled",
            Some(3),
        ),
        (
            header(&[&format!("{A} refs/worldsx/a")]),
            "cannot be bundled",
            Some(3),
        ),
        (
            header(&[&format!("{A} /etc/passwd")]),
            "invalid ref name",
            Some(3),
        ),
        (header(&[&r, &r]), "given twice", Some(4)),
        (
            header(&[&format!("{A} refs/worlds/b"), &r]),
            "ascending order",
            Some(4),
        ),
        (header(&[]), "at least one ref", Some(3)),
        (
            header(&[&format!("{A} refs/checkpoints/b"), &r]),
            "without refs/worlds/b",
            Some(5),
        ),
        (
            header(&[&format!("{A} refs/worlds/a\0")]),
            "not printable",
            Some(3),
        ),
        (
            header(&[&format!("{A} refs/worlds/\u{e9}")]),
            "not printable",
            Some(3),
        ),
        (
            format!(
                "# aos bundle v1\n@object-format=blake3\n{}",
                "x".repeat(2000)
            ),
            "longer than 1024",
            Some(3),
        ),
        (
            format!("# aos bundle v1\n@object-format=blake3\n{r}\n"),
            "without an empty line",
            Some(4),
        ),
        (
            format!("# aos bundle v1\n@object-format=blake3\n{r}"),
            "without an empty line",
            Some(3),
        ),
    ];
    for (input, text, line) in cases {
        check(&input, Err((text, line)));
    }
}

#[test]
fn header_limits() {
    let mut lines: Vec<String> = (0..=MAX_PREREQUISITES as u32)
        .map(|i| format!("-b3:{:064x}", u128::from(i)))
        .collect();
    lines.push(format!("{A} refs/worlds/a"));
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    check(&header(&refs), Err(("more than 65536 prerequisites", None)));
}

#[test]
fn new_headers_sort_and_refuse_what_cannot_be_read() {
    let a: ObjectId = A.parse().unwrap();
    let b: ObjectId = B.parse().unwrap();
    let h = Header::new(
        vec![b, a, b],
        vec![
            (a, RefName::new("refs/worlds/z").unwrap()),
            (b, RefName::new("refs/checkpoints/z").unwrap()),
        ],
    )
    .unwrap();
    assert_eq!(h.prerequisites, vec![a, b]);
    assert_eq!(h.refs[0].1.as_str(), "refs/checkpoints/z");
    assert_eq!(parse_header(&h.render()).unwrap().0, h);
    assert!(Header::new(vec![], vec![(a, RefName::new("refs/heads/x").unwrap())]).is_err());
    assert!(Header::new(vec![], vec![]).is_err());
}

/// A bundle of a small counter world, as bytes, and the store it came from.
fn small_bundle() -> (crate::transfer::tests::TempStore, Vec<u8>) {
    let t = temp_store();
    world(&t.store, "c", "counter", 4);
    ticks(&t.store, "c", 6, true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.bundle");
    let opts = CreateOptions {
        worlds: vec!["c".into()],
        since: vec![],
    };
    let r = create(&t.store, &path, &opts, &NoProgress).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len() as u64, r.bytes);
    assert_eq!(r.header.refs.len(), 2, "world and checkpoint");
    (t, bytes)
}

#[test]
fn round_trip_through_a_file() {
    let (a, bytes) = small_bundle();
    let b = BundleReader::from_bytes("c.bundle", bytes.clone()).unwrap();
    let r = verify(&b, None, &NoProgress).unwrap();
    assert!(r.unchecked_prerequisites.is_empty());
    let dst = temp_store();
    let u = unbundle(&dst.store, &b, &UnbundleOptions::default(), &NoProgress).unwrap();
    assert_eq!(u.write.written, r.checked.objects);
    assert!(u.refs.iter().all(|r| r.change == RefChange::Created));
    for (name, id) in a.store.refs().list("refs/").unwrap() {
        assert_eq!(dst.store.refs().read(&name).unwrap(), Some(id));
    }
    assert!(
        crate::store::fsck::fsck(&dst.store, &NoProgress)
            .unwrap()
            .is_ok()
    );
    // Unbundling again changes nothing.
    let u = unbundle(&dst.store, &b, &UnbundleOptions::default(), &NoProgress).unwrap();
    assert_eq!(u.write.written, 0);
    assert!(u.refs.iter().all(|r| r.change == RefChange::Unchanged));
    // The same store bundles to the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("again.bundle");
    let opts = CreateOptions {
        worlds: vec!["c".into()],
        since: vec![],
    };
    create(&dst.store, &p, &opts, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), bytes);
}

#[test]
fn every_damaged_byte_is_caught_and_nothing_is_stored() {
    let (_a, bytes) = small_bundle();
    let hlen = parse_header(&bytes).unwrap().1;
    let len = bytes.len();
    let mut offsets: Vec<usize> = (0..len).step_by(53).collect();
    offsets.extend([0, hlen - 1, hlen, hlen + 3, hlen + 4, hlen + 8, hlen + 40]);
    offsets.extend([
        hlen + 50,
        len - 73,
        len - 72,
        len - 64,
        len - 33,
        len - 32,
        len - 1,
    ]);
    let dst = temp_store();
    for at in offsets {
        for flip in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[at] ^= flip;
            let Ok(r) = BundleReader::from_bytes("damaged", b) else {
                assert!(at < hlen, "header damage found at {at} only");
                continue;
            };
            let e = verify(&r, None, &NoProgress)
                .expect_err(&format!("flip {flip:#x} at {at} went unnoticed"));
            let msg = e.to_string();
            assert!(
                msg.contains("byte offset") || msg.contains("b3:"),
                "no location in: {msg}"
            );
            assert!(unbundle(&dst.store, &r, &UnbundleOptions::default(), &NoProgress).is_err());
            assert!(dst.store.list_objects().unwrap().is_empty(), "flip at {at}");
        }
    }
    // Truncated anywhere, or with bytes appended.
    for cut in (0..len).step_by(97).chain([len - 1, len - 32, len - 72]) {
        if let Ok(r) = BundleReader::from_bytes("cut", bytes[..cut].to_vec()) {
            assert!(verify(&r, None, &NoProgress).is_err(), "cut at {cut}");
        }
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 40]);
    let r = BundleReader::from_bytes("longer", longer).unwrap();
    assert!(verify(&r, None, &NoProgress).is_err());
    assert!(dst.store.list_objects().unwrap().is_empty());
}
