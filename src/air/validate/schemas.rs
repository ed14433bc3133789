//! Schemas as a set: dangling and recursive references, and every schema that depends on one
//! (unsound schemas are dropped from the catalog, so their users are not checked against them).

use std::collections::{BTreeMap, HashMap, HashSet};

use super::Check;
use super::context::{Cx, Site, report};
use crate::air::name::Name;
use crate::air::nodes::{Node, NodeKind};
use crate::air::types::{SchemaProblem, Type, check_recursion};

pub(super) fn check_schemas(cx: &mut Cx<'_, '_>) {
    let mut set: BTreeMap<Name, Type> = BTreeMap::new();
    let mut sites: HashMap<&Name, Site> = HashMap::new();
    for l in &cx.listed {
        if let Node::DefSchema(s) = l.node {
            set.insert(s.name.clone(), s.ty.clone());
            sites.insert(&s.name, l.site.clone());
        }
    }
    let mut bad: HashSet<Name> = HashSet::new();
    for p in check_recursion(&set) {
        match p {
            SchemaProblem::Dangling {
                schema,
                pointer,
                target,
            } => {
                let hint = cx.hint(NodeKind::DefSchema, &target);
                if let Some(site) = sites.get(&schema) {
                    report(
                        cx.out,
                        site,
                        &format!("/type{pointer}"),
                        Check::UnknownSchema,
                        format!("unknown schema {target}{hint}"),
                    );
                }
                bad.insert(schema);
            }
            SchemaProblem::Recursive { schema, cycle } => {
                if let Some(site) = sites.get(&schema) {
                    let path: Vec<&str> = cycle.iter().map(Name::as_str).collect();
                    report(
                        cx.out,
                        site,
                        "/type",
                        Check::RecursiveType,
                        format!(
                            "schema {schema} refers to itself ({}); AIR types are not recursive",
                            path.join(" → ")
                        ),
                    );
                }
                bad.insert(schema);
            }
        }
    }
    // Everything that reaches a bad schema is unsound too.
    let mut users: HashMap<&Name, Vec<&Name>> = HashMap::new();
    for (name, ty) in &set {
        for (_, target) in ty.refs() {
            users.entry(target).or_default().push(name);
        }
    }
    let mut unsound: HashSet<&Name> = HashSet::new();
    let mut stack: Vec<&Name> = set.keys().filter(|n| bad.contains(*n)).collect();
    while let Some(n) = stack.pop() {
        if unsound.insert(n) {
            stack.extend(users.get(n).into_iter().flatten().copied());
        }
    }
    let unsound: HashSet<Name> = unsound.into_iter().cloned().collect();
    for l in &cx.listed {
        if let Node::DefSchema(s) = l.node
            && unsound.contains(&s.name)
        {
            cx.unsound.insert(&s.name);
            cx.cat.forget_schema(&s.name);
        }
    }
}
