//! Bundle parsing never panics on any input: the header parser, the pack stream reader and
//! the object checks behind `verify`. A header that parses renders back to the same bytes.
//!
//! Each input is tried twice: as a whole file, and as the objects of a bundle sealed with a
//! valid header, count and checksums, so the fuzzer reaches the object checks without having
//! to forge BLAKE3 checksums.
#![no_main]

use aos::object::ObjectId;
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
    let name = RefName::new("refs/worlds/f").expect("valid name");
    let header = Header::new(Vec::new(), vec![(ObjectId::from_bytes([7; 32]), name)])
        .expect("valid header")
        .render();
    let mut out = header.clone();
    let pack_start = out.len();
    out.extend_from_slice(b"aosP");
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(body);
    // A plausible count: the first byte of the input, so both agreeing and disagreeing
    // counts are tried.
    let count = u64::from(body.first().copied().unwrap_or(0) % 4);
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
});
