//! The ABI runtime: memory, the envelopes and the export bodies.

use alloc::vec::Vec;
use core::alloc::Layout;

use crate::de::{Error, Reader, SIMPLE, UINT};
use crate::ser::{head, put_bytes, put_text};
use crate::{Context, Output, Pure, Reducer, decode_or_trap, to_cbor, trap};

// ---------------------------------------------------------------------------------------
// Memory

/// A bump allocator: hands out memory upwards from the end of the module's static data and
/// never reuses it. Correct for reducers because the host starts every call in a fresh
/// instance; fastest because there is nothing to bookkeep.
#[cfg(all(feature = "bump-alloc", target_arch = "wasm32"))]
mod bump {
    use core::alloc::{GlobalAlloc, Layout};

    const PAGE: usize = 65_536;

    unsafe extern "C" {
        /// First byte after the stack and static data (defined by the linker).
        static __heap_base: u8;
    }

    /// Next free address.
    static mut NEXT: usize = 0;
    /// End of the memory as far as known; 0 until the first allocation asks.
    static mut END: usize = 0;

    struct Bump;

    /// The slow path: first allocation, growing the memory, or overflow.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(size: usize, align: usize) -> *mut u8 {
        // SAFETY: single-threaded; see `Bump`.
        unsafe {
            if NEXT == 0 {
                NEXT = &raw const __heap_base as usize;
            }
            let Some(start) = NEXT.checked_add(align - 1) else {
                return core::ptr::null_mut();
            };
            let start = start & !(align - 1);
            let Some(end) = start.checked_add(size) else {
                return core::ptr::null_mut();
            };
            let have = core::arch::wasm32::memory_size(0).saturating_mul(PAGE);
            if end > have {
                let pages = (end - have).div_ceil(PAGE);
                if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                    return core::ptr::null_mut();
                }
            }
            END = core::arch::wasm32::memory_size(0).saturating_mul(PAGE);
            NEXT = end;
            start as *mut u8
        }
    }

    // SAFETY: hands out disjoint, suitably aligned regions inside linear memory, growing the
    // memory when needed; wasm32 without threads is single-threaded, so the `static mut`s
    // are never accessed concurrently.
    unsafe impl GlobalAlloc for Bump {
        #[inline]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: single-threaded (see above).
            unsafe {
                // Fast path: fits below the known end (END is 0 before the first call).
                let start = NEXT.wrapping_add(layout.align() - 1) & !(layout.align() - 1);
                let end = start.wrapping_add(layout.size());
                if end <= END && end >= start && NEXT != 0 {
                    NEXT = end;
                    return start as *mut u8;
                }
                alloc_slow(layout.size(), layout.align())
            }
        }

        unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: single-threaded (see above).
            unsafe {
                // Growing (or shrinking) the most recent allocation in place saves copying.
                let end = ptr as usize + layout.size();
                if end == NEXT {
                    let new_end = (ptr as usize).wrapping_add(new_size);
                    if new_end <= END && new_end >= ptr as usize {
                        NEXT = new_end;
                        return ptr;
                    }
                }
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

/// The input envelope, borrowing from the input bytes.
struct Input<'a> {
    state: Option<&'a [u8]>,
    event: &'a [u8],
    ctx: Context,
}

/// Parses `{ctx {key, cell_mode}, event {key?, value, schema}, state, version}`.
///
/// The host sends canonical CBOR, so the keys normally arrive in exactly that order: a
/// straight-line parser handles that case; anything else goes to the general parser, which
/// accepts any key order and skips unknown keys. (Straight-line code is cheapest under the
/// host's fuel metering, which charges a loop body on every iteration.)
#[inline(never)]
fn parse_input(bytes: &[u8]) -> Result<Input<'_>, Error> {
    match parse_canonical(bytes) {
        Some(input) => Ok(input),
        None => parse_any_order(bytes),
    }
}

/// Consumes `lit` (a pre-encoded key) if the input continues with it.
#[inline(always)]
fn lit(r: &mut Reader<'_>, lit: &[u8]) -> Option<()> {
    let end = r.pos + lit.len();
    if r.bytes.get(r.pos..end)? == lit {
        r.pos = end;
        Some(())
    } else {
        None
    }
}

