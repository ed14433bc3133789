//! Diagnostics: the one located problem type of AIR (loading, node reading, validation), its
//! rendering, and the rules that reading authoring JSON applies.
//!
//! Every stage reports a [`Diagnostic`]: a file, a JSON pointer into it, the line and column
//! of that pointer, the node concerned, a rule and a plain message. The stages differ only in
//! their rule vocabulary: reading (the loader and the node reader) uses [`Rule`], validation
//! uses its `Check`. A problem found while reading JSON that has no file yet (a node read from
//! memory) is a diagnostic without file, position or node ([`ParseError`]); the loader fills
//! them in ([`Diagnostic::locate`]).
//!
//! The text form is `file:line:col: message [rule] (in kind name, at /pointer)`, each part
//! present only when known (see [`Diagnostic`]'s `Display`).

use std::fmt;
use std::path::PathBuf;

use crate::codec::json::{TextPos, pointer_escape, pointer_position};
pub use crate::codec::quote::{MESSAGE_CHARS, QUOTE_CHARS, bounded, bounded_to};

/// A rule vocabulary: the stable identifiers that diagnostics of one stage carry.
pub trait RuleId: Copy + fmt::Debug + Eq + Ord {
    /// The rule's stable identifier (kebab-case).
    fn as_str(self) -> &'static str;
}

/// One problem in a world's AIR, located as precisely as its stage allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic<R> {
    /// The file where the offending part is written (for a problem inside a built-in node, the
    /// manifest's file; for a file or directory that cannot be read, that path); empty when
    /// there is no file (JSON read from memory, or no node at all).
    pub file: PathBuf,
    /// JSON pointer (RFC 6901) of the offending value in that file; for a missing field, of
    /// the object that lacks it. `""` is the whole document, or no value in particular (a file
    /// that cannot be read, text that is not JSON).
    pub pointer: String,
    /// Line and column of the pointer (or of the nearest enclosing value that exists, or of a
    /// syntax error), when the file's text is known.
    pub pos: Option<TextPos>,
    /// The node concerned, as `kind name` (`manifest` for the manifest), when known.
    pub node: Option<String>,
    /// The rule broken.
    pub rule: R,
    /// What is wrong, in plain words.
    pub message: String,
}

impl<R> Diagnostic<R> {
    /// A problem at `pointer`, with no file, position or node yet.
    pub fn new(pointer: impl Into<String>, rule: R, message: impl Into<String>) -> Self {
        Self {
            file: PathBuf::new(),
            pointer: pointer.into(),
            pos: None,
            node: None,
            rule,
            message: message.into(),
        }
    }

    /// Sets [`Diagnostic::pos`] from the file's `text`: the position of the pointer, or of the
    /// nearest enclosing value that exists (a missing member points at its object). Leaves it
    /// unset if not even the top-level value can be found.
    pub fn locate(&mut self, text: &str) {
        let mut p = self.pointer.as_str();
        loop {
            if let Some(pos) = pointer_position(text, p) {
                self.pos = Some(pos);
                return;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return,
            }
        }
    }
}

impl<R: RuleId> fmt::Display for Diagnostic<R> {
    /// `file:line:col: message [rule] (in defplan x/y@1, at /steps/2/params)`; the file and
    /// position are left out when unknown, and so are the node and an empty pointer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.as_os_str().is_empty() {
            write!(f, "{}", self.file.display())?;
            if let Some(p) = &self.pos {
                write!(f, ":{}:{}", p.line, p.column)?;
            }
            f.write_str(": ")?;
        }
        let message = bounded_to(&self.message, MESSAGE_CHARS);
        write!(f, "{message} [{}]", self.rule.as_str())?;
        let pointer = bounded(&self.pointer);
        match (self.node.as_deref().map(bounded), pointer.is_empty()) {
            (Some(n), false) => write!(f, " (in {n}, at {pointer})"),
            (Some(n), true) => write!(f, " (in {n})"),
            (None, false) => write!(f, " (at {pointer})"),
            (None, true) => Ok(()),
        }
    }
}

impl<R: RuleId> std::error::Error for Diagnostic<R> {}

// ---------------------------------------------------------------------------------------------
// Reading

/// Which rule a piece of authoring input breaks while it is loaded and read. The text forms
/// ([`Rule::as_str`]) are stable identifiers for tools and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `io`: a file or directory could not be read.
    Io,
    /// `json`: the text is not strict JSON (RFC 8259, no duplicate keys).
    Json,
    /// `not-a-node`: a file's top-level value is neither a node object nor an array of them.
    NotANode,
    /// `wrong-type`: a value has the wrong JSON type.
    WrongType,
    /// `missing-field`: a required field is absent.
    MissingField,
    /// `unknown-field`: a field that the form does not have.
    UnknownField,
    /// `unknown-kind`: `$kind` is not one of the node kinds.
    UnknownKind,
    /// `bad-name`: not a qualified name `namespace/name@N`.
    BadName,
    /// `bad-ident`: not a small identifier `[A-Za-z_][A-Za-z0-9_.-]{0,63}`.
    BadIdent,
    /// `bad-dotted`: not a lowercase dotted effect kind or capability type.
    BadDotted,
    /// `bad-hash`: not a hash `b3:<64 lowercase hex digits>`.
    BadHash,
    /// `bad-number`: not an integer, or out of range.
    BadNumber,
    /// `bad-enum`: a string that is not one of the allowed words.
    BadEnum,
    /// `bad-type`: not a type AST.
    BadType,
    /// `bad-expr`: not an expression.
    BadExpr,
    /// `bad-ref`: an expression reference with invalid syntax.
    BadRef,
    /// `bad-arity`: an operator with the wrong number of arguments.
    BadArity,
    /// `bad-const`: an expression constant with an invalid literal.
    BadConst,
    /// `bad-version`: `air_version` is not `"1"`.
    BadVersion,
    /// `abi-mismatch`: `defmodule.abi` does not match `module_kind`.
    AbiMismatch,
    /// `empty`: a value that must not be empty is.
    Empty,
}

