//! The stage DAG.
//!
//! An edge A → B exists when B depends on a path that A outputs, a path
//! inside one of A's output directories, or a directory that contains one of
//! A's outputs. Building the graph also checks what involves several stages:
//! two stages writing the same path, an output inside another stage's output,
//! a stage reading its own output, and cycles (reported as the cycle itself,
//! `a → b → a`). Stage order is topological, ties broken by declaration order
//! so that listings and runs are stable.

use std::collections::{BTreeSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::paths::RelPath;
use crate::spec::diagnostic::did_you_mean;
use crate::spec::{Diagnostic, Pipeline, PipelineError, PIPELINE_FILE};

#[derive(Debug, Clone)]
pub struct Dag {
    graph: DiGraph<usize, ()>,
    /// Stage indices (into `Pipeline::stages`) in topological order.
    order: Vec<usize>,
}

/// Which stages a command acts on, besides the named ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The targets and everything upstream of them (the default).
    WithUpstream,
    /// The targets only (`-s/--single-item`).
    Single,
    /// The targets and everything downstream of them (`--downstream`).
    WithDownstream,
}

impl Dag {
    pub fn build(p: &Pipeline) -> Result<Dag, PipelineError> {
        let mut diags = Vec::new();
        let n = p.stages.len();
        let mut graph = DiGraph::with_capacity(n, n);
        let nodes: Vec<NodeIndex> = (0..n).map(|i| graph.add_node(i)).collect();

        // Outputs: one writer per path, no output inside another.
        let mut outs: Vec<(&RelPath, usize)> = p
            .stages
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.outs.iter().map(move |o| (&o.path, i)))
            .collect();
        outs.sort();
        let mut reported = BTreeSet::new();
        for (a, &(pa, sa)) in outs.iter().enumerate() {
            for (b, &(pb, sb)) in outs.iter().enumerate().skip(a + 1) {
                if !pb.as_str().starts_with(pa.as_str()) {
                    break; // sorted: paths with `pa` as a prefix are contiguous
                }
                if !pb.is_within(pa) || reported.contains(&b) {
                    continue;
                }
                let (sa_name, sb_name) = (&p.stages[sa].name, &p.stages[sb].name);
                let d = if pa == pb && sa != sb {
                    p.diagnostic_at(sb_name, pb.as_str(), format!("`{pb}` is also an output of stage `{sa_name}`"))
                        .hint("each path has one producer: rename one of the outputs, or merge the stages")
                } else if pa == pb {
                    continue; // same stage listing a path twice is reported by the spec
                } else if sa == sb {
                    p.diagnostic_at(
                        sb_name,
                        pb.as_str(),
                        format!("output `{pb}` is inside its other output `{pa}`"),
                    )
                    .hint(format!("list only `{pa}`"))
                } else {
                    p.diagnostic_at(
                        sb_name,
                        pb.as_str(),
                        format!("output `{pb}` is inside `{pa}`, an output of stage `{sa_name}`"),
                    )
                    .hint("outputs of different stages must not nest: write to a path outside it")
                };
                reported.insert(b);
                diags.push(d);
            }
        }

        for (b, stage) in p.stages.iter().enumerate() {
            for dep in &stage.deps {
                if let Some(own) = stage.outs.iter().find(|o| o.path.overlaps(dep)) {
                    diags.push(
                        p.diagnostic_at(&stage.name, dep.as_str(), format!("depends on `{dep}`, which overlaps its own output `{}`", own.path))
                            .hint("a stage cannot read what it writes; use `persist: true` on the output if it updates it in place, and drop the dep"),
                    );
                    continue;
                }
                for (a, other) in p.stages.iter().enumerate() {
                    if a != b
                        && other.outs.iter().any(|o| o.path.overlaps(dep))
                        && !graph.contains_edge(nodes[a], nodes[b])
                    {
                        graph.add_edge(nodes[a], nodes[b], ());
                    }
                }
            }
        }
        if !diags.is_empty() {
            return Err(PipelineError { diagnostics: diags });
        }

        let order = topological_order(&graph, n).map_err(|cycle| {
            let names: Vec<&str> = cycle.iter().map(|&i| p.stages[i].name.as_str()).collect();
            let first = names[0];
            PipelineError::one(
                p.diagnostic(first, format!("the stages form a cycle: {} → {first}", names.join(" → ")))
                    .hint("a stage cannot depend, directly or through others, on its own outputs; remove one of these deps"),
            )
        })?;
        Ok(Dag { graph, order })
    }

    /// Stage indices in topological order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Direct upstream stages of `stage`.
    pub fn parents(&self, stage: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(stage), petgraph::Direction::Incoming)
            .map(|n| self.graph[n])
            .collect();
        v.sort_unstable();
        v
    }

    /// Direct downstream stages of `stage`.
    pub fn children(&self, stage: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(stage), petgraph::Direction::Outgoing)
            .map(|n| self.graph[n])
            .collect();
        v.sort_unstable();
        v
    }

    /// The stages named by `targets` plus those `mode` adds, in topological
    /// order. No targets means every stage. A target `name` also selects the
    /// generated stages `name@…`.
    pub fn select(
        &self,
        p: &Pipeline,
        targets: &[String],
        mode: Selection,
    ) -> Result<Vec<usize>, PipelineError> {
        if targets.is_empty() {
            return Ok(self.order.clone());
        }
        let mut picked = BTreeSet::new();
        let mut diags = Vec::new();
        for t in targets {
            let before = picked.len();
            for (i, s) in p.stages.iter().enumerate() {
                if &s.name == t || s.name.split_once('@').is_some_and(|(base, _)| base == t) {
                    picked.insert(i);
                }
            }
            if picked.len() == before {
                let names = p.stages.iter().map(|s| s.name.as_str());
                let mut d = Diagnostic::new(PIPELINE_FILE, format!("no stage named `{t}`"));
                d = match did_you_mean(t, names) {
                    Some(s) => d.hint(format!("did you mean `{s}`?")),
                    None => d.hint("`pipe dag` lists the stages"),
                };
                diags.push(d);
            }
        }
        if !diags.is_empty() {
            return Err(PipelineError { diagnostics: diags });
        }
        let dir = match mode {
            Selection::Single => None,
            Selection::WithUpstream => Some(petgraph::Direction::Incoming),
            Selection::WithDownstream => Some(petgraph::Direction::Outgoing),
        };
        if let Some(dir) = dir {
            let mut queue: VecDeque<usize> = picked.iter().copied().collect();
            while let Some(i) = queue.pop_front() {
                for n in self.graph.neighbors_directed(NodeIndex::new(i), dir) {
                    if picked.insert(self.graph[n]) {
                        queue.push_back(self.graph[n]);
                    }
                }
            }
        }
        Ok(self
            .order
            .iter()
            .copied()
            .filter(|i| picked.contains(i))
            .collect())
    }
}

