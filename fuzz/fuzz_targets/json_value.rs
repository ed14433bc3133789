//! Any JSON the mapping accepts must give a value that encodes to valid canonical CBOR and
//! renders back to JSON that parses to the same value.
#![no_main]

use aos::codec::{cbor, json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(v) = json::from_json(text) {
        let bytes = cbor::encode(&v);
        assert_eq!(cbor::decode(&bytes).as_ref(), Ok(&v));
        assert_eq!(json::from_json(&json::to_json(&v)).ok(), Some(v.clone()));
        assert_eq!(json::from_json(&json::to_json_pretty(&v)).ok(), Some(v));
    }
});
