//! Decoding journal entries and snapshots never panics, and whatever decodes re-encodes to the
//! same bytes (a stored entry or snapshot has exactly one encoding).
#![no_main]

use aos::kernel::entry::Entry;
use aos::kernel::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Entry::decode(data) {
        assert_eq!(e.encode().0, data, "an entry has one encoding");
    }
    if let Ok(s) = Snapshot::decode(data) {
        assert_eq!(s.encode().0, data, "a snapshot has one encoding");
    }
});
