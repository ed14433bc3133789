//! Making a module's instances reusable: a call can run in an instance that an earlier call
//! used, once that instance is put back exactly as instantiation left it.
//!
//! The state a WebAssembly instance carries from one call to the next is its memories, its
//! globals, its tables and which of its data and element segments were dropped. A reducer
//! module has one memory and no imports, so after a call the host can restore the memory (if
//! it did not grow) from a copy taken right after instantiation and set every mutable global
//! back — provided it can reach the globals, and provided the code cannot change the rest.
//! [`plan`] checks the second condition (no start function, no instruction that writes a table
//! or drops a segment) and arranges the first by rewriting the module's export section so
//! every mutable global is also exported under a reserved name. The rewrite adds exports only:
//! code, types and fuel costs are untouched, and the module's id (of the original bytes) is
//! unchanged. Modules that do not qualify run in a fresh instance per call, as before.

use wasmparser::{Operator, Parser, Payload};

/// A module prepared for instance reuse.
pub(super) struct Plan {
    /// The module with every mutable global exported.
    pub wasm: Vec<u8>,
    /// The names those globals are exported under.
    pub globals: Vec<String>,
}

/// The export section's id (WebAssembly core spec §5.5.2).
const EXPORT_SECTION: u8 = 7;
/// Export kind byte of a global.
const EXPORT_GLOBAL: u8 = 3;

/// The reserved export name of global `index`.
fn global_name(index: u32) -> String {
    format!("aos:reset:global:{index}")
}

/// A plan for reusing instances of `wasm`, or `None` if the module must be instantiated afresh
/// for every call (it has a start function, mutates tables or drops segments, or cannot be
/// parsed — compilation will report that).
pub(super) fn plan(wasm: &[u8]) -> Option<Plan> {
    let mut mutable = Vec::new();
    let mut export: Option<(std::ops::Range<usize>, u32)> = None;
    let mut sections: Vec<(u8, std::ops::Range<usize>)> = Vec::new();
    let mut global_count = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.ok()?;
        match &payload {
            Payload::StartSection { .. } | Payload::ImportSection(_) => return None,
            Payload::GlobalSection(reader) => {
                for global in reader.clone() {
                    if global.ok()?.ty.mutable {
                        mutable.push(global_count);
                    }
                    global_count += 1;
                }
            }
            Payload::ExportSection(reader) => export = Some((reader.range(), reader.count())),
            Payload::CodeSectionEntry(body) => {
                let mut ops = body.get_operators_reader().ok()?;
                while !ops.eof() {
                    if stateful(&ops.read().ok()?) {
                        return None;
                    }
                }
            }
            _ => {}
        }
        if let Some(section) = payload.as_section() {
            sections.push(section);
        }
    }
    let (export_range, count) = export?;
    let names: Vec<String> = mutable.iter().map(|&i| global_name(i)).collect();
    // Rebuild the export section: the new count, the original entries, then ours.
    let old = &wasm[export_range.clone()];
    let entries = &old[leb_len(old)?..];
    let mut body = Vec::with_capacity(old.len() + names.len() * 24);
    leb(
        &mut body,
        count.checked_add(u32::try_from(names.len()).ok()?)?,
    );
    body.extend_from_slice(entries);
    for (name, &index) in names.iter().zip(&mutable) {
        leb(&mut body, u32::try_from(name.len()).ok()?);
        body.extend_from_slice(name.as_bytes());
        body.push(EXPORT_GLOBAL);
        leb(&mut body, index);
    }
    // Sections follow each other after the 8-byte preamble; copy each one's header and
    // contents, replacing the export section.
    let mut out = Vec::with_capacity(wasm.len() + body.len());
    let mut at = 8;
    out.extend_from_slice(wasm.get(..8)?);
    for (id, range) in sections {
        if id == EXPORT_SECTION && range == export_range {
            out.push(EXPORT_SECTION);
            leb(&mut out, u32::try_from(body.len()).ok()?);
            out.extend_from_slice(&body);
        } else {
            out.extend_from_slice(wasm.get(at..range.end)?);
        }
        at = range.end;
    }
    (at == wasm.len()).then_some(Plan {
        wasm: out,
        globals: names,
    })
}

/// Whether an instruction changes instance state other than memory and globals.
fn stateful(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::TableSet { .. }
            | Operator::TableGrow { .. }
            | Operator::TableFill { .. }
            | Operator::TableCopy { .. }
            | Operator::TableInit { .. }
            | Operator::ElemDrop { .. }
            | Operator::DataDrop { .. }
    )
}

/// Appends `v` as unsigned LEB128.
fn leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The length of the unsigned LEB128 number at the start of `bytes` (at most 5 bytes).
fn leb_len(bytes: &[u8]) -> Option<usize> {
    bytes
        .iter()
        .take(5)
        .position(|b| b & 0x80 == 0)
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(s: &str) -> Vec<u8> {
        wat::parse_str(s).expect("test module parses")
    }

    #[test]
    fn exports_every_mutable_global_and_keeps_the_rest() {
        let m = wat(r#"(module
            (global $a (mut i32) (i32.const 1))
            (global $b i64 (i64.const 2))
            (global $c (mut f64) (f64.const 3))
            (memory (export "memory") 1)
            (func (export "f") (global.set $a (i32.const 5))))"#);
        let p = plan(&m).expect("qualifies");
        assert_eq!(p.globals, vec![global_name(0), global_name(2)]);
        let mut exports = Vec::new();
        for payload in Parser::new(0).parse_all(&p.wasm) {
            if let Payload::ExportSection(r) = payload.expect("rewritten module parses") {
                for e in r {
                    let e = e.expect("export");
                    exports.push((e.name.to_owned(), e.index));
                }
            }
        }
        assert_eq!(
            exports,
            vec![
                ("memory".to_owned(), 0),
                ("f".to_owned(), 0),
                (global_name(0), 0),
                (global_name(2), 2)
            ]
        );
        wasmparser::Validator::new()
            .validate_all(&p.wasm)
            .expect("rewritten module validates");
    }

    #[test]
    fn refuses_modules_with_state_it_cannot_reset() {
        for body in [
            "(start $f)",
            "(table 1 funcref) (func (drop (table.grow 0 (ref.null func) (i32.const 1))))",
            "(table 1 funcref) (func (table.set 0 (i32.const 0) (ref.null func)))",
            "(data \"x\") (func (data.drop 0))",
            "(table 1 funcref) (elem func $f) (func (elem.drop 0))",
        ] {
            let m = wat(&format!(
                r#"(module (memory (export "memory") 1) (func $f (export "f")) {body})"#
            ));
            assert!(plan(&m).is_none(), "{body}");
        }
        assert!(plan(b"\0asm\x01\0\0\0\x07\xff").is_none(), "malformed");
    }

    #[test]
    fn leb_round_trip() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut b = Vec::new();
            leb(&mut b, v);
            assert_eq!(leb_len(&b), Some(b.len()));
        }
    }
}
