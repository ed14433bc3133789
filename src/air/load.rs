//! Loading authoring input: a file holding one node or an array of nodes, or a directory of
//! such files, into nodes that remember where they came from; and the built-in `sys/`
//! catalog.
//!
//! Loading never stops at the first problem: every file is read and every node parsed, and
//! each problem is reported with its file, JSON pointer, line and column, the name of the node
//! it is in (when known), a [`Rule`] and a message. Nodes that parse are returned even when
//! other nodes or files have problems, so that callers can decide what to do with them.
//!
//! Loading checks each node on its own; it does not look across nodes (duplicate names,
//! unresolved references, manifest hashes). Manifest hashes may be omitted or be placeholders.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::diag::{Diagnostic, ParseError, Rule, joined};
use super::nodes::Node;
use crate::codec::json::{Json, parse_json};

/// Where a node was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file, as found (the directory given joined with the path below it).
    pub file: PathBuf,
    /// JSON pointer of the node in the file: `""` for a file holding one node, `/i` for the
    /// i-th node (from 0) of an array.
    pub pointer: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if !self.pointer.is_empty() {
            write!(f, " at `{}`", self.pointer)?;
        }
        Ok(())
    }
}

/// One problem found while loading: a [`Diagnostic`] of the reading rules ([`Rule`]), with its
/// file and, when the text could be read, its line and column.
pub type Problem = ParseError;

/// What loading produced: the nodes that parsed, in file order then position, and every
/// problem found, in the same order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The nodes that parsed, each with its origin.
    pub nodes: Vec<(Node, Origin)>,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

impl Loaded {
    /// The nodes if there was no problem, else the problems.
    ///
    /// # Errors
    /// Every problem found, when there is at least one.
    pub fn into_result(self) -> Result<Vec<(Node, Origin)>, Vec<Problem>> {
        if self.problems.is_empty() {
            Ok(self.nodes)
        } else {
            Err(self.problems)
        }
    }

    fn extend(&mut self, other: Loaded) {
        self.nodes.extend(other.nodes);
        self.problems.extend(other.problems);
    }
}

/// Loads a file, or every `*.json` file below a directory (recursively, sorted by path).
///
/// Symbolic links to files are followed; symbolic links to directories are not.
#[must_use]
pub fn load_path(path: &Path) -> Loaded {
    let mut out = Loaded::default();
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            let mut files = Vec::new();
            collect_json_files(path, &mut files, &mut out.problems);
            files.sort();
            for f in files {
                out.extend(load_file(&f));
            }
        }
        Ok(_) => out.extend(load_file(path)),
        Err(err) => out.problems.push(io_problem(path, &err)),
    }
    out
}

/// A problem of a whole file (or directory): no pointer, no position.
fn file_problem(path: &Path, rule: Rule, message: String) -> Problem {
    Problem {
        file: path.to_owned(),
        ..Diagnostic::new("", rule, message)
    }
}

fn io_problem(path: &Path, err: &std::io::Error) -> Problem {
    file_problem(path, Rule::Io, format!("cannot read: {err}"))
}

fn collect_json_files(dir: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let entries = match fs::read_dir(dir) {
        Ok(it) => it,
        Err(err) => {
            problems.push(io_problem(dir, &err));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(x) => x,
            Err(err) => {
                problems.push(io_problem(dir, &err));
                continue;
            }
        };
        let path = entry.path();
        let ft = match entry.file_type() {
            Ok(ft) => ft,
            Err(err) => {
                problems.push(io_problem(&path, &err));
                continue;
            }
        };
        if ft.is_dir() {
            collect_json_files(&path, files, problems);
            continue;
        }
        let is_json = path.extension().is_some_and(|x| x == "json");
        // A link counts if it leads to a file; links to directories are skipped so that a
        // cycle cannot make the walk endless.
        let is_file =
            ft.is_file() || (ft.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_file()));
        if is_json && is_file {
            files.push(path);
        }
    }
}

