//! Example worlds built into the binary: their AIR and their reducers' WASM (built from
//! `reducers/` in the repository; `reducers/build.sh --check` proves the embedded bytes match
//! a rebuild).

use std::path::Path;

use crate::air::load::{Origin, Problem, load_str};
use crate::air::nodes::Node;

/// An example world.
pub struct Example {
    /// Its name (`aos world new NAME --example ...`).
    pub name: &'static str,
    /// What it shows.
    pub about: &'static str,
    /// Its AIR files: a label and the JSON text.
    pub air: &'static [(&'static str, &'static str)],
    /// Its modules: name and WASM bytes.
    pub wasm: &'static [(&'static str, &'static [u8])],
    /// A few events to try, as `aos send --batch` lines.
    pub sample_events: &'static str,
}

impl Example {
    /// The AIR nodes, loaded.
    ///
    /// # Errors
    /// Every load problem (never, for the embedded examples: the tests load them).
    pub fn nodes(&self) -> Result<Vec<(Node, Origin)>, Vec<Problem>> {
        let mut nodes = Vec::new();
        let mut problems = Vec::new();
        for (label, text) in self.air {
            let l = load_str(Path::new(label), text);
            nodes.extend(l.nodes);
            problems.extend(l.problems);
        }
        if problems.is_empty() {
            Ok(nodes)
        } else {
            Err(problems)
        }
    }

    /// The modules' WASM as owned pairs.
    #[must_use]
    pub fn wasm(&self) -> Vec<(String, Vec<u8>)> {
        self.wasm
            .iter()
            .map(|(n, b)| ((*n).to_owned(), b.to_vec()))
            .collect()
    }
}

/// Every built-in example.
pub const EXAMPLES: &[Example] = &[
    Example {
        name: "counter",
        about: "a counter reducer: Start{target}, Tick, Reset; emits CounterDone at the target",
        air: &[
            (
                "example:counter/manifest.air.json",
                include_str!("../examples/worlds/counter/air/manifest.air.json"),
            ),
            (
                "example:counter/module.air.json",
                include_str!("../examples/worlds/counter/air/module.air.json"),
            ),
            (
                "example:counter/schemas.air.json",
                include_str!("../examples/worlds/counter/air/schemas.air.json"),
            ),
        ],
        wasm: &[(
            "demo/Counter@1",
            include_bytes!("../reducers/wasm/counter.wasm"),
        )],
        sample_events: concat!(
            r#"{"schema":"demo/CounterEvent@1","value":{"Start":{"target":3}}}"#,
            "\n",
            r#"{"schema":"demo/CounterEvent@1","value":"Tick"}"#,
            "\n",
            r#"{"schema":"demo/CounterEvent@1","value":"Tick"}"#,
            "\n",
            r#"{"schema":"demo/CounterEvent@1","value":"Tick"}"#,
            "\n",
        ),
    },
    Example {
        name: "keyed",
        about: "a keyed reducer: one cell per account; deposits, withdrawals, overdrafts, close",
        air: &[
            (
                "example:keyed/manifest.air.json",
                include_str!("../examples/worlds/keyed/air/manifest.air.json"),
            ),
            (
                "example:keyed/module.air.json",
                include_str!("../examples/worlds/keyed/air/module.air.json"),
            ),
            (
                "example:keyed/schemas.air.json",
                include_str!("../examples/worlds/keyed/air/schemas.air.json"),
            ),
        ],
        wasm: &[(
            "demo/Accounts@1",
            include_bytes!("../reducers/wasm/keyed.wasm"),
        )],
        sample_events: concat!(
            r#"{"schema":"demo/AccountEvent@1","value":{"account":"alice","op":{"Deposit":{"amount":10}}}}"#,
            "\n",
            r#"{"schema":"demo/AccountEvent@1","value":{"account":"bob","op":{"Deposit":{"amount":5}}}}"#,
            "\n",
            r#"{"schema":"demo/AccountEvent@1","value":{"account":"alice","op":{"Withdraw":{"amount":3}}}}"#,
            "\n",
            r#"{"schema":"demo/AccountEvent@1","value":{"account":"bob","op":{"Withdraw":{"amount":9}}}}"#,
            "\n",
        ),
    },
];

/// The example named `name`.
#[must_use]
pub fn example(name: &str) -> Option<&'static Example> {
    EXAMPLES.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_load_and_validate() {
        for e in EXAMPLES {
            let nodes = e.nodes().unwrap_or_else(|p| panic!("{}: {p:?}", e.name));
            assert!(!nodes.is_empty());
            assert!(!e.wasm.is_empty());
        }
    }
}
