//! The ABI runtime: memory, the envelopes and the export bodies.

use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::Layout;

use cbor4ii::core::Value;

use crate::{Context, Output, Pure, Reducer, decode_or_trap, parse_or_trap, to_cbor, trap};

// ---------------------------------------------------------------------------------------
// Memory

/// A bump allocator: hands out memory upwards from the end of the module's static data and
/// never reuses it. Correct for reducers because the host starts every call in a fresh
/// instance; fastest because there is nothing to bookkeep.
#[cfg(all(feature = "bump-alloc", target_arch = "wasm32"))]
mod bump {
    use core::alloc::{GlobalAlloc, Layout};
    use core::sync::atomic::{AtomicUsize, Ordering};

    const PAGE: usize = 65_536;

    unsafe extern "C" {
        /// First byte after the stack and static data (defined by the linker).
        static __heap_base: u8;
    }

    /// Next free address; 0 until the first allocation.
    static NEXT: AtomicUsize = AtomicUsize::new(0);

    struct Bump;

    // SAFETY: hands out disjoint, suitably aligned regions inside linear memory, growing the
    // memory when needed; wasm32 without threads is single-threaded.
    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let mut next = NEXT.load(Ordering::Relaxed);
            if next == 0 {
                next = &raw const __heap_base as usize;
            }
            let Some(start) = next.checked_add(layout.align() - 1) else {
                return core::ptr::null_mut();
            };
            let start = start & !(layout.align() - 1);
            let Some(end) = start.checked_add(layout.size()) else {
                return core::ptr::null_mut();
            };
            let have = core::arch::wasm32::memory_size(0).saturating_mul(PAGE);
            if end > have {
                let pages = (end - have).div_ceil(PAGE);
                if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                    return core::ptr::null_mut();
                }
            }
            NEXT.store(end, Ordering::Relaxed);
            start as *mut u8
        }

        unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // Growing the most recent allocation in place saves copying a growing Vec.
            let end = ptr as usize + layout.size();
            if end == NEXT.load(Ordering::Relaxed) && new_size >= layout.size() {
                let Some(new_end) = (ptr as usize).checked_add(new_size) else {
                    return core::ptr::null_mut();
                };
                let have = core::arch::wasm32::memory_size(0).saturating_mul(PAGE);
                if new_end > have {
                    let pages = (new_end - have).div_ceil(PAGE);
                    if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                        return core::ptr::null_mut();
                    }
                }
                NEXT.store(new_end, Ordering::Relaxed);
                return ptr;
            }
            // SAFETY: as GlobalAlloc::realloc's default: fresh region, copy, no free.
            unsafe {
                let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
                if !new.is_null() {
                    core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                }
                new
            }
        }
    }

    #[global_allocator]
    static GLOBAL: Bump = Bump;
}

#[cfg(all(feature = "panic-handler", target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// Body of the `alloc` export: `len` bytes, 8-aligned, never freed.
#[must_use]
pub fn alloc_export(len: i32) -> i32 {
    let Ok(len) = usize::try_from(len) else {
        trap()
    };
    let Ok(layout) = Layout::from_size_align(len.max(1), 8) else {
        trap()
    };
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc::alloc::alloc(layout) };
    if ptr.is_null() {
        trap();
    }
    ptr as usize as i32
}

/// Reads the input region the host wrote.
///
/// # Safety
///
/// `ptr..ptr+len` must be readable.
unsafe fn input<'a>(ptr: i32, len: i32) -> &'a [u8] {
    let Ok(len) = usize::try_from(len) else {
        trap()
    };
    // SAFETY: per the caller.
    unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len) }
}

/// Hands `out` to the host: leaks it and writes (pointer, length) at `ret_ptr`.
///
/// # Safety
///
/// `ret_ptr..ret_ptr+8` must be writable.
unsafe fn output(ret_ptr: i32, out: Vec<u8>) {
    let out = out.leak();
    let mut region = [0u8; 8];
    region[..4].copy_from_slice(&(out.as_ptr() as usize as u32).to_le_bytes());
    region[4..].copy_from_slice(&(out.len() as u32).to_le_bytes());
    // SAFETY: per the caller; unaligned write of plain bytes.
    unsafe {
        core::ptr::copy_nonoverlapping(region.as_ptr(), ret_ptr as usize as *mut u8, 8);
    }
}

// ---------------------------------------------------------------------------------------
// Envelopes

/// The value of `key` in a text-keyed map.
fn field(entries: &mut [(Value, Value)], key: &str) -> Option<Value> {
    entries.iter_mut().find_map(|(k, v)| match k {
        Value::Text(t) if t == key => Some(core::mem::replace(v, Value::Null)),
        _ => None,
    })
}

