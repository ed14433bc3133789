//! The deterministic WebAssembly engine behind reducers and pure components (AIR v1 §5).
//!
//! A module is compiled once ([`ReducerModule::compile`], [`PureModule::compile`]) and then
//! run any number of times; no memory or globals survive between calls. Each call runs in an
//! instance exactly as instantiation leaves it: a fresh one, or one an earlier call used and
//! that was then reset — memory blocks that differ copied back, every mutable global set back
//! (see `reset.rs` for which modules qualify). Both give the same output, fuel and faults. Execution is metered by fuel and bounded by [`Limits`]; a
//! call that misbehaves ends in a [`Fault`], which is plain data whose message is identical on
//! every machine.
//!
//! Determinism comes from the engine configuration (see [`Limits`] and the crate's `wasmi`
//! features): eager compilation (fuel never depends on what was compiled before), fuel
//! metering, NaN canonicalization of float results (`wasmi`'s `deterministic` feature), no
//! SIMD, relaxed SIMD, threads, memory64, multi-memory, wide arithmetic or custom page sizes,
//! and no imports at all.

use std::sync::{Arc, Mutex};

use thiserror::Error;
use wasmi::{
    CompilationMode, Config, Engine, ExternType, Global, Instance, Memory, Module, StoreLimits,
    StoreLimitsBuilder, TrapCode, TypedFunc, Val, ValType, errors::ErrorKind,
    errors::InstantiationError, errors::MemoryError,
};

use crate::codec::cbor::{Int, Map, Value};

mod reset;
#[cfg(test)]
mod tests;

/// Resource limits of one call into a module; part of what a world records.
///
/// All limits are deterministic: they are counted in fuel units, Wasm bytes and frames, never
/// in time or host memory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Fuel for one call, including instantiation. Default [`Limits::DEFAULT_FUEL`].
    pub fuel: u64,
    /// Largest linear memory a module may have or grow to, in bytes.
    /// Default [`Limits::DEFAULT_MAX_MEMORY_BYTES`].
    pub max_memory_bytes: u64,
    /// Largest output a call may return, in bytes. Default [`Limits::DEFAULT_MAX_OUTPUT_BYTES`].
    pub max_output_bytes: u64,
    /// Deepest nesting of Wasm calls. Default [`Limits::DEFAULT_MAX_CALL_DEPTH`].
    pub max_call_depth: u64,
    /// Largest height of the engine's value stack, in bytes; at least
    /// [`Limits::MIN_STACK_BYTES`]. Default [`Limits::DEFAULT_MAX_STACK_BYTES`].
    pub max_stack_bytes: u64,
}

impl Limits {
    /// Default fuel per call: 100 million units (roughly as many simple instructions).
    pub const DEFAULT_FUEL: u64 = 100_000_000;
    /// Default memory limit: 64 MiB (1024 pages of 64 KiB).
    pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 64 << 20;
    /// Default output limit: 16 MiB.
    pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 16 << 20;
    /// Default call depth: 1,000 frames.
    pub const DEFAULT_MAX_CALL_DEPTH: u64 = 1_000;
    /// Default value stack: 1 MB.
    pub const DEFAULT_MAX_STACK_BYTES: u64 = 1_000_000;
    /// The smallest accepted `max_stack_bytes` (the engine's initial stack height).
    pub const MIN_STACK_BYTES: u64 = 1_000;

    /// The canonical encoding: a map of the five fields under their names.
    #[must_use]
    pub fn to_cbor(&self) -> Value {
        let mut m = Map::new();
        m.insert("fuel".into(), self.fuel.into());
        m.insert("max_call_depth".into(), self.max_call_depth.into());
        m.insert("max_memory_bytes".into(), self.max_memory_bytes.into());
        m.insert("max_output_bytes".into(), self.max_output_bytes.into());
        m.insert("max_stack_bytes".into(), self.max_stack_bytes.into());
        Value::Map(m)
    }

