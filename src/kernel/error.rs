//! Errors of world operations.

use crate::air::name::NameError;
use crate::air::validate::Diagnostic;
use crate::air::value::ValueError;
use crate::kernel::input::IntentId;
use crate::kernel::mapnode::MapError;
use crate::object::{IdError, Kind, ObjectId};
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
    /// fit its schema, a revision that names nothing); nothing was appended.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The kernel refused the input; nothing was appended.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The control plane does not validate.
    #[error("the control plane has {} problem(s)", .0.len())]
    Air(Vec<Diagnostic>),
    /// A module is missing or cannot be compiled.
    #[error(transparent)]
    Module(#[from] ModuleError),
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
    #[error("world `{0}` was changed by another process meanwhile")]
    Moved(String),
    /// Replaying the history does not reproduce it.
    #[error("{0}")]
    Diverged(Box<Divergence>),
    /// A snapshot does not fit the world that is to load it (other reducers, other cells).
    #[error("snapshot does not fit the world: {0}")]
    SnapshotMismatch(String),
    /// The replay reached the end of the requested history (internal to bounded replays).
    #[error("end of the requested history")]
    End,
    /// A fault of `aos` itself, not of the input or the data (a worker thread that panicked,
    /// a broken internal promise). Nothing was appended.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl WorldError {
    pub(crate) fn corrupt(id: ObjectId, message: impl Into<String>) -> Self {
        Self::Corrupt {
            id,
            message: message.into(),
        }
    }
}

/// Why an input does not fit the world. Nothing was appended.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The text is not a schema name.
    #[error("invalid schema name `{schema}`: {source}")]
    SchemaName {
        /// The text given.
        schema: String,
        /// What is wrong with it.
        source: NameError,
    },
    /// The world has no schema of that name.
    #[error("the world has no schema `{schema}`")]
    NoSchema {
        /// The schema asked for.
        schema: String,
    },
    /// An event value does not fit its schema.
    #[error("{schema}: {source}")]
    Value {
        /// The event's schema.
        schema: String,
        /// Where and how it does not fit.
        source: ValueError,
    },
    /// The world has no reducer of that name.
    #[error("the world has no reducer `{reducer}`")]
    NoReducer {
        /// The reducer asked for.
        reducer: String,
    },
    /// A cell key was given where no keyed reducer takes one.
    #[error("a key was given, but no keyed reducer receives {schema}")]
    KeyNotRouted {
        /// The event's schema.
        schema: String,
    },
    /// A reducer is keyed and the operation needs the key of one of its cells.
    #[error("{reducer} is keyed: the key of one of its cells is needed")]
    KeyNeeded {
        /// The reducer.
        reducer: String,
    },
    /// A reducer is not keyed, and a key was given for it, or its cells were asked for.
    #[error("{reducer} is not keyed")]
    NotKeyed {
        /// The reducer.
        reducer: String,
    },
    /// A cell key does not fit the reducer's key schema.
    #[error("key for {reducer}: {source}")]
    Key {
        /// The keyed reducer.
        reducer: String,
        /// Where and how it does not fit.
        source: ValueError,
    },
    /// The key given is not the one the event carries in a keyed route's key field.
    #[error("the key given does not match the event's `{field}` (the key of {reducer})")]
    KeyMismatch {
        /// The key field, as a dotted path.
        field: String,
        /// The keyed reducer it routes to.
        reducer: String,
    },
    /// Text given as an idempotency key is not one.
    #[error("idempotency key {:?}: {problem}", crate::codec::quote::bounded(id))]
    BadId {
        /// The text given.
        id: String,
        /// What is wrong with it.
        problem: crate::kernel::entry::IdProblem,
    },
    /// An idempotency key already names another event within the window.
    #[error(
        "idempotency key `{id}` already names a different event, at height {height}: a retry \
         sends the same event, and a new event needs a new key"
    )]
    IdReused {
        /// The key.
        id: String,
        /// The height of the event it names.
        height: u64,
    },
    /// A height above the world's head.
    #[error("height {height} is beyond the head (height {head})")]
    BeyondHead {
        /// The height asked for.
        height: u64,
        /// The head's height.
        head: u64,
    },
    /// A revision that cannot be parsed.
    #[error("`{spec}`: {problem}")]
    Revision {
        /// The text given.
        spec: String,
        /// What is wrong with it.
        problem: RevisionProblem,
    },
    /// An id that names an object other than a journal entry, where an entry is needed.
    #[error("{id} is {} object, not a journal entry", a_kind(*kind))]
    NotEntry {
        /// The object.
        id: ObjectId,
        /// Its kind.
        kind: Kind,
    },
    /// An entry that is not in a world's history.
    #[error("{id} is not in the history of world `{world}`")]
    NotInHistory {
        /// The entry.
        id: ObjectId,
        /// The world.
        world: String,
    },
    /// A snapshot that belongs to another history than the world's.
    #[error("snapshot {snapshot} is not part of this world's history")]
    ForeignSnapshot {
        /// The snapshot.
        snapshot: ObjectId,
    },
    /// A name that cannot name a world.
    #[error("invalid world name `{name}`: {problem}")]
    WorldName {
        /// The name given.
        name: String,
        /// The rule it breaks.
        problem: WorldNameProblem,
    },
    /// WASM was given for a module the control plane does not define.
    #[error(
        "WASM was given for module `{module}`, but the control plane has no module of that name"
    )]
    UnknownModule {
        /// The module named.
        module: String,
    },
    /// The fuel per reducer step must be at least 1.
    #[error("the fuel per step must be at least 1")]
    NoFuel,
}

/// What is wrong with a revision's text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RevisionProblem {
    /// Nothing was given.
    #[error("a world name or an entry id is needed")]
    Empty,
    /// `@...` with no world name before it.
    #[error("no world name before `@`")]
    NoWorld,
    /// After `@`, neither a height nor an id.
    #[error("`{0}` is neither a height nor an id (`b3:...`)")]
    NotHeightOrId(String),
    /// A malformed id.
    #[error(transparent)]
    Id(#[from] IdError),
}

/// What is wrong with a world name.
#[derive(Debug, thiserror::Error)]
pub enum WorldNameProblem {
    /// World names are one path segment.
    #[error("it must not contain `/`")]
    Slash,
    /// It cannot be part of a ref name.
    #[error(transparent)]
    Ref(#[from] RefError),
}

/// Why a module cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The module's WASM is neither given nor in the store.
    #[error("module {module} has no WASM")]
    NoWasm {
        /// The module.
        module: String,
    },
    /// The blob its `wasm_hash` names is not in the store.
    #[error("module {module}: blob {blob} is not in the store")]
    MissingBlob {
        /// The module.
        module: String,
        /// The blob named.
        blob: ObjectId,
    },
    /// The WASM given is not the one the module names.
    #[error(
        "module {module}: its defmodule names wasm_hash {named}, the file given hashes to {given}"
    )]
    OtherWasm {
        /// The module.
        module: String,
        /// The hash its defmodule names.
        named: ObjectId,
        /// The hash of what was given.
        given: ObjectId,
    },
    /// The control plane does not make a program, or a module does not compile.
    #[error("{0}")]
    Build(String),
}

/// `a` or `an` before a kind's name: "a blob object", "an air object".
pub(crate) fn a_kind(kind: Kind) -> String {
    let name = kind.name();
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}
