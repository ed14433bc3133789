//! Decoding a reducer's output envelope never panics, on any bytes.
#![no_main]

use aos::kernel::envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = envelope::decode_output(data) {
        assert!(out.domain_events.iter().all(|e| !e.schema.is_empty()));
        assert!(out.effects.iter().all(|e| !e.kind.is_empty()));
    }
});
