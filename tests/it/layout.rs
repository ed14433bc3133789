//! The layout rules of `docs/ARCHITECTURE.md`, checked: no module imports a module that
//! imports it (directly or around a longer circle), no source file passes about 1,000 lines
//! before its tests, and every module opens with a summary line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a source file may have before its `#[cfg(test)]` part ("about 1,000").
const MAX_LINES: usize = 1_100;

struct Module {
    path: PathBuf,
    text: String,
}

/// Every module of `src/` by its path (`world::refs`), test-only files left out.
fn modules() -> BTreeMap<String, Module> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![root.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().and_then(|x| x.to_str()) != Some("rs") {
                continue;
            }
            let rel = p.strip_prefix(&root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let last = parts.last().cloned().unwrap_or_default();
            if last == "tests" || last.ends_with("_tests") {
                continue;
            }
            if matches!(last.as_str(), "mod" | "lib" | "main") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&p).unwrap();
            out.insert(parts.join("::"), Module { path: p, text });
        }
    }
    out
}

/// The text before the file's test module (`#[cfg(test)]`, maybe more attributes, `mod`).
fn before_tests(text: &str) -> &str {
    for (i, _) in text.match_indices("\n#[cfg(test)]\n") {
        let after = text[i + 14..]
            .lines()
            .find(|l| !l.trim_start().starts_with("#["))
            .unwrap_or("");
        if after.starts_with("mod ") {
            return &text[..i];
        }
    }
    text
}

/// Whether `parent` declares its child module `name` for tests only.
fn test_only(parent: &str, name: &str) -> bool {
    parent.contains(&format!("#[cfg(test)]\nmod {name};"))
        || parent.contains(&format!("#[cfg(test)]\npub mod {name};"))
}

/// The module `path` names: its longest prefix that is a module.
fn resolve<'m>(mods: &'m BTreeMap<String, Module>, path: &str) -> Option<&'m str> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    (1..=segs.len())
        .rev()
        .map(|i| segs[..i].join("::"))
        .find_map(|m| mods.get_key_value(&m).map(|(k, _)| k.as_str()))
}

fn ident_end(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len())
}

/// The modules `m` names through `crate::…` and `super::…` paths (grouped `use` lists
/// included), other than itself, its ancestors and its descendants.
fn imports(mods: &BTreeMap<String, Module>, m: &str, text: &str) -> BTreeSet<String> {
    let parent = m.rsplit_once("::").map_or("", |(p, _)| p);
    let mut paths = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + 7..];
        let head = &rest[..ident_end(rest)];
        paths.push(head.trim_end_matches(':').to_owned());
        // `use crate::a::{b, c::d}`: each item of the group, one level down.
        if head.ends_with("::") && rest[head.len()..].starts_with('{') {
            let body = &rest[head.len() + 1..];
            let body = &body[..body.find('}').unwrap_or(body.len())];
            for item in body.split(',') {
                let item = item.trim();
                let first = &item[..ident_end(item)];
                if !first.is_empty() && first != "self" {
                    paths.push(format!("{head}{first}"));
                }
            }
        }
    }
    for (i, _) in text.match_indices("super::") {
        let before = text[..i].chars().last();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &text[i + 7..];
        let head = rest[..ident_end(rest)].trim_end_matches(':');
        paths.push(if parent.is_empty() {
            head.to_owned()
        } else {
            format!("{parent}::{head}")
        });
    }
    paths
        .iter()
        .filter_map(|p| resolve(mods, p))
        .filter(|t| {
            *t != m && !m.starts_with(&format!("{t}::")) && !t.starts_with(&format!("{m}::"))
        })
        .map(str::to_owned)
        .collect()
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'g> {
        g: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(t: &mut T<'g>, v: &'g str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let mods = modules();
    // A module depends on what it imports and on its own children (it declares them, and
    // what it re-exports of them is what importers of it reach).
    let graph: BTreeMap<String, BTreeSet<String>> = mods
        .iter()
        .map(|(m, x)| {
            let mut deps = imports(&mods, m, before_tests(&x.text));
            let prefix = if m.is_empty() {
                String::new()
            } else {
                format!("{m}::")
            };
            deps.extend(
                mods.keys()
                    .filter(|c| c.starts_with(&prefix) && !c[prefix.len()..].contains("::"))
                    .filter(|c| *c != m && !test_only(&x.text, &c[prefix.len()..]))
                    .cloned(),
            );
            (m.clone(), deps)
        })
        .collect();
    // The check itself must see the imports it is about.
    assert!(graph["world::refs"].contains("store::refs"), "{graph:?}");
    assert!(graph["kernel::machine"].contains("kernel::program"));
    let found = cycles(&graph);
    assert!(found.is_empty(), "import cycles: {found:?}");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
}

#[test]
fn source_files_stay_small_and_say_what_they_are() {
    let mut long = Vec::new();
    let mut unsummarized = Vec::new();
    for m in modules().values() {
        let lines = before_tests(&m.text).lines().count();
        if lines > MAX_LINES {
            long.push(format!("{}: {lines} lines", m.path.display()));
        }
        if !m.text.trim_start().starts_with("//!") {
            unsummarized.push(m.path.display().to_string());
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines before tests: {long:?}"
    );
    assert!(
        unsummarized.is_empty(),
        "no `//!` summary: {unsummarized:?}"
    );
}