    /// Decodes [`Limits::to_cbor`]'s encoding: exactly the five fields, each a `u64`.
    ///
    /// # Errors
    ///
    /// If `value` is not such a map.
    pub fn from_cbor(value: &Value) -> Result<Self, LimitsError> {
        let Value::Map(m) = value else {
            return Err(LimitsError("limits must be a map".into()));
        };
        if m.entries().len() != 5 {
            return Err(LimitsError("limits must have exactly 5 fields".into()));
        }
        let field = |name: &str| -> Result<u64, LimitsError> {
            match m.get_text(name) {
                Some(Value::Int(i)) => u64::try_from(Int::get(*i))
                    .map_err(|_| LimitsError(format!("limits.{name} must be a u64"))),
                Some(_) => Err(LimitsError(format!("limits.{name} must be a u64"))),
                None => Err(LimitsError(format!("limits.{name} is missing"))),
            }
        };
        Ok(Self {
            fuel: field("fuel")?,
            max_memory_bytes: field("max_memory_bytes")?,
            max_output_bytes: field("max_output_bytes")?,
            max_call_depth: field("max_call_depth")?,
            max_stack_bytes: field("max_stack_bytes")?,
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: Self::DEFAULT_FUEL,
            max_memory_bytes: Self::DEFAULT_MAX_MEMORY_BYTES,
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
            max_call_depth: Self::DEFAULT_MAX_CALL_DEPTH,
            max_stack_bytes: Self::DEFAULT_MAX_STACK_BYTES,
        }
    }
}

/// A malformed [`Limits`] encoding.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct LimitsError(String);

/// Why a module was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ModuleError {
    /// The limits cannot be configured.
    #[error("invalid limits: {0}")]
    Limits(String),
    /// The bytes are not a valid module under the deterministic feature set.
    #[error("invalid module: {0}")]
    Invalid(String),
    /// The module imports something; reducers and pure components import nothing.
    #[error("module imports {module}::{name}")]
    Import {
        /// The import's module name.
        module: String,
        /// The import's field name.
        name: String,
    },
    /// A required export is missing or has the wrong type.
    #[error("export {name}: {reason}")]
    Export {
        /// The export's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a call failed. Plain data: the same call faults the same way on every machine.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Error)]
pub enum Fault {
    /// The call ran out of fuel.
    #[error("out of fuel")]
    OutOfFuel,
    /// The module's memory would exceed [`Limits::max_memory_bytes`].
    #[error("memory limit exceeded")]
    MemoryLimit,
    /// The call nesting or value stack exceeded its limit.
    #[error("stack overflow")]
    StackOverflow,
    /// The guest trapped (unreachable, out-of-bounds access, division by zero, ...).
    #[error("trap: {0}")]
    Trap(String),
    /// `alloc` returned a region that cannot hold the input.
    #[error("bad alloc: {0}")]
    BadAlloc(String),
    /// The returned output region is out of bounds or too large.
    #[error("bad output: {0}")]
    BadOutput(String),
}

/// The result of a successful call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepOutput {
    /// The bytes the guest returned.
    pub bytes: Vec<u8>,
    /// Fuel consumed by the call, instantiation included.
    pub fuel_consumed: u64,
}

/// How the entry function returns its output region (AIR v1 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// Multi-value: `(ptr: i32, len: i32) -> (i32, i32)`.
    MultiValue,
    /// Return pointer: `(ret_ptr: i32, ptr: i32, len: i32) -> ()`, output at `ret_ptr`.
    RetPtr,
}

struct Inner {
    engine: Engine,
    module: Module,
    entry: &'static str,
    shape: Shape,
    limits: Limits,
    /// The exported names of the mutable globals, if instances can be reset and reused.
    reset_globals: Option<Vec<String>>,
    /// An instance, reset to its state right after instantiation, ready for the next call.
    idle: Mutex<Option<Box<Warm>>>,
}

/// The entry function, typed by shape.
enum EntryFn {
    MultiValue(TypedFunc<(i32, i32), (i32, i32)>),
    RetPtr(TypedFunc<(i32, i32, i32), ()>),
}

/// What a reset puts back: memory bytes and global values right after instantiation.
struct Pristine {
    memory: Vec<u8>,
    /// Per [`RESET_PAGE`]-sized block of `memory`: whether it is all zeros.
    zero: Vec<bool>,
    globals: Vec<(Global, Val)>,
}