impl Rule {
    /// The rule's stable identifier.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Io => "io",
            Rule::Json => "json",
            Rule::NotANode => "not-a-node",
            Rule::WrongType => "wrong-type",
            Rule::MissingField => "missing-field",
            Rule::UnknownField => "unknown-field",
            Rule::UnknownKind => "unknown-kind",
            Rule::BadName => "bad-name",
            Rule::BadIdent => "bad-ident",
            Rule::BadDotted => "bad-dotted",
            Rule::BadHash => "bad-hash",
            Rule::BadNumber => "bad-number",
            Rule::BadEnum => "bad-enum",
            Rule::BadType => "bad-type",
            Rule::BadExpr => "bad-expr",
            Rule::BadRef => "bad-ref",
            Rule::BadArity => "bad-arity",
            Rule::BadConst => "bad-const",
            Rule::BadVersion => "bad-version",
            Rule::AbiMismatch => "abi-mismatch",
            Rule::Empty => "empty",
        }
    }
}

impl RuleId for Rule {
    fn as_str(self) -> &'static str {
        Rule::as_str(self)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A problem found while loading or reading authoring JSON. Readers of JSON in memory return
/// it with only the pointer (relative to what they were given), rule and message set.
pub type ParseError = Diagnostic<Rule>;

/// The diagnostics' text forms, separated by `sep`.
pub(crate) fn joined<R: RuleId>(ds: &[Diagnostic<R>], sep: &str) -> String {
    ds.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

/// `names` separated by commas, for an "expected one of" message.
pub(crate) fn comma_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().collect::<Vec<_>>().join(", ")
}

/// Records a reading problem at pointer `p`.
pub(crate) fn push_err(e: &mut Vec<ParseError>, p: &str, rule: Rule, message: impl Into<String>) {
    e.push(ParseError::new(p, rule, message));
}

/// The pointer of member `key` of the value at `p`.
pub(crate) fn child(p: &str, key: &str) -> String {
    format!("{p}/{}", pointer_escape(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_is_known() {
        let mut d = ParseError::new("/a/b", Rule::WrongType, "expected text");
        assert_eq!(d.to_string(), "expected text [wrong-type] (at /a/b)");
        d.file = PathBuf::from("w/air/x.json");
        assert_eq!(
            d.to_string(),
            "w/air/x.json: expected text [wrong-type] (at /a/b)"
        );
        d.locate("{\n  \"a\": {\"c\": 1}\n}");
        assert_eq!(d.pos.map(|p| (p.line, p.column)), Some((2, 8)));
        d.node = Some("defschema a/B@1".into());
        assert_eq!(
            d.to_string(),
            "w/air/x.json:2:8: expected text [wrong-type] (in defschema a/B@1, at /a/b)"
        );
        d.pointer.clear();
        assert_eq!(
            d.to_string(),
            "w/air/x.json:2:8: expected text [wrong-type] (in defschema a/B@1)"
        );
    }

    #[test]
    fn a_10_mb_input_is_quoted_by_a_bounded_prefix() {
        let big = "x".repeat(10_000_000);
        assert_eq!(bounded("short"), "short");
        assert_eq!(bounded(&"é".repeat(QUOTE_CHARS)), "é".repeat(QUOTE_CHARS));
        let b = bounded(&big);
        assert_eq!(b, format!("{}… (10000000 bytes)", "x".repeat(QUOTE_CHARS)));
        // Multi-byte characters are never split.
        let wide = "é".repeat(QUOTE_CHARS + 1);
        assert_eq!(
            bounded(&wide),
            format!("{}… ({} bytes)", "é".repeat(QUOTE_CHARS), wide.len())
        );
        let mut d = ParseError::new(format!("/{big}"), Rule::WrongType, format!("bad {big}!"));
        d.node = Some(format!("defschema {big}"));
        let text = d.to_string();
        assert!(
            text.len() < 2 * (MESSAGE_CHARS + 2 * QUOTE_CHARS),
            "{}",
            text.len()
        );
        assert!(text.contains("… (10000005 bytes) [wrong-type]"), "{text}");
        assert!(text.contains("… (10000010 bytes), at /x"), "{text}");
        assert!(text.ends_with("… (10000001 bytes))"), "{text}");
    }

    #[test]
    fn locate_falls_back_to_the_enclosing_value() {
        let mut d = ParseError::new("/x/y", Rule::MissingField, "m");
        d.locate("[1,\n {\"q\": 2}]");
        assert_eq!(d.pos.map(|p| p.line), Some(1), "the top-level value");
        let mut d = ParseError::new("/1/q", Rule::MissingField, "m");
        d.locate("[1,\n {\"q\": 2}]");
        assert_eq!(d.pos.map(|p| (p.line, p.column)), Some((2, 8)));
    }
}
