//! Any input the strict decoder accepts must re-encode to itself, and the three decoding
//! paths (build, validate, collect links) must agree.
#![no_main]

use aos::codec::cbor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = cbor::decode(data);
    assert_eq!(cbor::validate(data), decoded.as_ref().map(|_| ()).map_err(|e| *e));
    match decoded {
        Ok(v) => {
            assert_eq!(cbor::encode(&v), data, "accepted input is not canonical");
            assert!(cbor::links(data).is_ok());
        }
        Err(e) => {
            assert!(e.offset <= data.len());
            assert!(cbor::links(data).is_err());
        }
    }
});