/// The block size of memory resets.
const RESET_PAGE: usize = 4096;

/// A block of zeros to compare with.
static ZEROS: [u8; RESET_PAGE] = [0; RESET_PAGE];

/// Whether `block` (at most [`RESET_PAGE`] bytes) is all zeros. A slice comparison runs the C
/// library's vectorized `memcmp`, faster than any loop compiled for the baseline target.
fn is_zero(block: &[u8]) -> bool {
    block == &ZEROS[..block.len()]
}

/// An instance with its store and the handles a call needs.
struct Warm {
    store: wasmi::Store<StoreLimits>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    entry: EntryFn,
    /// Fuel the instantiation itself consumed; a reused instance is charged it again so a call
    /// costs the same whether or not its instance is new.
    instantiation_fuel: u64,
    pristine: Option<Pristine>,
}

impl Warm {
    /// Instantiates the module afresh (charging fuel from `limits.fuel`), keeping a copy of the
    /// initial state if the instance is to be reused.
    fn new(inner: &Inner) -> Result<Self, Fault> {
        let limits = &inner.limits;
        let memory_limit = usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX);
        let store_limits = StoreLimitsBuilder::new()
            .memory_size(memory_limit)
            .memories(1)
            .trap_on_grow_failure(true)
            .build();
        let mut store = wasmi::Store::new(&inner.engine, store_limits);
        store.limiter(|l: &mut StoreLimits| l);
        store.set_fuel(limits.fuel).map_err(fault)?;
        let instance = Instance::new(&mut store, &inner.module, &[]).map_err(fault)?;
        let instantiation_fuel = limits.fuel - store.get_fuel().map_err(fault)?;
        let memory = instance
            .get_memory(&store, "memory")
            .ok_or_else(|| Fault::Trap("memory export missing".into()))?;
        let alloc = instance
            .get_typed_func::<i32, i32>(&store, "alloc")
            .map_err(fault)?;
        let entry = match inner.shape {
            Shape::MultiValue => EntryFn::MultiValue(
                instance
                    .get_typed_func(&store, inner.entry)
                    .map_err(fault)?,
            ),
            Shape::RetPtr => EntryFn::RetPtr(
                instance
                    .get_typed_func(&store, inner.entry)
                    .map_err(fault)?,
            ),
        };
        let pristine = match &inner.reset_globals {
            None => None,
            Some(names) => {
                let mut globals = Vec::with_capacity(names.len());
                for name in names {
                    let g = instance
                        .get_global(&store, name)
                        .ok_or_else(|| Fault::Trap(format!("global export {name} missing")))?;
                    globals.push((g, g.get(&store)));
                }
                let memory = memory.data(&store).to_vec();
                let zero = memory.chunks(RESET_PAGE).map(is_zero).collect();
                Some(Pristine {
                    memory,
                    zero,
                    globals,
                })
            }
        };
        Ok(Self {
            store,
            memory,
            alloc,
            entry,
            instantiation_fuel,
            pristine,
        })
    }

    /// Puts the instance back in its initial state; `false` if it cannot be (no copy kept, or
    /// the memory grew).
    fn reset(&mut self) -> bool {
        let Some(p) = &self.pristine else {
            return false;
        };
        let data = self.memory.data_mut(&mut self.store);
        if data.len() != p.memory.len() {
            return false;
        }
        // Most of a module's memory is zeros and a call writes few pages (a little stack, a
        // little heap): reading a block to find it still zero is much cheaper than writing it,
        // so only blocks that differ are written back.
        let blocks = data.chunks_mut(RESET_PAGE).zip(p.memory.chunks(RESET_PAGE));
        for ((cur, orig), &zero) in blocks.zip(&p.zero) {
            if zero {
                if !is_zero(cur) {
                    cur.fill(0);
                }
            } else if cur != orig {
                cur.copy_from_slice(orig);
            }
        }
        p.globals
            .iter()
            .all(|(g, v)| g.set(&mut self.store, v.clone()).is_ok())
    }
}

/// A compiled module with one entry function; cheap to clone.
#[derive(Clone)]
struct Compiled(Arc<Inner>);

