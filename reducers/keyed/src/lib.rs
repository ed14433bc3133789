//! The keyed example (`demo/Accounts@1`, world `examples/worlds/keyed`): one cell per
//! account, keyed by `demo/AccountId@1` (text).
//!
//! `Deposit {amount}` adds to the balance; `Withdraw {amount}` subtracts if the balance
//! covers it and otherwise leaves it and emits `demo/Overdraft@1`; every operation counts in
//! `ops`; `Close` deletes the cell.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::string::String;

use aos_reducer::{Context, Output, Reducer, aos_reducer};
use serde::{Deserialize, Serialize};

/// `demo/Account@1` = record {balance: nat, ops: nat}
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Account {
    /// Current balance.
    pub balance: u64,
    /// Operations applied to this account.
    pub ops: u64,
}

/// `demo/AccountOp@1` = variant {Deposit: record {amount: nat}, Withdraw: record {amount: nat}, Close: unit}
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
    Close,
}

/// `demo/AccountEvent@1` = record {account: ref demo/AccountId@1, op: ref demo/AccountOp@1}
#[derive(Deserialize, Debug)]
pub struct AccountEvent {
    /// The account (also the cell key, via `key_field: "account"`).
    pub account: String,
    /// What to do.
    pub op: Op,
}

/// `demo/Overdraft@1` = record {account: text, requested: nat, balance: nat}
#[derive(Serialize, Debug)]
pub struct Overdraft<'a> {
    /// The account.
    pub account: &'a str,
    /// The amount asked for.
    pub requested: u64,
    /// The balance, which did not cover it.
    pub balance: u64,
}

/// The reducer.
pub struct Accounts;

impl Reducer for Accounts {
    type State = Account;
    type Event = AccountEvent;

    fn step(
        state: Option<Account>,
        event: AccountEvent,
        ctx: &Context,
        out: &mut Output,
    ) -> Option<Account> {
        let mut acc = state.unwrap_or_default();
        // In cell mode the key is the account; fall back to the event's field otherwise.
        let account = ctx.key::<String>().unwrap_or(event.account);
        acc.ops = acc.ops.saturating_add(1);
        match event.op {
            Op::Deposit { amount } => acc.balance = acc.balance.saturating_add(amount),
            Op::Withdraw { amount } => {
                if let Some(rest) = acc.balance.checked_sub(amount) {
                    acc.balance = rest;
                } else {
                    out.emit_event(
                        "demo/Overdraft@1",
                        &Overdraft {
                            account: &account,
                            requested: amount,
                            balance: acc.balance,
                        },
                    );
                }
            }
            Op::Close => return None,
        }
        Some(acc)
    }
}

aos_reducer!(Accounts);

#[cfg(test)]
mod tests {
    use aos_reducer::{Context, Output, Reducer, from_cbor, to_cbor};

    use super::{Account, AccountEvent, Accounts, Op};

    #[test]
    fn overdraft_leaves_balance_and_emits_event() {
        let ctx = Context::new("demo/AccountEvent@1").with_key("alice");
        let mut out = Output::default();
        let event = AccountEvent {
            account: "alice".into(),
            op: Op::Withdraw { amount: 5 },
        };
        let state = Some(Account { balance: 3, ops: 1 });
        let next = Accounts::step(state, event, &ctx, &mut out).unwrap();
        assert_eq!((next.balance, next.ops), (3, 2));
        let events: Vec<_> = out.events().collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, "demo/Overdraft@1");
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct Seen {
            account: String,
            requested: u64,
            balance: u64,
        }
        assert_eq!(
            from_cbor::<Seen>(events[0].1),
            Ok(Seen {
                account: "alice".into(),
                requested: 5,
                balance: 3
            })
        );
        assert_eq!(to_cbor("alice"), ctx.key_bytes().unwrap());
    }
}
