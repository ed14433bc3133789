//! Named schemas: looking types up by name, following references, and the checks on a set of
//! schemas as a whole (dangling and recursive references).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;

use super::Type;
use crate::air::name::Name;

/// A set of named schemas, looked up by name.
pub trait Schemas {
    /// The type of the schema named `name`, if there is one.
    fn get(&self, name: &Name) -> Option<&Type>;
}

impl Schemas for BTreeMap<Name, Type> {
    fn get(&self, name: &Name) -> Option<&Type> {
        BTreeMap::get(self, name)
    }
}

impl<S: BuildHasher> Schemas for HashMap<Name, Type, S> {
    fn get(&self, name: &Name) -> Option<&Type> {
        HashMap::get(self, name)
    }
}

/// No schemas at all: for types without references.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSchemas;

impl Schemas for NoSchemas {
    fn get(&self, _: &Name) -> Option<&Type> {
        None
    }
}

/// Why a reference does not lead to a type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No schema has this name.
    #[error("unknown schema {0}")]
    Unknown(Name),
    /// The references form a loop without reaching a type: `a → b → a`.
    #[error("schema {} is an alias of itself ({})", .0[0], join_names(.0))]
    Cycle(Vec<Name>),
}

fn join_names(names: &[Name]) -> String {
    names
        .iter()
        .map(Name::as_str)
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Follows references from `ty` until a type that is not a reference.
///
/// # Errors
/// [`ResolveError`] if a name is unknown or the references loop.
pub fn resolve<'a>(ty: &'a Type, schemas: &'a dyn Schemas) -> Result<&'a Type, ResolveError> {
    let mut seen: Vec<&Name> = Vec::new();
    let mut t = ty;
    while let Type::Ref(n) = t {
        if let Some(i) = seen.iter().position(|s| *s == n) {
            let mut cycle: Vec<Name> = seen[i..].iter().map(|n| (*n).clone()).collect();
            cycle.push(n.clone());
            return Err(ResolveError::Cycle(cycle));
        }
        seen.push(n);
        t = schemas
            .get(n)
            .ok_or_else(|| ResolveError::Unknown(n.clone()))?;
    }
    Ok(t)
}

/// A problem of a set of schemas as a whole, found by [`check_recursion`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SchemaProblem {
    /// The schema refers to itself, directly or through others. AIR v1 has no recursive
    /// types.
    #[error("schema {schema} is recursive: {}", join_names(cycle))]
    Recursive {
        /// The schema.
        schema: Name,
        /// A shortest cycle of references from the schema back to itself; starts and ends
        /// with `schema`.
        cycle: Vec<Name>,
    },
    /// The schema refers to a name that is not in the set.
    #[error("schema {schema} refers to unknown schema {target} at `{pointer}`")]
    Dangling {
        /// The schema holding the reference.
        schema: Name,
        /// The JSON pointer of the reference's name within the schema's type.
        pointer: String,
        /// The unknown name.
        target: Name,
    },
}

/// Checks a set of schemas as a whole: reports every dangling reference (in order of schema
/// name, then of position), then every schema that refers to itself directly or
/// transitively (in order of name).
#[must_use]
pub fn check_recursion(schemas: &BTreeMap<Name, Type>) -> Vec<SchemaProblem> {
    let names: Vec<&Name> = schemas.keys().collect();
    let index: HashMap<&Name, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut problems = Vec::new();
    let mut edges: Vec<Vec<usize>> = Vec::with_capacity(names.len());
    for (name, ty) in schemas {
        let mut out = BTreeSet::new();
        for (pointer, target) in ty.refs() {
            match index.get(target) {
                Some(&j) => {
                    out.insert(j);
                }
                None => problems.push(SchemaProblem::Dangling {
                    schema: name.clone(),
                    pointer,
                    target: target.clone(),
                }),
            }
        }
        edges.push(out.into_iter().collect());
    }
    let comp = strongly_connected(&edges);
    for (i, &c) in comp.iter().enumerate() {
        let cyclic = edges[i].contains(&i) || comp.iter().filter(|&&d| d == c).count() > 1;
        if !cyclic {
            continue;
        }
        // Breadth-first search inside the component for the shortest way back to `i`.
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue: VecDeque<usize> = VecDeque::new();
        queue.push_back(i);
        let mut last = None;
        'search: while let Some(u) = queue.pop_front() {
            for &w in &edges[u] {
                if comp[w] != c {
                    continue;
                }
                if w == i {
                    last = Some(u);
                    break 'search;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(w) {
                    e.insert(u);
                    queue.push_back(w);
                }
            }
        }
        // Walk back from the node that closes the cycle to `i`, then turn the walk around.
        let mut back = Vec::new();
        let mut u = last.unwrap_or(i);
        while u != i {
            back.push(u);
            u = parent.get(&u).copied().unwrap_or(i);
        }
        back.reverse();
        let mut cycle = vec![names[i].clone()];
        cycle.extend(back.iter().map(|&k| names[k].clone()));
        cycle.push(names[i].clone());
        problems.push(SchemaProblem::Recursive {
            schema: names[i].clone(),
            cycle,
        });
    }
    problems
}

/// The strongly connected component of every node (Tarjan's algorithm, without recursion).
fn strongly_connected(edges: &[Vec<usize>]) -> Vec<usize> {
    const NONE: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![NONE; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![NONE; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut ncomp = 0;
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        // Each frame: node and the position of the next edge to follow.
        let mut frames: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(top) = frames.last_mut() {
            let (v, e) = *top;
            if let Some(&w) = edges[v].get(e) {
                top.1 += 1;
                if index[w] == NONE {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    frames.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(u, _)) = frames.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = ncomp;
                    if w == v {
                        break;
                    }
                }
                ncomp += 1;
            }
        }
    }
    comp
}