fn parse_canonical(bytes: &[u8]) -> Option<Input<'_>> {
    let mut r = Reader::new(bytes);
    lit(&mut r, b"\xa4\x63ctx\xa2\x63key")?;
    let key = r.opt_bytes().ok()?;
    lit(&mut r, b"\x69cell_mode")?;
    let cell_mode = match r.head().ok()? {
        (SIMPLE, 20) => false,
        (SIMPLE, 21) => true,
        _ => return None,
    };
    lit(&mut r, b"\x65event")?;
    let event_key = match r.map_len().ok()? {
        2 => None,
        3 => {
            lit(&mut r, b"\x63key")?;
            r.opt_bytes().ok()?
        }
        _ => return None,
    };
    lit(&mut r, b"\x65value")?;
    let event = r.opt_bytes().ok()??;
    lit(&mut r, b"\x66schema")?;
    let schema = r.text().ok()?;
    lit(&mut r, b"\x65state")?;
    let state = r.opt_bytes().ok()?;
    lit(&mut r, b"\x67version\x01")?;
    if r.pos != bytes.len() {
        return None;
    }
    Some(Input {
        state,
        event,
        ctx: Context {
            schema: schema.into(),
            key: key.map(Into::into),
            event_key: event_key.map(Into::into),
            cell_mode,
        },
    })
}

#[inline(never)]
#[cold]
fn parse_any_order(bytes: &[u8]) -> Result<Input<'_>, Error> {
    let mut r = Reader::new(bytes);
    let mut version = false;
    let mut state = None;
    let mut event = None;
    let mut schema = None;
    let mut event_key = None;
    let mut key = None;
    let mut cell_mode = false;
    for _ in 0..r.map_len()? {
        match r.text()? {
            "version" => version = r.head()? == (UINT, 1),
            "state" => state = r.opt_bytes()?,
            "event" => {
                for _ in 0..r.map_len()? {
                    match r.text()? {
                        "schema" => schema = Some(r.text()?),
                        "value" => event = r.opt_bytes()?,
                        "key" => event_key = r.opt_bytes()?,
                        _ => r.skip()?,
                    }
                }
            }
            "ctx" => {
                for _ in 0..r.map_len()? {
                    match r.text()? {
                        "key" => key = r.opt_bytes()?,
                        "cell_mode" => {
                            cell_mode = match r.head()? {
                                (SIMPLE, 20) => false,
                                (SIMPLE, 21) => true,
                                _ => return Err(Error),
                            }
                        }
                        _ => r.skip()?,
                    }
                }
            }
            _ => r.skip()?,
        }
    }
    let (true, Some(event), Some(schema), true) = (version, event, schema, r.pos == bytes.len())
    else {
        return Err(Error);
    };
    Ok(Input {
        state,
        event,
        ctx: Context {
            schema: schema.into(),
            key: key.map(Into::into),
            event_key: event_key.map(Into::into),
            cell_mode,
        },
    })
}

fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => put_bytes(out, b),
        None => out.push(0xf6),
    }
}

fn len(n: usize) -> u64 {
    n as u64
}

/// The output envelope, keys in canonical order (shorter first, then bytewise).
#[inline(never)]
fn encode_output(state: Option<&[u8]>, o: &Output) -> Vec<u8> {
    let mut cap = 64 + state.map_or(0, <[u8]>::len) + o.ann.as_ref().map_or(0, Vec::len);
    if !o.effects.is_empty() || !o.events.is_empty() {
        cap += extra_len(o);
    }
    let mut out = Vec::with_capacity(cap);
    out.extend_from_slice(b"\xa4\x63ann");
    put_opt_bytes(&mut out, o.ann.as_deref());
    out.extend_from_slice(b"\x65state");
    put_opt_bytes(&mut out, state);
    out.extend_from_slice(b"\x67effects");
    if o.effects.is_empty() && o.events.is_empty() {
        out.extend_from_slice(b"\x80\x6ddomain_events\x80");
    } else {
        encode_emitted(&mut out, o);
    }
    out
}

/// Upper bound of the bytes `encode_emitted` writes.
#[inline(never)]
fn extra_len(o: &Output) -> usize {
    let effects: usize = o
        .effects
        .iter()
        .map(|e| 48 + e.kind.len() + e.params.len() + e.cap_slot.as_ref().map_or(0, |s| s.len()))
        .sum();
    let events: usize = o
        .events
        .iter()
        .map(|e| 48 + e.schema.len() + e.value.len() + e.key.as_ref().map_or(0, Vec::len))
        .sum();
    effects + events
}