/// Builds the deterministic engine configuration for `limits`.
fn config(limits: &Limits) -> Result<Config, ModuleError> {
    if limits.max_stack_bytes < Limits::MIN_STACK_BYTES {
        return Err(ModuleError::Limits(format!(
            "max_stack_bytes {} is below {}",
            limits.max_stack_bytes,
            Limits::MIN_STACK_BYTES
        )));
    }
    let too_big = |name: &str| ModuleError::Limits(format!("{name} does not fit this host"));
    let depth = usize::try_from(limits.max_call_depth).map_err(|_| too_big("max_call_depth"))?;
    let stack = usize::try_from(limits.max_stack_bytes).map_err(|_| too_big("max_stack_bytes"))?;
    let mut c = Config::default();
    c.compilation_mode(CompilationMode::Eager)
        .consume_fuel(true)
        .set_max_recursion_depth(depth)
        .set_max_stack_height(stack)
        .wasm_multi_memory(false)
        .wasm_wide_arithmetic(false)
        .wasm_custom_page_sizes(false)
        .wasm_multi_value(true)
        .wasm_bulk_memory(true)
        .wasm_sign_extension(true)
        .wasm_saturating_float_to_int(true)
        .wasm_mutable_global(true)
        .wasm_reference_types(true)
        .wasm_tail_call(true)
        .wasm_extended_const(true)
        .floats(true)
        .ignore_custom_sections(true);
    Ok(c)
}

fn is_i32(types: &[ValType], n: usize) -> bool {
    types.len() == n && types.iter().all(|t| *t == ValType::I32)
}

