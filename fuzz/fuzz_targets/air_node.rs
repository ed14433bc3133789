//! The AIR loader never panics, and every node it accepts renders back to JSON that parses to
//! the same node.
#![no_main]

use aos::air::load::load_str;
use aos::air::nodes::Node;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let loaded = load_str(std::path::Path::new("fuzz.json"), text);
    for (node, _) in loaded.nodes {
        let again = Node::from_json(&node.to_json()).expect("a rendered node parses");
        assert_eq!(again, node);
    }
});
