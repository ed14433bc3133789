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

use super::nodes::{Node, ParseError, Rule};
use crate::codec::json::{Json, TextPos, parse_json, pointer_position};

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

/// One problem found while loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file (or directory) concerned.
    pub file: PathBuf,
    /// JSON pointer of the offending value in the file, when there is one.
    pub pointer: Option<String>,
    /// Line and column of the offending value (or of the syntax error), when known.
    pub pos: Option<TextPos>,
    /// The name of the node the problem is in, when known.
    pub node: Option<String>,
    /// The rule broken.
    pub rule: Rule,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for Problem {
    /// `file:line:column: message [rule] (in node N, at /pointer)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = &self.pos {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": {} [{}]", self.message, self.rule)?;
        let mut context = Vec::new();
        if let Some(n) = &self.node {
            context.push(format!("in {n}"));
        }
        if let Some(p) = self.pointer.as_deref().filter(|p| !p.is_empty()) {
            context.push(format!("at `{p}`"));
        }
        if !context.is_empty() {
            write!(f, " ({})", context.join(", "))?;
        }
        Ok(())
    }
}

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

fn io_problem(path: &Path, err: &std::io::Error) -> Problem {
    Problem {
        file: path.to_owned(),
        pointer: None,
        pos: None,
        node: None,
        rule: Rule::Io,
        message: format!("cannot read: {err}"),
    }
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
                problems: vec![Problem {
                    file: path.to_owned(),
                    pointer: None,
                    pos: None,
                    node: None,
                    rule: Rule::Json,
                    message: format!(
                        "not UTF-8 text (invalid byte at offset {})",
                        err.utf8_error().valid_up_to()
                    ),
                }],
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
                file: file.to_owned(),
                pointer: err.pointer,
                pos: err.pos,
                node: None,
                rule: Rule::Json,
                message: err.message,
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
            out.problems.push(Problem {
                file: file.to_owned(),
                pointer: Some(String::new()),
                pos: pointer_position(text, ""),
                node: None,
                rule: Rule::NotANode,
                message: format!(
                    "an AIR file holds a node object or an array of node objects, found {}",
                    other.type_name()
                ),
            });
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

fn locate(file: &Path, text: &str, node: Option<String>, e: ParseError) -> Problem {
    Problem {
        file: file.to_owned(),
        pos: pointer_position(text, &e.pointer),
        pointer: Some(e.pointer),
        node,
        rule: e.rule,
        message: e.message,
    }
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
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
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
