//! The validation context: where each node is written and how problems are reported there,
//! and the listed world (the nodes the manifest lists) that every check looks things up in.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::{Check, Diagnostic};
use crate::air::canon::Catalog;
use crate::air::expr::{is_expr_keyword, parse_expr};
use crate::air::load::{self, Origin};
use crate::air::name::{Name, check_dotted, check_ident};
use crate::air::nodes::{
    CapGrant, DefEffect, DefModule, DefPlan, ModuleAbi, Node, NodeKind, ReducerAbi, Trigger,
};
use crate::air::types::Type;
use crate::air::types::relate::describe;
use crate::air::value;
use crate::codec::json::Json;

/// Where a node is written, for reports.
#[derive(Clone, Debug)]
pub(super) struct Site {
    pub(super) file: PathBuf,
    /// Pointer of the node in its file; for a built-in, of the manifest entry listing it.
    pub(super) base: String,
    /// `kind name`.
    pub(super) label: String,
    /// A built-in from the catalog: reports go to the manifest entry.
    pub(super) builtin: bool,
}

impl Site {
    pub(super) fn of(node: &Node, origin: &Origin) -> Self {
        Self {
            file: origin.file.clone(),
            base: origin.pointer.clone(),
            label: label(node),
            builtin: false,
        }
    }
}

pub(super) fn label(node: &Node) -> String {
    match node.name() {
        Some(n) => format!("{} {n}", node.kind()),
        None => "manifest".to_owned(),
    }
}

pub(super) fn report(
    out: &mut Vec<Diagnostic>,
    site: &Site,
    rel: &str,
    rule: Check,
    message: String,
) {
    let (pointer, message, node) = if site.builtin {
        (
            site.base.clone(),
            format!("{message} (in the built-in node, at {})", display_ptr(rel)),
            format!("built-in {}", site.label),
        )
    } else {
        (format!("{}{rel}", site.base), message, site.label.clone())
    };
    out.push(Diagnostic {
        file: site.file.clone(),
        pointer,
        pos: None,
        node: Some(node),
        rule,
        message,
    });
}

pub(super) fn display_ptr(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

pub(super) fn builtin_of(kind: NodeKind, name: &Name) -> Option<&'static Node> {
    load::builtin(name.as_str()).filter(|n| n.kind() == kind)
}

// ---------------------------------------------------------------------------------------------
// The listed world

/// A node the manifest lists.
pub(super) struct Listed<'a> {
    pub(super) node: &'a Node,
    pub(super) site: Site,
    pub(super) origin: Option<&'a Origin>,
}

/// The checking context: the listed world and the diagnostics so far.
pub(super) struct Cx<'a, 'o> {
    pub(super) out: &'o mut Vec<Diagnostic>,
    pub(super) cat: Catalog<'a>,
    pub(super) listed: Vec<Listed<'a>>,
    pub(super) by_name: HashMap<(NodeKind, &'a Name), usize>,
    /// Loaded nodes (listed or not), for hints.
    pub(super) loaded: &'o HashMap<(NodeKind, &'a Name), usize>,
    pub(super) grants: HashMap<&'a str, &'a CapGrant>,
    /// Schemas that are recursive or refer (transitively) to unknown or recursive schemas.
    pub(super) unsound: HashSet<&'a Name>,
    pub(super) triggers: HashMap<&'a Name, Vec<&'a Trigger>>,
}

