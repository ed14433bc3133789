//! The keyed example of `examples/worlds/keyed` (`demo/Accounts@1`, one cell per account),
//! written as someone who has read the ABI (docs/reducers.md) but not the SDK would write it:
//! serde types for the envelope, ciborium to read and write CBOR, `Vec` for every buffer.
//!
//! `Deposit {amount}` adds to the balance; `Withdraw {amount}` subtracts if the balance
//! covers it and otherwise leaves it and emits `demo/Overdraft@1`; every operation counts in
//! `ops`; `Close` deletes the cell.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// `demo/Account@1`
#[derive(Serialize, Deserialize, Default, Debug, PartialEq, Eq)]
pub struct Account {
    /// Current balance.
    pub balance: u64,
    /// Operations applied to this account.
    pub ops: u64,
}

/// `demo/AccountOp@1`. AIR writes a unit variant as the map `{"Tag": null}`, which ciborium
/// reads as a variant holding `()`; so `Close` holds one.
#[derive(Deserialize, Debug)]
pub enum Op {
    /// Add `amount`.
    Deposit {
        /// How much.
        amount: u64,
    },
    /// Take `amount` out if the balance covers it.
    Withdraw {
        /// How much.
        amount: u64,
    },
    /// Delete the account.
    Close(()),
}

/// `demo/AccountEvent@1`
#[derive(Deserialize, Debug)]
pub struct AccountEvent {
    /// The account (also the cell key).
    pub account: String,
    /// What to do.
    pub op: Op,
}

/// `demo/Overdraft@1`
#[derive(Serialize, Debug)]
pub struct Overdraft {
    /// The account.
    pub account: String,
    /// The amount asked for.
    pub requested: u64,
    /// The balance, which did not cover it.
    pub balance: u64,
}

#[derive(Deserialize)]
struct Input {
    version: u64,
    state: Option<ByteBuf>,
    event: InEvent,
    ctx: Ctx,
}

#[derive(Deserialize)]
struct InEvent {
    value: ByteBuf,
}

#[derive(Deserialize)]
struct Ctx {
    key: Option<ByteBuf>,
}

#[derive(Serialize)]
struct Output {
    ann: Option<ByteBuf>,
    state: Option<ByteBuf>,
    effects: Vec<Effect>,
    domain_events: Vec<OutEvent>,
}

#[derive(Serialize)]
struct Effect {
    kind: String,
    params_cbor: ByteBuf,
}

#[derive(Serialize)]
struct OutEvent {
    value: ByteBuf,
    schema: String,
}

fn to_cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("CBOR encoding");
    out
}

/// The reducer's logic for the cell of `account`: its new state (or none) and the events it
/// emits.
pub fn reduce(
    state: Option<Account>,
    account: String,
    op: Op,
) -> (Option<Account>, Vec<(String, Vec<u8>)>) {
    let mut acc = state.unwrap_or_default();
    let mut events = Vec::new();
    acc.ops = acc.ops.saturating_add(1);
    match op {
        Op::Deposit { amount } => acc.balance = acc.balance.saturating_add(amount),
        Op::Withdraw { amount } => {
            if let Some(rest) = acc.balance.checked_sub(amount) {
                acc.balance = rest;
            } else {
                let o = Overdraft {
                    account,
                    requested: amount,
                    balance: acc.balance,
                };
                events.push(("demo/Overdraft@1".to_owned(), to_cbor(&o)));
            }
        }
        Op::Close(()) => return (None, events),
    }
    (Some(acc), events)
}

/// One step: the output envelope for the input envelope `input`.
///
/// # Panics
/// On an input that is not the envelope the ABI describes (a panic traps the step).
#[must_use]
pub fn step_bytes(input: &[u8]) -> Vec<u8> {
    let input: Input = ciborium::from_reader(input).expect("input envelope");
    assert_eq!(input.version, 1, "ABI version");
    let state: Option<Account> = input
        .state
        .map(|b| ciborium::from_reader(&b[..]).expect("state"));
    let event: AccountEvent = ciborium::from_reader(&input.event.value[..]).expect("event");
    // In cell mode the key is the account; fall back to the event's field otherwise.
    let account = input
        .ctx
        .key
        .map(|k| ciborium::from_reader::<String, _>(&k[..]).expect("cell key"))
        .unwrap_or(event.account);
    let (state, events) = reduce(state, account, event.op);
    to_cbor(&Output {
        ann: None,
        state: state.map(|s| ByteBuf::from(to_cbor(&s))),
        effects: Vec::new(),
        domain_events: events
            .into_iter()
            .map(|(schema, value)| OutEvent {
                value: ByteBuf::from(value),
                schema,
            })
            .collect(),
    })
}

/// Memory for the host to write into; never freed.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: i32) -> i32 {
    let mut buf = Vec::<u8>::with_capacity(usize::try_from(len).unwrap_or(0));
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr as i32
}

/// The ABI's `step`: reads the input at `ptr`, writes the output's pointer and length at
/// `ret`.
///
/// # Safety
/// The host passes memory it obtained from [`alloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn step(ret: i32, ptr: i32, len: i32) {
    // SAFETY: the host wrote `len` bytes at `ptr`, memory it got from `alloc`.
    let input = unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) };
    let out = step_bytes(input).leak();
    let words = [out.as_ptr() as i32, out.len() as i32];
    // SAFETY: `ret` is 8 bytes from `alloc`, which has no alignment guarantee.
    unsafe {
        std::ptr::write_unaligned(ret as *mut i32, words[0]);
        std::ptr::write_unaligned((ret + 4) as *mut i32, words[1]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overdraft_leaves_the_balance_and_emits_an_event() {
        let (s, ev) = reduce(None, "a".into(), Op::Deposit { amount: 3 });
        assert!(ev.is_empty());
        let (s, ev) = reduce(s, "a".into(), Op::Withdraw { amount: 5 });
        assert_eq!(s, Some(Account { balance: 3, ops: 2 }));
        assert_eq!(ev.len(), 1);
        assert_eq!(reduce(s, "a".into(), Op::Close(())).0, None);
    }
}
