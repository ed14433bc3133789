//! A plan's graph: step ids, edges (each joining existing steps, at most once per pair), the
//! topological order, and which steps are ancestors of which; a cycle is reported.

use std::collections::{BTreeSet, HashMap};

use super::Check;
use super::context::{Cx, Site};
use crate::air::nodes::DefPlan;

/// The steps of a plan in order, and their ancestry.
pub(super) struct Graph<'a> {
    /// Each step id's index (the first step of a duplicated id).
    pub(super) ids: HashMap<&'a str, usize>,
    /// A topological order of the steps (declared order among ready steps), or declared
    /// order when the edges form a cycle.
    pub(super) order: Vec<usize>,
    /// `anc[i][j]`: step `j` is a strict ancestor of step `i`. `None` if the plan is cyclic.
    pub(super) anc: Option<Vec<Vec<bool>>>,
}

/// Reads the graph of `plan`, reporting duplicate step ids, edges to unknown steps,
/// duplicate edges and a cycle.
pub(super) fn graph<'a>(cx: &mut Cx<'a, '_>, site: &Site, plan: &'a DefPlan) -> Graph<'a> {
    let n = plan.steps.len();
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        cx.ident(site, &format!("/steps/{i}/id"), "step id", &s.id);
        if let Some(first) = ids.insert(&s.id, i) {
            ids.insert(&s.id, first);
            cx.report(
                site,
                &format!("/steps/{i}/id"),
                Check::DuplicateStep,
                format!("step id `{}` is already used by step {first}", s.id),
            );
        }
    }
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
    let mut edge_of: HashMap<(usize, usize), usize> = HashMap::new();
    for (j, e) in plan.edges.iter().enumerate() {
        let mut end = |id: &str, key: &str| {
            let i = ids.get(id).copied();
            if i.is_none() {
                cx.report(
                    site,
                    &format!("/edges/{j}/{key}"),
                    Check::UnknownStep,
                    format!("the plan has no step `{id}`"),
                );
            }
            i
        };
        let (Some(a), Some(b)) = (end(&e.from, "from"), end(&e.to, "to")) else {
            continue;
        };
        if let Some(first) = seen.insert((a, b), j) {
            seen.insert((a, b), first);
            cx.report(
                site,
                &format!("/edges/{j}"),
                Check::DuplicateEdge,
                format!(
                    "edge {} → {} is already declared (edge {first})",
                    e.from, e.to
                ),
            );
            continue;
        }
        edge_of.insert((a, b), j);
        preds[b].push(a);
        succs[a].push(b);
    }
    // Topological order (Kahn), declared order among ready steps.
    let mut indeg: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &succs[i] {
            indeg[j] -= 1;
            if indeg[j] == 0 {
                ready.insert(j);
            }
        }
    }
    let anc = if order.len() == n {
        let mut anc = vec![vec![false; n]; n];
        for &i in &order {
            let mut row = vec![false; n];
            for &p in &preds[i] {
                row[p] = true;
                for (k, x) in anc[p].iter().enumerate() {
                    if *x {
                        row[k] = true;
                    }
                }
            }
            anc[i] = row;
        }
        Some(anc)
    } else {
        // Walk back from a step left over until a step repeats: that is a cycle.
        let left: Vec<bool> = (0..n).map(|i| indeg[i] > 0).collect();
        let start = left.iter().position(|x| *x).unwrap_or(0);
        let mut path = vec![start];
        let mut pos: HashMap<usize, usize> = HashMap::from([(start, 0)]);
        let mut cur = start;
        let cycle = loop {
            let Some(&p) = preds[cur].iter().find(|&&p| left[p]) else {
                break vec![cur];
            };
            if let Some(&k) = pos.get(&p) {
                let mut c: Vec<usize> = path[k..].to_vec();
                c.push(p);
                c.reverse();
                break c;
            }
            pos.insert(p, path.len());
            path.push(p);
            cur = p;
        };
        let names: Vec<&str> = cycle.iter().map(|&i| plan.steps[i].id.as_str()).collect();
        let edge = cycle
            .windows(2)
            .find_map(|w| edge_of.get(&(w[0], w[1])).copied())
            .unwrap_or(0);
        cx.report(
            site,
            &format!("/edges/{edge}"),
            Check::Cycle,
            format!(
                "the edges form a cycle: {}; a plan is a DAG",
                names.join(" → ")
            ),
        );
        order = (0..n).collect();
        None
    };
    Graph { ids, order, anc }
}
