//! Helpers for world tests: library-level worlds in temporary stores, and models of the
//! example reducers' semantics.

#![allow(clippy::unwrap_used, dead_code)] // Tests fail loudly by design; not every test uses every helper.

use std::collections::BTreeMap;

use aos::codec::json::{self, parse_json};
use aos::kernel::machine::EventIn;
use aos::store::Store;
use aos::world::{CreateOptions, World, create_world};

/// A temporary store.
pub struct TempStore {
    pub dir: tempfile::TempDir,
    pub store: Store,
}

impl TempStore {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::init(dir.path()).unwrap();
        Self { dir, store }
    }

    /// Creates world `name` from a built-in example.
    pub fn example_world(&self, name: &str, example: &str, snapshot_every: u64) {
        let e = aos::examples::example(example).unwrap();
        let opts = CreateOptions {
            snapshot_every,
            ..CreateOptions::default()
        };
        create_world(&self.store, name, e.nodes().unwrap(), &e.wasm(), &opts).unwrap();
    }

    pub fn open(&self, name: &str) -> World<'_> {
        World::open(&self.store, name).unwrap()
    }
}

/// A counter event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CEv {
    Start(u64),
    Tick,
    Reset,
}

impl CEv {
    pub fn json(&self) -> String {
        match self {
            Self::Start(t) => format!(r#"{{"Start":{{"target":{t}}}}}"#),
            Self::Tick => r#""Tick""#.to_owned(),
            Self::Reset => r#""Reset""#.to_owned(),
        }
    }
    pub fn parse(&self, w: &World<'_>) -> EventIn {
        w.parse_event(
            "demo/CounterEvent@1",
            &parse_json(&self.json()).unwrap(),
            None,
        )
        .unwrap()
    }
}

/// The counter's state: (counting, count, target).
pub type CState = Option<(bool, u64, u64)>;

/// The rendering `json::to_json` gives a counter state.
pub fn counter_json(s: &CState) -> Option<serde_json::Value> {
    s.map(|(counting, count, target)| {
        let pc = if counting { "Counting" } else { "Idle" };
        serde_json::json!({"pc": {pc: null}, "count": count, "target": target})
    })
}

/// A model of journal heights: the state after every height, markers included.
pub struct Journal<S> {
    /// `states[h]`: the model state right after the entry at height `h`.
    pub states: Vec<S>,
    pub last_marker: u64,
    pub snapshot_every: u64,
    pub ingress: u64,
    pub derived: u64,
    pub markers: u64,
}

impl<S: Clone> Journal<S> {
    pub fn new(genesis: S, snapshot_every: u64) -> Self {
        Self {
            states: vec![genesis],
            last_marker: 0,
            snapshot_every,
            ingress: 0,
            derived: 0,
            markers: 0,
        }
    }
    pub fn height(&self) -> u64 {
        self.states.len() as u64 - 1
    }
    pub fn state(&self) -> &S {
        self.states.last().unwrap()
    }
    /// Records one ingress event leading to `next` and deriving `derived` events.
    pub fn ingest(&mut self, next: S, derived: u64) {
        self.ingress += 1;
        self.states.push(next.clone());
        for _ in 0..derived {
            self.derived += 1;
            self.states.push(next.clone());
        }
        if self.snapshot_every > 0 && self.height() - self.last_marker >= self.snapshot_every {
            self.mark();
        }
    }
    /// A snapshot marker.
    pub fn mark(&mut self) {
        let s = self.state().clone();
        self.states.push(s);
        self.markers += 1;
        self.last_marker = self.height();
    }
}

/// The counter's semantics: the next state and the number of derived events.
pub fn counter_step(s: CState, e: CEv) -> (CState, u64) {
    match e {
        CEv::Start(t) => (Some((true, 0, t)), 0),
        CEv::Tick => {
            let (counting, count, target) = s.unwrap_or((false, 0, 0));
            let count = count.saturating_add(1);
            if counting && count >= target {
                (Some((false, count, target)), 1)
            } else {
                (Some((counting, count, target)), 0)
            }
        }
        CEv::Reset => (None, 0),
    }
}

pub fn counter_model(events: &[CEv], snapshot_every: u64) -> Journal<CState> {
    let mut j = Journal::new(None, snapshot_every);
    for e in events {
        let (n, d) = counter_step(*j.state(), *e);
        j.ingest(n, d);
    }
    j
}

/// A keyed event: account index and op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Deposit(u64),
    Withdraw(u64),
    Close,
}

pub const ACCOUNTS: [&str; 3] = ["alice", "bob", "carol"];

pub type KState = BTreeMap<String, (u64, u64)>;

pub fn keyed_json(account: usize, op: Op) -> String {
    let op = match op {
        Op::Deposit(a) => format!(r#"{{"Deposit":{{"amount":{a}}}}}"#),
        Op::Withdraw(a) => format!(r#"{{"Withdraw":{{"amount":{a}}}}}"#),
        Op::Close => r#""Close""#.to_owned(),
    };
    format!(r#"{{"account":"{}","op":{op}}}"#, ACCOUNTS[account])
}

pub fn keyed_parse(w: &World<'_>, account: usize, op: Op, with_key: bool) -> EventIn {
    let key = parse_json(&format!("\"{}\"", ACCOUNTS[account])).unwrap();
    w.parse_event(
        "demo/AccountEvent@1",
        &parse_json(&keyed_json(account, op)).unwrap(),
        with_key.then_some(&key),
    )
    .unwrap()
}

pub fn keyed_step(s: &KState, account: usize, op: Op) -> (KState, u64) {
    let mut s = s.clone();
    let name = ACCOUNTS[account].to_owned();
    let (mut balance, mut ops) = s.get(&name).copied().unwrap_or((0, 0));
    ops += 1;
    let mut derived = 0;
    match op {
        Op::Deposit(a) => balance += a,
        Op::Withdraw(a) => {
            if a <= balance {
                balance -= a;
            } else {
                derived = 1;
            }
        }
        Op::Close => {
            s.remove(&name);
            return (s, 0);
        }
    }
    s.insert(name, (balance, ops));
    (s, derived)
}

pub fn keyed_model(events: &[(usize, Op)], snapshot_every: u64) -> Journal<KState> {
    let mut j = Journal::new(KState::new(), snapshot_every);
    for (a, op) in events {
        let (n, d) = keyed_step(j.state(), *a, *op);
        j.ingest(n, d);
    }
    j
}

/// The state of a plain reducer as rendered JSON.
pub fn plain_state(w: &World<'_>, reducer: &str) -> Option<serde_json::Value> {
    w.state(reducer, None)
        .unwrap()
        .state
        .map(|v| serde_json::from_str(&json::to_json(&v)).unwrap())
}

/// Every cell of the keyed example as a model state.
pub fn keyed_state(w: &World<'_>) -> KState {
    let mut out = KState::new();
    for (k, _) in w.keys("demo/Accounts@1").unwrap() {
        let key: String = serde_json::from_str(&json::to_json(&k)).unwrap();
        let kj = parse_json(&format!("\"{key}\"")).unwrap();
        let v = w
            .state("demo/Accounts@1", Some(&kj))
            .unwrap()
            .state
            .expect("a listed cell has a state");
        let j: serde_json::Value = serde_json::from_str(&json::to_json(&v)).unwrap();
        out.insert(
            key,
            (j["balance"].as_u64().unwrap(), j["ops"].as_u64().unwrap()),
        );
    }
    out
}
