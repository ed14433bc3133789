//! Bundle parsing never panics on any input: the header parser, the pack stream reader and
//! the object checks behind `verify`. A header that parses renders back to the same bytes.
//!
//! Each input is tried three times: as a whole file; as the objects section of a bundle sealed
//! with a valid header, count and checksums; and as one object (a kind code, then the
//! payload) with its true id in such a bundle. So the fuzzer reaches the object checks, and
//! the entry, snapshot and map node decoders behind them, without forging BLAKE3 hashes.
#![no_main]

use aos::object::{Kind, ObjectId, hash};
use aos::progress::NoProgress;
use aos::store::refs::RefName;
use aos::transfer::bundle::{BundleReader, Header, parse_header, verify};
use libfuzzer_sys::fuzz_target;

fn check(bytes: Vec<u8>) {
    if let Ok((h, len)) = parse_header(&bytes) {
        assert_eq!(h.render(), bytes[..len], "an accepted header has one encoding");
    }
    if let Ok(b) = BundleReader::from_bytes("fuzz", bytes) {
        let _ = verify(&b, None, &NoProgress);
    }
}

fn sealed(body: &[u8]) -> Vec<u8> {
    sealed_with(ObjectId::from_bytes([7; 32]), body)
}

/// One object with its true id, and a world ref to it.
fn one_object(data: &[u8]) -> Option<Vec<u8>> {
    let (&code, payload) = data.split_first()?;
    let kind = Kind::from_code(code % 8)?;
    let id = hash(kind, payload);
    let mut body = Vec::with_capacity(payload.len() + 50);
    body.extend_from_slice(id.as_bytes());
    body.push(kind.code());
    body.push(0);
    body.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    body.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    body.extend_from_slice(payload);
    Some(sealed_with(id, &body))
}

fn sealed_with(target: ObjectId, body: &[u8]) -> Vec<u8> {
    let name = RefName::new("refs/worlds/f").expect("valid name");
    let header = Header::new(Vec::new(), vec![(target, name)])
        .expect("valid header")
        .render();
    let mut out = header;
    let pack_start = out.len();
    out.extend_from_slice(b"aosP");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(body);
    // A plausible count: 1, so both agreeing and disagreeing counts are tried.
    let count = 1u64;
    out.extend_from_slice(&count.to_le_bytes());
    let c = *blake3::hash(&out[pack_start..]).as_bytes();
    out.extend_from_slice(&c);
    let sum = *blake3::hash(&out).as_bytes();
    out.extend_from_slice(&sum);
    out
}

fuzz_target!(|data: &[u8]| {
    check(data.to_vec());
    check(sealed(data));
    if let Some(b) = one_object(data) {
        check(b);
    }
});