impl Compiled {
    fn compile(wasm: &[u8], limits: &Limits, entry: &'static str) -> Result<Self, ModuleError> {
        let engine = Engine::new(&config(limits)?);
        // If its instances can be reset, compile the rewrite that exposes its globals; the
        // original is compiled only when there is no such rewrite or it does not compile (so
        // the errors reported are always the original's).
        let rewritten = reset::plan(wasm).and_then(|plan| {
            Module::new(&engine, &plan.wasm)
                .ok()
                .map(|m| (m, plan.globals))
        });
        let (module, reset_globals) = match rewritten {
            Some((m, globals)) => (m, Some(globals)),
            None => (
                Module::new(&engine, wasm).map_err(|e| ModuleError::Invalid(e.to_string()))?,
                None,
            ),
        };
        if let Some(import) = module.imports().next() {
            return Err(ModuleError::Import {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
            });
        }
        let mut memory = false;
        let mut alloc = false;
        let mut shape = None;
        for export in module.exports() {
            match (export.name(), export.ty()) {
                ("memory", ExternType::Memory(_)) => memory = true,
                ("memory", _) => {
                    return Err(ModuleError::Export {
                        name: "memory",
                        reason: "not a memory".into(),
                    });
                }
                ("alloc", ty) => {
                    let ok = ty
                        .func()
                        .is_some_and(|f| is_i32(f.params(), 1) && is_i32(f.results(), 1));
                    if !ok {
                        return Err(ModuleError::Export {
                            name: "alloc",
                            reason: "expected (i32) -> i32".into(),
                        });
                    }
                    alloc = true;
                }
                (name, ty) if name == entry => {
                    shape = match ty.func() {
                        Some(f) if is_i32(f.params(), 2) && is_i32(f.results(), 2) => {
                            Some(Shape::MultiValue)
                        }
                        Some(f) if is_i32(f.params(), 3) && f.results().is_empty() => {
                            Some(Shape::RetPtr)
                        }
                        _ => {
                            return Err(ModuleError::Export {
                                name: entry,
                                reason: "expected (i32, i32) -> (i32, i32) \
                                         or (i32, i32, i32) -> ()"
                                    .into(),
                            });
                        }
                    };
                }
                _ => {}
            }
        }
        let missing = |name: &'static str| ModuleError::Export {
            name,
            reason: "missing".into(),
        };
        if !memory {
            return Err(missing("memory"));
        }
        if !alloc {
            return Err(missing("alloc"));
        }
        let shape = shape.ok_or_else(|| missing(entry))?;
        Ok(Self(Arc::new(Inner {
            engine,
            module,
            entry,
            shape,
            limits: limits.clone(),
            reset_globals,
            idle: Mutex::new(None),
        })))
    }

    fn call(&self, input: &[u8]) -> Result<StepOutput, Fault> {
        let inner = &*self.0;
        let idle = match &inner.reset_globals {
            Some(_) => inner.idle.try_lock().ok().and_then(|mut g| g.take()),
            None => None,
        };
        let mut warm = match idle {
            Some(mut w) => {
                w.store
                    .set_fuel(inner.limits.fuel - w.instantiation_fuel)
                    .map_err(fault)?;
                w
            }
            None => Box::new(Warm::new(inner)?),
        };
        let out = Self::run(inner, &mut warm, input)?;
        // Only an instance whose call succeeded and that resets cleanly is kept.
        if warm.reset()
            && let Ok(mut g) = inner.idle.try_lock()
        {
            *g = Some(warm);
        }
        Ok(out)
    }

    fn run(inner: &Inner, w: &mut Warm, input: &[u8]) -> Result<StepOutput, Fault> {
        let limits = &inner.limits;
        let (memory, store) = (&w.memory, &mut w.store);
        let len = i32::try_from(input.len())
            .map_err(|_| Fault::BadAlloc(format!("input of {} bytes", input.len())))?;
        let ptr = w.alloc.call(&mut *store, len).map_err(fault)?;
        write_region(memory, store, ptr, input)
            .map_err(|e| Fault::BadAlloc(format!("input region {e}")))?;

        let (out_ptr, out_len) = match &w.entry {
            EntryFn::MultiValue(f) => f.call(&mut *store, (ptr, len)).map_err(fault)?,
            EntryFn::RetPtr(f) => {
                let ret_ptr = w.alloc.call(&mut *store, 8).map_err(fault)?;
                // Check the return slot before the call so a bad alloc is not blamed on step.
                read_region(memory, store, ret_ptr, 8)
                    .map_err(|e| Fault::BadAlloc(format!("return slot {e}")))?;
                f.call(&mut *store, (ret_ptr, ptr, len)).map_err(fault)?;
                let slot = read_region(memory, store, ret_ptr, 8)
                    .map_err(|e| Fault::BadOutput(format!("return slot {e}")))?;
                let word =
                    |i: usize| i32::from_le_bytes([slot[i], slot[i + 1], slot[i + 2], slot[i + 3]]);
                (word(0), word(4))
            }
        };
        // Pointers and lengths are unsigned 32-bit values in wasm32.
        let out_len_u = u64::from(out_len.cast_unsigned());
        if out_len_u > limits.max_output_bytes {
            return Err(Fault::BadOutput(format!(
                "output of {out_len_u} bytes exceeds the limit of {}",
                limits.max_output_bytes
            )));
        }
        let bytes = read_region(memory, store, out_ptr, out_len_u)
            .map_err(|e| Fault::BadOutput(format!("output region {e}")))?
            .to_vec();
        let left = store.get_fuel().map_err(fault)?;
        Ok(StepOutput {
            bytes,
            fuel_consumed: limits.fuel - left,
        })
    }
}

/// The bytes `[ptr, ptr + len)` of `memory`, or why they are out of bounds.
fn read_region<'a>(
    memory: &Memory,
    store: &'a wasmi::Store<StoreLimits>,
    ptr: i32,
    len: u64,
) -> Result<&'a [u8], String> {
    let data = memory.data(store);
    let start = u64::from(ptr.cast_unsigned());
    let end = start + len;
    let size = data.len() as u64;
    if end > size {
        return Err(format!(
            "[{start}, {end}) is out of bounds of a memory of {size} bytes"
        ));
    }
    // Both bounds are at most `size`, which is a `usize`.
    Ok(&data[start as usize..end as usize])
}