fn map(v: Option<Value>) -> Vec<(Value, Value)> {
    match v {
        Some(Value::Map(entries)) => entries,
        _ => trap(),
    }
}

fn bytes_or_null(v: Option<Value>) -> Option<Vec<u8>> {
    match v {
        Some(Value::Bytes(b)) => Some(b),
        Some(Value::Null) | None => None,
        _ => trap(),
    }
}

fn text(v: Option<Value>) -> String {
    match v {
        Some(Value::Text(t)) => t,
        _ => trap(),
    }
}

struct Input {
    state: Option<Vec<u8>>,
    event: Vec<u8>,
    ctx: Context,
}

fn parse_input(bytes: &[u8]) -> Input {
    let mut top = map(Some(parse_or_trap(bytes)));
    if !matches!(field(&mut top, "version"), Some(Value::Integer(1))) {
        trap();
    }
    let state = bytes_or_null(field(&mut top, "state"));
    let mut event = map(field(&mut top, "event"));
    let mut ctx = map(field(&mut top, "ctx"));
    let schema = text(field(&mut event, "schema"));
    let Some(value) = bytes_or_null(field(&mut event, "value")) else {
        trap()
    };
    let event_key = bytes_or_null(field(&mut event, "key"));
    let key = bytes_or_null(field(&mut ctx, "key"));
    let cell_mode = match field(&mut ctx, "cell_mode") {
        Some(Value::Bool(b)) => b,
        None => false,
        _ => trap(),
    };
    Input {
        state,
        event: value,
        ctx: Context {
            schema,
            key,
            event_key,
            cell_mode,
        },
    }
}

/// Writes a CBOR head (shortest form).
fn head(out: &mut Vec<u8>, major: u8, n: usize) {
    let n = n as u64;
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len());
    out.extend_from_slice(b);
}

fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => put_bytes(out, b),
        None => out.push(0xf6),
    }
}

/// The output envelope, keys in canonical order (shorter first, then bytewise).
fn encode_output(state: Option<&[u8]>, o: &Output) -> Vec<u8> {
    let mut out = Vec::new();
    head(&mut out, 5, 4);
    put_text(&mut out, "ann");
    put_opt_bytes(&mut out, o.ann.as_deref());
    put_text(&mut out, "state");
    put_opt_bytes(&mut out, state);
    put_text(&mut out, "effects");
    head(&mut out, 4, o.effects.len());
    for e in &o.effects {
        head(&mut out, 5, 2 + usize::from(e.cap_slot.is_some()));
        put_text(&mut out, "kind");
        put_text(&mut out, &e.kind);
        if let Some(slot) = &e.cap_slot {
            put_text(&mut out, "cap_slot");
            put_text(&mut out, slot);
        }
        put_text(&mut out, "params_cbor");
        put_bytes(&mut out, &e.params);
    }
    put_text(&mut out, "domain_events");
    head(&mut out, 4, o.events.len());
    for e in &o.events {
        head(&mut out, 5, 2 + usize::from(e.key.is_some()));
        if let Some(key) = &e.key {
            put_text(&mut out, "key");
            put_bytes(&mut out, key);
        }
        put_text(&mut out, "value");
        put_bytes(&mut out, &e.value);
        put_text(&mut out, "schema");
        put_text(&mut out, &e.schema);
    }
    out
}

/// Body of a reducer's `step` export.
///
/// # Safety
///
/// `ptr..ptr+len` readable, `ret_ptr..ret_ptr+8` writable (the host's regions).
pub unsafe fn step_export<R: Reducer>(ret_ptr: i32, ptr: i32, len: i32) {
    // SAFETY: per the caller.
    let input = parse_input(unsafe { input(ptr, len) });
    let state = input.state.as_deref().map(decode_or_trap::<R::State>);
    let event = decode_or_trap::<R::Event>(&input.event);
    drop(input.state);
    drop(input.event);
    let mut out = Output::default();
    let next = R::step(state, event, &input.ctx, &mut out);
    let next = next.map(|s| to_cbor(&s));
    let bytes = encode_output(next.as_deref(), &out);
    // SAFETY: per the caller.
    unsafe { output(ret_ptr, bytes) }
}

/// Body of a pure component's `run` export.
///
/// # Safety
///
/// As [`step_export`].
pub unsafe fn run_export<P: Pure>(ret_ptr: i32, ptr: i32, len: i32) {
    // SAFETY: per the caller.
    let input = decode_or_trap::<P::Input>(unsafe { input(ptr, len) });
    let bytes = to_cbor(&P::run(input));
    // SAFETY: per the caller.
    unsafe { output(ret_ptr, bytes) }
}