/// Loads one file.
#[must_use]
pub fn load_file(path: &Path) -> Loaded {
    match fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => load_str(path, &text),
            Err(err) => Loaded {
                nodes: Vec::new(),
                problems: vec![file_problem(
                    path,
                    Rule::Json,
                    format!(
                        "not UTF-8 text (invalid byte at offset {})",
                        err.utf8_error().valid_up_to()
                    ),
                )],
            },
        },
        Err(err) => Loaded {
            nodes: Vec::new(),
            problems: vec![io_problem(path, &err)],
        },
    }
}

/// Loads the JSON text of one file; `file` labels origins and problems.
#[must_use]
pub fn load_str(file: &Path, text: &str) -> Loaded {
    let mut out = Loaded::default();
    let json = match parse_json(text) {
        Ok(j) => j,
        Err(err) => {
            out.problems.push(Problem {
                pointer: err.pointer.unwrap_or_default(),
                pos: err.pos,
                ..file_problem(file, Rule::Json, err.message)
            });
            return out;
        }
    };
    let located: Vec<(&Json, String)> = match &json {
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| (x, format!("/{i}")))
            .collect(),
        Json::Object(_) => vec![(&json, String::new())],
        other => {
            let mut p = file_problem(
                file,
                Rule::NotANode,
                format!(
                    "an AIR file holds a node object or an array of node objects, found {}",
                    other.type_name()
                ),
            );
            p.locate(text);
            out.problems.push(p);
            return out;
        }
    };
    for (j, pointer) in located {
        match Node::from_json_at(j, &pointer) {
            Ok(node) => out.nodes.push((
                node,
                Origin {
                    file: file.to_owned(),
                    pointer,
                },
            )),
            Err(errors) => {
                let node = node_label(j);
                out.problems.extend(
                    errors
                        .into_iter()
                        .map(|e| locate(file, text, node.clone(), e)),
                );
            }
        }
    }
    out
}

/// `kind name` of a node that failed to parse, from whatever of it is readable.
fn node_label(j: &Json) -> Option<String> {
    let Json::Object(m) = j else { return None };
    let get = |k: &str| {
        m.iter().find_map(|(key, v)| match v {
            Json::String(s) if key == k => Some(s.as_str()),
            _ => None,
        })
    };
    match (get("$kind"), get("name")) {
        (Some(k), Some(n)) => Some(format!("{k} {n}")),
        (None, Some(n)) => Some(n.to_owned()),
        (Some("manifest"), None) => Some("manifest".to_owned()),
        _ => None,
    }
}

fn locate(file: &Path, text: &str, node: Option<String>, mut e: ParseError) -> Problem {
    e.file = file.to_owned();
    e.node = node;
    e.locate(text);
    e
}

/// The JSON text of the built-in `sys/` catalog: the effects, schemas and capability types
/// of AIR v1's built-in effects (see `docs/air.md`).
pub const BUILTINS_JSON: &str = include_str!("builtins.air.json");

/// The built-in `sys/` catalog, parsed once.
///
/// # Panics
/// Never in practice: the embedded catalog is checked by the tests.
#[must_use]
pub fn builtins() -> &'static [Node] {
    static NODES: OnceLock<Vec<Node>> = OnceLock::new();
    NODES.get_or_init(|| {
        match load_str(Path::new("builtins.air.json"), BUILTINS_JSON).into_result() {
            Ok(nodes) => nodes.into_iter().map(|(n, _)| n).collect(),
            Err(problems) => panic!(
                "the embedded sys/ catalog is invalid (a build defect): {}",
                joined(&problems, "; ")
            ),
        }
    })
}