fn write_region(
    memory: &Memory,
    store: &mut wasmi::Store<StoreLimits>,
    ptr: i32,
    bytes: &[u8],
) -> Result<(), String> {
    let data = memory.data_mut(store);
    let start = u64::from(ptr.cast_unsigned());
    let end = start + bytes.len() as u64;
    let size = data.len() as u64;
    if end > size {
        return Err(format!(
            "[{start}, {end}) is out of bounds of a memory of {size} bytes"
        ));
    }
    data[start as usize..end as usize].copy_from_slice(bytes);
    Ok(())
}

/// Our own fixed name for a trap, independent of the engine's wording.
fn trap_name(code: TrapCode) -> String {
    match code {
        TrapCode::UnreachableCodeReached => "unreachable",
        TrapCode::MemoryOutOfBounds => "memory out of bounds",
        TrapCode::TableOutOfBounds => "table out of bounds",
        TrapCode::IndirectCallToNull => "indirect call to null",
        TrapCode::IntegerDivisionByZero => "integer division by zero",
        TrapCode::IntegerOverflow => "integer overflow",
        TrapCode::BadConversionToInteger => "invalid conversion to integer",
        TrapCode::BadSignature => "indirect call signature mismatch",
        other => return format!("{other:?}"),
    }
    .to_owned()
}

/// Maps an engine error to a deterministic fault.
fn fault(error: wasmi::Error) -> Fault {
    if let Some(code) = error.as_trap_code() {
        return match code {
            TrapCode::OutOfFuel => Fault::OutOfFuel,
            TrapCode::StackOverflow => Fault::StackOverflow,
            TrapCode::GrowthOperationLimited => Fault::MemoryLimit,
            other => Fault::Trap(trap_name(other)),
        };
    }
    match error.kind() {
        ErrorKind::Memory(MemoryError::ResourceLimiterDeniedAllocation)
        | ErrorKind::Instantiation(InstantiationError::FailedToInstantiateMemory(
            MemoryError::ResourceLimiterDeniedAllocation,
        )) => Fault::MemoryLimit,
        ErrorKind::Memory(MemoryError::OutOfFuel { .. }) => Fault::OutOfFuel,
        _ => Fault::Trap(error.to_string()),
    }
}

/// A compiled reducer module (exports `memory`, `alloc` and `step`); cheap to clone and share.
#[derive(Clone)]
pub struct ReducerModule(Compiled);

impl ReducerModule {
    /// Validates and eagerly compiles `wasm` under the deterministic configuration for
    /// `limits`, rejecting imports and checking the exports and `step`'s shape.
    ///
    /// # Errors
    ///
    /// See [`ModuleError`].
    pub fn compile(wasm: &[u8], limits: &Limits) -> Result<Self, ModuleError> {
        Compiled::compile(wasm, limits, "step").map(Self)
    }

    /// The detected shape of `step`.
    #[must_use]
    pub fn shape(&self) -> Shape {
        self.0.0.shape
    }

    /// The limits every call runs under.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.0.0.limits
    }

    /// Runs one step on `input` in a fresh (or freshly reset) instance.
    ///
    /// # Errors
    ///
    /// A [`Fault`] if the guest traps, exceeds a limit or returns a bad output region.
    pub fn step(&self, input: &[u8]) -> Result<StepOutput, Fault> {
        self.0.call(input)
    }
}

/// A compiled pure component (exports `memory`, `alloc` and `run`); cheap to clone and share.
#[derive(Clone)]
pub struct PureModule(Compiled);

impl PureModule {
    /// Like [`ReducerModule::compile`], with `run` as the entry function.
    ///
    /// # Errors
    ///
    /// See [`ModuleError`].
    pub fn compile(wasm: &[u8], limits: &Limits) -> Result<Self, ModuleError> {
        Compiled::compile(wasm, limits, "run").map(Self)
    }

    /// The detected shape of `run`.
    #[must_use]
    pub fn shape(&self) -> Shape {
        self.0.0.shape
    }

    /// The limits every call runs under.
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.0.0.limits
    }

    /// Runs the component on `input` in a fresh (or freshly reset) instance.
    ///
    /// # Errors
    ///
    /// A [`Fault`] if the guest traps, exceeds a limit or returns a bad output region.
    pub fn run(&self, input: &[u8]) -> Result<StepOutput, Fault> {
        self.0.call(input)
    }
}