impl<'a> Cx<'a, '_> {
    pub(super) fn report(&mut self, site: &Site, rel: &str, rule: Check, message: String) {
        report(self.out, site, rel, rule, message);
    }

    pub(super) fn node(&self, kind: NodeKind, name: &Name) -> Option<&'a Node> {
        self.by_name
            .get(&(kind, name))
            .map(|&i| self.listed[i].node)
    }

    /// Why a name that the manifest does not list might have been meant.
    pub(super) fn hint(&self, kind: NodeKind, name: &Name) -> String {
        if self.loaded.contains_key(&(kind, name)) || builtin_of(kind, name).is_some() {
            return " (it is defined, but the manifest does not list it)".to_owned();
        }
        match NodeKind::ALL
            .iter()
            .find(|k| self.by_name.contains_key(&(**k, name)))
        {
            Some(k) => format!(" (there is a {k} of that name)"),
            None => String::new(),
        }
    }

    pub(super) fn schema(&mut self, site: &Site, rel: &str, name: &Name) -> Option<&'a Type> {
        if self.unsound.contains(name) {
            // Reported where the schema is declared; its users are not checked against it.
            return None;
        }
        let t = self.cat.schema(name);
        if t.is_none() {
            let hint = self.hint(NodeKind::DefSchema, name);
            self.report(
                site,
                rel,
                Check::UnknownSchema,
                format!("unknown schema {name}{hint}"),
            );
        }
        t
    }

    /// Whether `t` can be used to read values: every schema it refers to exists and is sound
    /// (unsound schemas are dropped from the catalog).
    pub(super) fn type_ok(&self, t: &Type) -> bool {
        t.refs().iter().all(|(_, n)| self.cat.schema(n).is_some())
    }

    pub(super) fn module(&mut self, site: &Site, rel: &str, name: &Name) -> Option<&'a DefModule> {
        match self.node(NodeKind::DefModule, name) {
            Some(Node::DefModule(m)) => Some(m),
            _ => {
                let hint = self.hint(NodeKind::DefModule, name);
                self.report(
                    site,
                    rel,
                    Check::UnknownModule,
                    format!("unknown module {name}{hint}"),
                );
                None
            }
        }
    }

    pub(super) fn reducer(
        &mut self,
        site: &Site,
        rel: &str,
        name: &Name,
    ) -> Option<(&'a DefModule, &'a ReducerAbi)> {
        let m = self.module(site, rel, name)?;
        match &m.abi {
            ModuleAbi::Reducer(r) => Some((m, r)),
            ModuleAbi::Pure(_) => {
                self.report(
                    site,
                    rel,
                    Check::NotAReducer,
                    format!("module {name} is a pure module, not a reducer"),
                );
                None
            }
        }
    }

    pub(super) fn plan(
        &mut self,
        site: &Site,
        rel: &str,
        name: &Name,
        rule: Check,
    ) -> Option<&'a DefPlan> {
        match self.node(NodeKind::DefPlan, name) {
            Some(Node::DefPlan(p)) => Some(p),
            _ => {
                let hint = self.hint(NodeKind::DefPlan, name);
                self.report(site, rel, rule, format!("unknown plan {name}{hint}"));
                None
            }
        }
    }

    pub(super) fn effect(&mut self, site: &Site, rel: &str, kind: &str) -> Option<&'a DefEffect> {
        let e = self.cat.effect(kind);
        if e.is_none() {
            self.report(
                site,
                rel,
                Check::UnknownEffect,
                format!("unknown effect kind `{kind}`: no effect the manifest lists declares it"),
            );
        }
        e
    }

    pub(super) fn grant(&mut self, site: &Site, rel: &str, name: &str) -> Option<&'a CapGrant> {
        let g = self.grants.get(name).copied();
        if g.is_none() {
            self.report(
                site,
                rel,
                Check::UnknownGrant,
                format!("unknown cap grant `{name}`: `defaults.cap_grants` does not define it"),
            );
        }
        g
    }

    pub(super) fn ident(&mut self, site: &Site, rel: &str, what: &'static str, s: &str) {
        if let Err(e) = check_ident(what, s) {
            self.report(site, rel, Check::BadIdent, e.to_string());
        }
    }

    pub(super) fn dotted(&mut self, site: &Site, rel: &str, what: &'static str, s: &str) {
        if let Err(e) = check_dotted(what, s) {
            self.report(site, rel, Check::BadDotted, e.to_string());
        }
    }

    /// Checks a literal against its type (when the type is usable).
    pub(super) fn literal(&mut self, site: &Site, rel: &str, j: &Json, t: &Type) {
        if !self.type_ok(t) {
            return;
        }
        if let Err(e) = value::from_json(j, t, &self.cat) {
            // JSON shaped like an expression that failed to parse as one was most likely
            // meant as an expression: its parse error says what is really wrong.
            let mut expr_errs = Vec::new();
            let looks_like_expr = matches!(j, Json::Object(m)
                if m.len() == 1 && is_expr_keyword(&m[0].0))
                && parse_expr(j, "", &mut expr_errs).is_none();
            if looks_like_expr && !expr_errs.is_empty() {
                for x in expr_errs {
                    self.report(
                        site,
                        &format!("{rel}{}", x.pointer),
                        Check::LiteralType,
                        format!(
                            "not a valid expression ({}), and as a literal it does not fit {}",
                            x.message,
                            describe(t)
                        ),
                    );
                }
                return;
            }
            self.report(
                site,
                &format!("{rel}{}", e.path),
                Check::LiteralType,
                format!("the literal does not fit {}: {}", describe(t), e.message),
            );
        }
    }
}

/// Whether the event schema `family` (a reducer's event type) can carry events of schema
/// `event`: it is that schema, an alias of it, or a variant with an alternative of it.
pub(super) fn in_family(event: &Name, family: &Name, s: &Catalog<'_>) -> bool {
    if event == family {
        return true;
    }
    match s.schema(family) {
        Some(Type::Ref(r)) => r == event,
        Some(Type::Variant(tags)) => tags
            .values()
            .any(|t| matches!(t, Type::Ref(r) if r == event)),
        _ => false,
    }
}