/// Kahn's algorithm with the lowest declaration index first; on a cycle,
/// returns one cycle as stage indices.
fn topological_order(graph: &DiGraph<usize, ()>, n: usize) -> Result<Vec<usize>, Vec<usize>> {
    let mut indegree: Vec<usize> = (0..n)
        .map(|i| {
            graph
                .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for c in graph.neighbors_directed(NodeIndex::new(i), petgraph::Direction::Outgoing) {
            indegree[c.index()] -= 1;
            if indegree[c.index()] == 0 {
                ready.insert(c.index());
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    // Walk backwards along unfinished edges until a node repeats.
    let start = (0..n)
        .find(|&i| indegree[i] > 0)
        .expect("a node in the cycle");
    let mut path = vec![start];
    let mut at = start;
    loop {
        let prev = graph
            .neighbors_directed(NodeIndex::new(at), petgraph::Direction::Incoming)
            .map(|p| p.index())
            .filter(|&p| indegree[p] > 0)
            .min()
            .expect("a node in a cycle has an unfinished parent");
        if let Some(pos) = path.iter().position(|&x| x == prev) {
            let mut cycle: Vec<usize> = path[pos..].to_vec();
            cycle.reverse();
            // Start the report at the lowest-declared stage for stability.
            let min_at = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, &s)| s)
                .map(|(i, _)| i)
                .unwrap_or(0);
            cycle.rotate_left(min_at);
            return Err(cycle);
        }
        path.push(prev);
        at = prev;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(yaml: &str) -> Result<Pipeline, PipelineError> {
        let dir = tempfile::tempdir().unwrap();
        crate::spec::resolve::resolve(dir.path(), yaml)
    }

    fn names(p: &Pipeline, idx: &[usize]) -> Vec<String> {
        idx.iter().map(|&i| p.stages[i].name.clone()).collect()
    }

    const CHAIN: &str = "stages:\n  c:\n    cmd: x\n    deps: [b.txt]\n    outs: [c.txt]\n  a:\n    cmd: x\n    outs: [data]\n  b:\n    cmd: x\n    deps: [data/part.txt]\n    outs: [b.txt]\n  other:\n    cmd: x\n    outs: [o.txt]\n";

    #[test]
    fn orders_by_dependency_then_declaration() {
        let p = pipeline(CHAIN).unwrap();
        let dag = Dag::build(&p).unwrap();
        assert_eq!(names(&p, dag.order()), ["a", "b", "c", "other"]);
    }

    #[test]
    fn selects_upstream_single_and_downstream() {
        let p = pipeline(CHAIN).unwrap();
        let dag = Dag::build(&p).unwrap();
        let t = vec!["b".to_string()];
        assert_eq!(
            names(&p, &dag.select(&p, &t, Selection::WithUpstream).unwrap()),
            ["a", "b"]
        );
        assert_eq!(
            names(&p, &dag.select(&p, &t, Selection::Single).unwrap()),
            ["b"]
        );
        assert_eq!(
            names(&p, &dag.select(&p, &t, Selection::WithDownstream).unwrap()),
            ["b", "c"]
        );
        let err = dag
            .select(&p, &["bb".into()], Selection::Single)
            .unwrap_err();
        assert!(err.to_string().contains("did you mean `b`"), "{err}");
    }

    #[test]
    fn reports_a_cycle_by_its_stages() {
        let p = pipeline("stages:\n  a:\n    cmd: x\n    deps: [b.txt]\n    outs: [a.txt]\n  b:\n    cmd: x\n    deps: [a.txt]\n    outs: [b.txt]\n").unwrap();
        let err = Dag::build(&p).unwrap_err().to_string();
        assert!(err.contains("cycle: a → b → a"), "{err}");
        assert!(err.starts_with("pipeline.yaml:2:"), "{err}");
    }

    #[test]
    fn rejects_two_writers_and_nested_outputs() {
        let p = pipeline("stages:\n  a:\n    cmd: x\n    outs: [out]\n  b:\n    cmd: x\n    outs: [out]\n  c:\n    cmd: x\n    outs: [out/inner.txt]\n").unwrap();
        let err = Dag::build(&p).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`out` is also an output of stage `a`"),
            "{text}"
        );
        assert!(
            text.contains("output `out/inner.txt` is inside `out`"),
            "{text}"
        );
    }
}
