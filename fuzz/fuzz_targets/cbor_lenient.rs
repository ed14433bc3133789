//! The lenient decoder never panics, and whatever it accepts is a value of the data model:
//! its canonical encoding decodes strictly back to the same value.
#![no_main]

use aos::codec::cbor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match cbor::decode_lenient(data) {
        Ok(v) => {
            let canonical = cbor::encode(&v);
            assert_eq!(cbor::decode(&canonical), Ok(v), "lenient value does not round-trip");
            // Canonical input is accepted identically by both decoders.
            assert_eq!(cbor::decode_lenient(&canonical), cbor::decode(&canonical));
        }
        Err(e) => assert!(e.offset <= data.len()),
    }
});
