//! Library errors as the command line shows them: the message (the error's cause chain), a
//! hint that may name commands and flags, and the exit code.
//!
//! Exit codes: 1 for a failure caused by the input or the data, 2 for a usage error (an
//! argument of the wrong form), 255 for a fault of `aos` itself. The library never names a
//! flag; every hint that does is written here, chosen by the error's variant.

use std::io;

use aos::kernel::{InputError, ModuleError, WorldError};
use aos::remote::RemoteError;
use aos::store::StoreError;
use aos::store::refs::RefError;
use aos::transfer::TransferError;
use aos::world::refs::WorldRefError;

pub(crate) use aos::error_chain as chain;

/// A failed command: what to print and how to exit.
#[derive(Debug)]
pub struct CliError {
    /// The message (the cause chain is appended when rendering).
    pub message: String,
    /// A suggestion for what to do.
    pub hint: Option<String>,
    /// The exit code.
    pub code: u8,
}

/// Exit code of a fault of `aos` itself.
pub const INTERNAL: u8 = 255;

impl CliError {
    /// A failure caused by the user's input or the data (exit 1).
    pub fn user(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code: 1,
        }
    }

    /// A usage error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code: 2,
        }
    }

    /// A fault of `aos` itself (exit 255).
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: Some(BUG.to_owned()),
            code: INTERNAL,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A failure already reported on stdout (e.g. fsck problems): exit 1, print nothing more.
    pub fn silent() -> Self {
        Self {
            message: String::new(),
            hint: None,
            code: 1,
        }
    }

    /// `error`'s cause chain, the hint `hint` chose, exit 1.
    fn of(error: &dyn std::error::Error, hint: Option<String>) -> Self {
        Self {
            message: chain(error),
            hint,
            code: 1,
        }
    }

    fn code(mut self, code: u8) -> Self {
        self.code = code;
        if code == INTERNAL && self.hint.is_none() {
            self.hint = Some(BUG.to_owned());
        }
        self
    }
}

const BUG: &str = "this is a fault of aos itself, not of the input: please report it";

const FSCK: &str = "run `aos fsck` to check the whole store";

fn store_hint(e: &StoreError) -> Option<String> {
    Some(
        match e {
            StoreError::Corrupt { .. } => FSCK,
            StoreError::Ambiguous { .. } => "give more hex digits of the id",
            StoreError::NoStore { .. } => {
                "`aos init` makes a store here; -C DIR or --aos-dir PATH names another"
            }
            _ => return None,
        }
        .to_owned(),
    )
}

fn ref_hint(e: &RefError) -> Option<String> {
    match e {
        RefError::CorruptTransaction { .. } => Some(
            "run `aos fsck`; if the record is damaged beyond use, compare the refs it names with \
             their reflogs and remove it"
                .to_owned(),
        ),
        _ => None,
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        Self::of(&e, store_hint(&e))
    }
}

impl From<RefError> for CliError {
    fn from(e: RefError) -> Self {
        Self::of(&e, ref_hint(&e))
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            // The reader went away (`aos ... | head`): stop quietly, successfully.
            return Self {
                message: String::new(),
                hint: None,
                code: 0,
            };
        }
        Self::user(e.to_string())
    }
}

fn input_hint(e: &InputError) -> Option<String> {
    Some(match e {
        InputError::KeyNotRouted { .. } => {
            "leave out --key: only events routed to a keyed reducer take one".to_owned()
        }
        InputError::KeyNeeded { .. } => {
            "give the cell's key with --key JSON, or list the keys with --keys".to_owned()
        }
        InputError::NotKeyed { .. } => {
            "a reducer that is not keyed has one state: leave out --key and --keys".to_owned()
        }
        InputError::Key { .. } => {
            "--key is JSON that fits the reducer's key schema (sugar or tagged lens)".to_owned()
        }
        InputError::KeyMismatch { field, .. } => {
            format!("--key must equal the event's `{field}`; or leave it out")
        }
        InputError::BeyondHead { head, .. } => {
            format!("the world's heights run from 0 to {head}")
        }
        InputError::Revision { .. } => {
            "a revision is WORLD, WORLD@HEIGHT, WORLD@b3:ID or b3:ID (8 or more hex digits)"
                .to_owned()
        }
        InputError::NotEntry { .. } => "`aos cat-object ID` shows any object".to_owned(),
        InputError::UnknownModule { .. } => {
            "--wasm NAME=FILE must name a defmodule of the control plane".to_owned()
        }
        InputError::BadId { .. } => format!(
            "an idempotency key is 1 to {} bytes of text without control characters",
            aos::kernel::input::MAX_ID_BYTES
        ),
        InputError::IdReused { height, .. } => {
            format!("`aos show WORLD@{height}` shows the event the key names")
        }
        InputError::NoFuel => "give --fuel a value of at least 1".to_owned(),
        InputError::WorldName { .. } => {
            "a world name is one segment of a ref name: no `/`, spaces or control characters"
                .to_owned()
        }
        InputError::SchemaName { .. }
        | InputError::NoSchema { .. }
        | InputError::Value { .. }
        | InputError::NoReducer { .. }
        | InputError::NotInHistory { .. }
        | InputError::ForeignSnapshot { .. } => return None,
    })
}