/// The built-in node named `name`, if any.
#[must_use]
pub fn builtin(name: &str) -> Option<&'static Node> {
    builtins()
        .iter()
        .find(|n| n.name().is_some_and(|x| x.as_str() == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::air::nodes::NodeKind;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/air")
            .join(name)
    }

    fn names(loaded: &Loaded) -> Vec<String> {
        loaded
            .nodes
            .iter()
            .map(|(n, _)| {
                n.name()
                    .map_or_else(|| n.kind().to_string(), ToString::to_string)
            })
            .collect()
    }

    #[test]
    fn counter_world_loads() {
        let dir = fixture("counter");
        let loaded = load_path(&dir);
        assert_eq!(loaded.problems, []);
        assert_eq!(
            names(&loaded),
            [
                "manifest",
                "demo/Counter@1",
                "demo/deny-all@1",
                "demo/CounterPc@1",
                "demo/CounterState@1",
                "demo/CounterEvent@1"
            ]
        );
        let (_, origin) = &loaded.nodes[3];
        assert_eq!(origin.file, dir.join("schemas.air.json"));
        assert_eq!(origin.pointer, "/0");
        let (_, origin) = &loaded.nodes[2];
        assert_eq!(origin.pointer, "");
    }

    #[test]
    fn fetch_notify_world_loads() {
        let dir = fixture("fetch-notify");
        let loaded = load_path(&dir);
        assert_eq!(loaded.problems, []);
        let kinds: Vec<NodeKind> = loaded.nodes.iter().map(|(n, _)| n.kind()).collect();
        use NodeKind::*;
        assert_eq!(
            kinds,
            [
                DefCap, Manifest, DefModule, DefPlan, DefPolicy, DefSchema, DefSchema, DefSchema,
                DefSchema, DefSchema, DefSchema
            ]
        );
        assert_eq!(
            loaded.nodes[3].1.file,
            dir.join("plans").join("fetch_plan.air.json")
        );
        let Node::Manifest(m) = &loaded.nodes[1].0 else {
            panic!("not a manifest")
        };
        assert!(m.schemas.iter().all(|r| r.hash.is_none()));
        assert_eq!(m.triggers[0].correlate_by.as_deref(), Some("request_id"));
        // Every node renders to JSON that reads back as the same node.
        for (n, _) in &loaded.nodes {
            assert_eq!(Node::from_json(&n.to_json()).as_ref(), Ok(n));
        }
    }

    #[test]
    fn a_single_file_loads() {
        let loaded = load_path(&fixture("fetch-notify").join("manifest.air.json"));
        assert_eq!(loaded.problems, []);
        assert_eq!(names(&loaded), ["manifest"]);
    }

    #[test]
    fn builtins_parse() {
        let nodes = builtins();
        let mut got: Vec<(NodeKind, &str)> = nodes
            .iter()
            .map(|n| (n.kind(), n.name().map_or("", |x| x.as_str())))
            .collect();
        got.sort_unstable();
        let mut want = vec![
            (NodeKind::DefEffect, "sys/http.request@1"),
            (NodeKind::DefEffect, "sys/blob.put@1"),
            (NodeKind::DefEffect, "sys/blob.get@1"),
            (NodeKind::DefEffect, "sys/timer.set@1"),
            (NodeKind::DefEffect, "sys/llm.generate@1"),
            (NodeKind::DefCap, "sys/http.out@1"),
            (NodeKind::DefCap, "sys/llm.basic@1"),
            (NodeKind::DefCap, "sys/blob@1"),
            (NodeKind::DefCap, "sys/timer@1"),
            (NodeKind::DefCap, "sys/secret@1"),
        ];
        for s in [
            "HttpRequestParams",
            "HttpRequestReceipt",
            "BlobPutParams",
            "BlobPutReceipt",
            "BlobGetParams",
            "BlobGetReceipt",
            "TimerSetParams",
            "TimerSetReceipt",
            "LlmGenerateParams",
            "LlmGenerateReceipt",
            "TimerFired",
            "BlobPutResult",
            "BlobGetResult",
            "SecretRef",
            "TextOrSecretRef",
            "BytesOrSecretRef",
        ] {
            want.push((
                NodeKind::DefSchema,
                Box::leak(format!("sys/{s}@1").into_boxed_str()),
            ));
        }
        want.sort_unstable();
        assert_eq!(got, want);
        assert!(nodes.iter().all(|n| n.name().is_some_and(|x| x.is_sys())));
        // Every effect names schemas that the catalog defines.
        for n in nodes {
            if let Node::DefEffect(e) = n {
                assert!(builtin(e.params_schema.as_str()).is_some(), "{}", e.name);
                assert!(builtin(e.receipt_schema.as_str()).is_some(), "{}", e.name);
            }
        }
        assert!(std::ptr::eq(builtins(), nodes), "parsed once");
    }

    #[test]
    fn every_problem_is_collected_and_located() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        fs::create_dir_all(root.join("sub")).expect("mkdir");
        fs::write(root.join("a.json"), "[\n  {\"$kind\": \"defschema\",\n   \"name\": \"a/A@1\",\n   \"type\": {\"int\": {}}},\n  {\"$kind\": \"defschema\", \"name\": \"a/B@1\", \"type\": {\"float\": {}}},\n  {\"$kind\": \"defcap\", \"name\": \"a/c@1\", \"cap_type\": \"X\", \"schema\": {\"unit\": {}}, \"x\": 1}\n]\n").expect("write");
        fs::write(
            root.join("sub/b.json"),
            "{\"$kind\": \"defschema\",\n \"name\": \"a/C@1\",, }",
        )
        .expect("write");
        fs::write(root.join("sub/c.json"), "42").expect("write");
        fs::write(root.join("sub/d.json"), [0xff, 0xfe]).expect("write");
        fs::write(root.join("notes.txt"), "not AIR").expect("write");
        let loaded = load_path(root);
        assert_eq!(names(&loaded), ["a/A@1"]);
        type Row<'a> = (
            String,
            &'a str,
            Option<(usize, usize)>,
            Option<&'a str>,
            Rule,
        );
        let got: Vec<Row<'_>> = loaded
            .problems
            .iter()
            .map(|p| {
                (
                    p.file
                        .strip_prefix(root)
                        .expect("under root")
                        .to_string_lossy()
                        .replace('\\', "/"),
                    p.pointer.as_str(),
                    p.pos.map(|x| (x.line, x.column)),
                    p.node.as_deref(),
                    p.rule,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "a.json".to_owned(),
                    "/1/type/float",
                    Some((5, 61)),
                    Some("defschema a/B@1"),
                    Rule::BadType
                ),
                (
                    "a.json".to_owned(),
                    "/2/cap_type",
                    Some((6, 52)),
                    Some("defcap a/c@1"),
                    Rule::BadDotted
                ),
                (
                    "a.json".to_owned(),
                    "/2/x",
                    Some((6, 86)),
                    Some("defcap a/c@1"),
                    Rule::UnknownField
                ),
                ("sub/b.json".to_owned(), "", Some((2, 18)), None, Rule::Json),
                (
                    "sub/c.json".to_owned(),
                    "",
                    Some((1, 1)),
                    None,
                    Rule::NotANode
                ),
                ("sub/d.json".to_owned(), "", None, None, Rule::Json),
            ]
        );
        let shown = loaded.problems[0].to_string();
        assert!(
            shown.ends_with(
                "a.json:5:61: unknown type form `float` (expected one of bool, int, nat, dec128, \
                 bytes, text, time, duration, hash, uuid, unit, record, variant, list, set, map, \
                 option, ref) [bad-type] (in defschema a/B@1, at /1/type/float)"
            ),
            "{shown}"
        );
    }

    #[test]
    fn missing_paths_are_problems() {
        let loaded = load_path(Path::new("no/such/dir"));
        assert_eq!(loaded.problems.len(), 1);
        assert_eq!(loaded.problems[0].rule, Rule::Io);
        assert!(loaded.into_result().is_err());
    }
}
