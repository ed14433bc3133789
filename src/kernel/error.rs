//! Errors of world operations.

use crate::air::validate::Diagnostic;
use crate::kernel::input::IntentId;
use crate::kernel::mapnode::MapError;
use crate::object::ObjectId;
use crate::store::StoreError;
use crate::store::refs::RefError;

/// Where a replay first disagrees with the recorded history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Height of the first entry that differs.
    pub height: u64,
    /// The recorded entry at that height (`None` if the journal ends there).
    pub recorded: Option<ObjectId>,
    /// The entry the replay produced there (`None` if it produced nothing).
    pub replayed: Option<ObjectId>,
    /// The reducer concerned, when one is.
    pub reducer: Option<String>,
    /// The cell concerned, as JSON text, for a keyed reducer.
    pub cell: Option<String>,
    /// What differs: expected (recorded) versus actual (replayed).
    pub detail: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "divergence at height {}", self.height)?;
        if let Some(r) = &self.recorded {
            write!(f, " (entry {r})")?;
        }
        if let Some(r) = &self.reducer {
            write!(f, ", reducer {r}")?;
        }
        if let Some(c) = &self.cell {
            write!(f, ", cell {c}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What a manifest switch would change about a reducer that holds state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateChange {
    /// The type of its state (its state schema, or a schema that one refers to).
    StateType,
    /// Whether it is keyed, or the type of its keys.
    Keys,
}

impl std::fmt::Display for StateChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::StateType => "the type of its state",
            Self::Keys => "its keys (keyed or not, or the key type)",
        })
    }
}

/// Why the kernel refused an input. A refused input appends nothing and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A receipt answers an intent that is not pending. Intents get ids and wait for
    /// receipts only once effects are dispatched (issue 14); until then no intent is ever
    /// pending, and every receipt is refused this way.
    #[error("no pending intent has id {intent}")]
    NoPendingIntent {
        /// The intent the receipt names.
        intent: IntentId,
    },
    /// The switch names the manifest the world already runs.
    #[error("the world runs manifest {manifest} already")]
    SameManifest {
        /// The manifest.
        manifest: ObjectId,
    },
    /// The switch would change the state type or the keys of a reducer that holds state.
    #[error(
        "switching to manifest {manifest} would change {change} of reducer {reducer}, which \
         holds state"
    )]
    StateChange {
        /// The manifest switched to.
        manifest: ObjectId,
        /// The reducer.
        reducer: String,
        /// What would change.
        change: StateChange,
    },
}

/// Why a world operation failed. Nothing already stored is changed by a failed operation
/// beyond objects that no ref reaches (which `gc` removes).
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// Reading or writing the store failed, or an object is damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or moving a ref failed.
    #[error(transparent)]
    Ref(#[from] RefError),
    /// A cell map is damaged.
    #[error(transparent)]
    Map(#[from] MapError),
    /// No world has this name.
    #[error("no world named `{0}`")]
    NoWorld(String),
    /// A world of this name exists already.
    #[error("a world named `{0}` exists already")]
    Exists(String),
    /// The input does not fit the world (an unknown schema or reducer, a value that does not
    /// fit its schema, a bad option); nothing was appended.
    #[error("{0}")]
    Input(String),
    /// The kernel refused the input; nothing was appended.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The control plane does not validate.
    #[error("the control plane has {} problem(s)", .0.len())]
    Air(Vec<Diagnostic>),
    /// A module is missing or cannot be compiled.
    #[error("{0}")]
    Module(String),
    /// A stored object is not what the history says it is.
    #[error("object {id}: {message}")]
    Corrupt {
        /// The object.
        id: ObjectId,
        /// What is wrong.
        message: String,
    },
    /// The journal is not a chain (a bad height or predecessor).
    #[error("journal broken at height {height}: {message}")]
    Chain {
        /// The height concerned.
        height: u64,
        /// What is wrong.
        message: String,
    },
    /// Another process moved the world while this one appended to it; nothing this process
    /// appended after its last acknowledgement is part of the world.
    #[error("world `{0}` was changed by another process; run the command again")]
    Moved(String),
    /// Replaying the history does not reproduce it.
    #[error("{0}")]
    Diverged(Box<Divergence>),
    /// The replay reached the end of the requested history (internal to bounded replays).
    #[error("end of the requested history")]
    End,
}

impl WorldError {
    pub(crate) fn corrupt(id: ObjectId, message: impl Into<String>) -> Self {
        Self::Corrupt {
            id,
            message: message.into(),
        }
    }
}