#[inline(never)]
fn encode_emitted(out: &mut Vec<u8>, o: &Output) {
    head(out, 4, len(o.effects.len()));
    for e in &o.effects {
        head(out, 5, len(2 + usize::from(e.cap_slot.is_some())));
        put_text(out, "kind");
        put_text(out, &e.kind);
        if let Some(slot) = &e.cap_slot {
            put_text(out, "cap_slot");
            put_text(out, slot);
        }
        put_text(out, "params_cbor");
        put_bytes(out, &e.params);
    }
    put_text(out, "domain_events");
    head(out, 4, len(o.events.len()));
    for e in &o.events {
        head(out, 5, len(2 + usize::from(e.key.is_some())));
        if let Some(key) = &e.key {
            put_text(out, "key");
            put_bytes(out, key);
        }
        put_text(out, "value");
        put_bytes(out, &e.value);
        put_text(out, "schema");
        put_text(out, &e.schema);
    }
}

/// Body of a reducer's `step` export.
///
/// # Safety
///
/// `ptr..ptr+len` readable, `ret_ptr..ret_ptr+8` writable (the host's regions).
pub unsafe fn step_export<R: Reducer>(ret_ptr: i32, ptr: i32, len: i32) {
    // SAFETY: per the caller.
    let Ok(input) = parse_input(unsafe { input(ptr, len) }) else {
        trap()
    };
    let state = input.state.map(decode_or_trap::<R::State>);
    let event = decode_or_trap::<R::Event>(input.event);
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

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::parse_input;
    use crate::ser::{head, put_bytes, put_text};

    fn entry(out: &mut Vec<u8>, k: &str, v: &[u8]) {
        put_text(out, k);
        out.extend_from_slice(v);
    }

    fn bytes(b: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        put_bytes(&mut v, b);
        v
    }

    /// The envelope with its keys in canonical order, or reversed.
    fn envelope(canonical: bool, event_key: bool) -> Vec<u8> {
        let mut ctx = Vec::new();
        head(&mut ctx, 5, 2);
        let mut ev = Vec::new();
        head(&mut ev, 5, 2 + u64::from(event_key));
        let mut parts_ctx = [
            ("key", bytes(b"\x65alice")),
            ("cell_mode", alloc::vec![0xf5]),
        ];
        let mut parts_ev = alloc::vec![
            ("value", bytes(b"\xa1\x64Tick\xf6")),
            ("schema", {
                let mut s = Vec::new();
                put_text(&mut s, "demo/CounterEvent@1");
                s
            })
        ];
        if event_key {
            parts_ev.insert(0, ("key", bytes(b"\x63bob")));
        }
        if !canonical {
            parts_ctx.reverse();
            parts_ev.reverse();
        }
        for (k, v) in &parts_ctx {
            entry(&mut ctx, k, v);
        }
        for (k, v) in &parts_ev {
            entry(&mut ev, k, v);
        }
        let mut top = alloc::vec![
            ("ctx", ctx),
            ("event", ev),
            ("state", alloc::vec![0xf6]),
            ("version", alloc::vec![0x01])
        ];
        if !canonical {
            top.reverse();
        }
        let mut out = Vec::new();
        head(&mut out, 5, 4);
        for (k, v) in &top {
            entry(&mut out, k, v);
        }
        out
    }

    #[test]
    fn envelope_in_any_key_order() {
        for canonical in [true, false] {
            for event_key in [true, false] {
                let bytes = envelope(canonical, event_key);
                let input = parse_input(&bytes).unwrap();
                assert_eq!(input.state, None);
                assert_eq!(input.event, b"\xa1\x64Tick\xf6");
                assert_eq!(input.ctx.schema(), "demo/CounterEvent@1");
                assert!(input.ctx.cell_mode());
                assert_eq!(input.ctx.key_bytes(), Some(&b"\x65alice"[..]));
                assert_eq!(
                    input.ctx.event_key_bytes(),
                    event_key.then_some(&b"\x63bob"[..])
                );
                // Trailing bytes and a wrong version are rejected.
                let mut longer = bytes.clone();
                longer.push(0);
                assert!(parse_input(&longer).is_err());
            }
        }
        let mut v2 = envelope(true, false);
        *v2.last_mut().unwrap() = 0x02;
        assert!(parse_input(&v2).is_err());
    }
}