impl From<WorldError> for CliError {
    fn from(e: WorldError) -> Self {
        match e {
            WorldError::Air(diags) => {
                let mut msg = String::from("the control plane does not validate:");
                for d in &diags {
                    msg.push_str("\n  ");
                    msg.push_str(&d.to_string());
                }
                CliError::user(msg)
            }
            WorldError::Store(s) => CliError::from(s),
            WorldError::Ref(r) => CliError::from(r),
            WorldError::Diverged(d) => CliError::user(d.to_string()),
            WorldError::NoWorld(_) => CliError::of(
                &e,
                Some("`aos world list` shows the worlds of this store".to_owned()),
            ),
            WorldError::Input(ref i) => {
                let code = if matches!(i, InputError::Revision { .. }) {
                    2
                } else {
                    1
                };
                CliError::of(&e, input_hint(i)).code(code)
            }
            WorldError::Module(
                ModuleError::NoWasm { ref module } | ModuleError::MissingBlob { ref module, .. },
            ) => {
                let hint = format!("give its WASM with --wasm {module}=FILE");
                CliError::of(&e, Some(hint))
            }
            WorldError::Moved(_) => CliError::of(
                &e,
                Some(
                    "nothing this command appended after its last acknowledgement is part of the \
                     world; run it again for what was not acknowledged"
                        .to_owned(),
                ),
            ),
            WorldError::Internal(_) => CliError::of(&e, None).code(INTERNAL),
            WorldError::Corrupt { .. } | WorldError::Chain { .. } => {
                CliError::of(&e, Some(FSCK.to_owned()))
            }
            other => CliError::of(&other, None),
        }
    }
}

impl From<WorldRefError> for CliError {
    fn from(e: WorldRefError) -> Self {
        CliError::from(WorldError::from(e))
    }
}

impl From<TransferError> for CliError {
    fn from(e: TransferError) -> Self {
        let e = match e {
            TransferError::World(w) => return CliError::from(*w),
            other => other,
        };
        let hint = match &e {
            TransferError::NotFastForward { .. } => Some(
                "`aos bundle unbundle --force FILE` replaces the world's head (the old one stays in \
                 the reflog)"
                    .to_owned(),
            ),
            TransferError::MissingPrerequisites { .. } => Some(
                "unbundle the bundle those entries came from first, or ask for a bundle without \
                 --since"
                    .to_owned(),
            ),
            TransferError::SinceNotEntry { .. } | TransferError::SinceNotAncestor { .. } => Some(
                "--since takes the id of an entry the receiver has, in the history of a bundled \
                 world"
                    .to_owned(),
            ),
            TransferError::Store(s) => store_hint(s),
            TransferError::Ref(r) => ref_hint(r),
            TransferError::Missing { .. } => Some(FSCK.to_owned()),
            TransferError::Internal(_) => return CliError::of(&e, None).code(INTERNAL),
            _ => None,
        };
        CliError::of(&e, hint)
    }
}

impl From<RemoteError> for CliError {
    fn from(e: RemoteError) -> Self {
        let e = match e {
            RemoteError::Transfer(t) => return CliError::from(*t),
            RemoteError::World(w) => return CliError::from(*w),
            RemoteError::Store(s) => return CliError::from(*s),
            other => other,
        };
        let hint = match &e {
            RemoteError::NoRemote(_) => Some("`aos remote list` shows the remotes".to_owned()),
            RemoteError::Diverged {
                world, remote_head, ..
            } => Some(format!(
                "`aos diff {world} {remote_head}` shows how; to keep the local version, \
                 `aos fork {world} OTHER-NAME` first; --force replaces it"
            )),
            RemoteError::StaleLease { remote, .. } => {
                Some(format!("run `aos fetch {remote}` and try again"))
            }
            RemoteError::NotFastForward { .. } => {
                Some("pull first, or replace the remote world with --force".to_owned())
            }
            RemoteError::Ref(r) => ref_hint(r),
            _ => None,
        };
        CliError::of(&e, hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aos::kernel::RevisionProblem;

    #[test]
    fn exit_codes_follow_the_variant() {
        let internal = CliError::from(WorldError::Internal("a worker panicked"));
        assert_eq!(internal.code, INTERNAL);
        assert_eq!(internal.message, "internal error: a worker panicked");
        assert_eq!(internal.hint.as_deref(), Some(BUG));

        let rev = CliError::from(WorldError::from(InputError::Revision {
            spec: "w@x".into(),
            problem: RevisionProblem::NotHeightOrId("x".into()),
        }));
        assert_eq!(rev.code, 2);
        assert!(rev.hint.is_some_and(|h| h.contains("WORLD@HEIGHT")));

        let none = CliError::from(WorldError::NoWorld("w".into()));
        assert_eq!(
            (none.code, none.message.as_str()),
            (1, "no world named `w`")
        );
        assert!(none.hint.is_some_and(|h| h.contains("aos world list")));

        let t = CliError::from(TransferError::Internal("the writer panicked".into()));
        assert_eq!(t.code, INTERNAL);
    }

    #[test]
    fn boxed_errors_keep_their_hints() {
        // A world error inside a remote error gets the world error's hint and code.
        let e = CliError::from(RemoteError::World(Box::new(WorldError::from(
            InputError::NoFuel,
        ))));
        assert_eq!(e.code, 1);
        assert_eq!(e.hint.as_deref(), Some("give --fuel a value of at least 1"));
        let e = CliError::from(TransferError::World(Box::new(WorldError::Internal("x"))));
        assert_eq!(e.code, INTERNAL);
    }
}
