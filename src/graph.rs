//! The stage DAG.
//!
//! An edge A → B exists when B depends on a path that A outputs, a path
//! inside one of A's output directories, or a directory that contains one of
//! A's outputs. Building the graph also checks what involves several stages:
//! two stages writing the same path, an output inside another stage's output,
//! a stage reading its own output, and cycles (reported as the cycle itself,
//! `a → b → a`). Stage order is topological, ties broken by declaration order
//! so that listings and runs are stable.
//!
//! Building is n·log n in the number of paths: every output goes into one
//! sorted list, where the outputs at a path or above it are found by binary
//! search (one per ancestor) and the outputs inside it are the contiguous
//! run of paths starting with `path/`. No dep is compared with every output.
//! The number of edges is capped ([`MAX_EDGES`]): it is the one size that
//! can grow with the square of the number of stages.

use std::collections::{BTreeSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::paths::RelPath;
use crate::spec::diagnostic::did_you_mean;
use crate::spec::{Diagnostic, Pipeline, PipelineError};

/// The most edges (stage → stage dependencies) a graph may have. Many
/// stages that each read a directory many others write make a number of
/// edges that grows with the product of the two counts; a few lines of
/// `foreach` could ask for billions.
pub const MAX_EDGES: usize = 2_000_000;

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

        // Every output, sorted by path: a path's ancestors are found by
        // binary search, and the paths inside it are one contiguous run.
        let mut outs: Vec<(&RelPath, usize)> = p
            .stages
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.outs.iter().map(move |o| (&o.path, i)))
            .collect();
        outs.sort();
        let outputs = Outputs(&outs);

        // One writer per path, no output inside another.
        for (b, &(pb, sb)) in outs.iter().enumerate() {
            let sb_name = &p.stages[sb].name;
            let d = if let Some((pa, sa)) = outputs.topmost_ancestor(pb) {
                if sa == sb {
                    p.diagnostic_at(
                        sb_name,
                        pb.as_str(),
                        format!("output `{pb}` is inside its other output `{pa}`"),
                    )
                    .hint(format!("list only `{pa}`"))
                } else {
                    let sa_name = &p.stages[sa].name;
                    p.diagnostic_at(
                        sb_name,
                        pb.as_str(),
                        format!("output `{pb}` is inside `{pa}`, an output of stage `{sa_name}`"),
                    )
                    .hint("outputs of different stages must not nest: write to a path outside it")
                }
            } else if let Some(&(_, sa)) = outs[outputs.first(pb.as_str())..b]
                .iter()
                .find(|(_, sa)| *sa != sb)
            {
                // The same stage listing a path twice is reported by the spec.
                let sa_name = &p.stages[sa].name;
                p.diagnostic_at(
                    sb_name,
                    pb.as_str(),
                    format!("`{pb}` is also an output of stage `{sa_name}`"),
                )
                .hint("each path has one producer: rename one of the outputs, or merge the stages")
            } else {
                continue;
            };
            diags.push(d);
        }

        // An edge from each stage writing a path that overlaps a dep.
        let mut edges: Vec<(usize, usize)> = Vec::new();
        let mut producers: Vec<(&RelPath, usize)> = Vec::new();
        for (b, stage) in p.stages.iter().enumerate() {
            let first_edge = edges.len();
            for dep in &stage.deps {
                producers.clear();
                producers.extend(outputs.overlapping(dep));
                if let Some((own, _)) = producers.iter().find(|&&(_, a)| a == b) {
                    diags.push(
                        p.diagnostic_at(&stage.name, dep.as_str(), format!("depends on `{dep}`, which overlaps its own output `{own}`"))
                            .hint("a stage cannot read what it writes; use `persist: true` on the output if it updates it in place, and drop the dep"),
                    );
                    continue;
                }
                edges.extend(producers.iter().map(|&(_, a)| (a, b)));
                if edges.len() > MAX_EDGES {
                    // Several writers of one path, or overlapping deps, may
                    // count twice: count this stage's once.
                    edges[first_edge..].sort_unstable();
                    let unique = first_edge + dedup_len(&mut edges[first_edge..]);
                    edges.truncate(unique);
                    if edges.len() > MAX_EDGES {
                        return Err(too_many_edges(p, b).into());
                    }
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        for (a, b) in edges {
            graph.add_edge(nodes[a], nodes[b], ());
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
                let mut d = Diagnostic::new(p.file_name(), format!("no stage named `{t}`"));
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

/// How command-line targets are read (see [`expand_targets`]).
#[derive(Debug, Clone, Default)]
pub struct TargetSpec {
    /// `-R/--recursive`: each target is a directory, and means the stages
    /// of the pipeline files inside it.
    pub recursive: bool,
    /// `--glob`: the stage name of each target is a wildcard pattern
    /// (`train*`, `sub/dvc.yaml:eval-?`), matched against stage names.
    pub glob: bool,
    /// The directory the command runs in, relative to the project root:
    /// a bare stage name means a stage of the `dvc.yaml` there, as in DVC.
    pub cwd: RelPath,
}

/// Turns targets as a DVC user writes them into the stage (or group)
/// names [`Dag::select`] takes:
///
/// | target | stages |
/// | --- | --- |
/// | `train`, `train@cnn` | that stage (or the stages `train@…`) of the pipeline file in the current directory, or else of the root one |
/// | `sub/dvc.yaml:train` | stage `train` of `sub/dvc.yaml` (named so) |
/// | `sub/dvc.yaml` | every stage of that file |
/// | `data/features` | the stage whose output that is (when no stage has that name) |
/// | `-R sub` | every stage of the pipeline files inside `sub` |
/// | `--glob 'train*'` | every stage of the file whose name matches |
///
/// Paths are relative to the current directory. A target that matches
/// nothing is passed on as it is, for [`Dag::select`] to report.
pub fn expand_targets(
    p: &Pipeline,
    targets: &[String],
    spec: &TargetSpec,
) -> Result<Vec<String>, PipelineError> {
    let mut out = Vec::new();
    let mut diags = Vec::new();
    let is_file_name = |t: &str| {
        let name = t.rsplit('/').next().unwrap_or(t);
        name == crate::spec::DVC_FILE || name == crate::spec::PIPELINE_FILE
    };
    let file_of = |path: &str| -> Option<usize> {
        let rel = RelPath::parse(path, Some(&spec.cwd)).ok()?;
        p.files.iter().position(|f| f.path == rel)
    };
    // The file a bare name refers to: the one in the current directory,
    // else the root one.
    let here = p
        .files
        .iter()
        .position(|f| f.dir() == spec.cwd)
        .or_else(|| p.files.iter().position(|f| f.dir().is_root()));
    let names_in = |file: usize| {
        p.stages
            .iter()
            .filter(move |s| s.file == file)
            .map(|s| s.name.clone())
    };
    for t in targets {
        if spec.recursive {
            let Ok(dir) = RelPath::parse(t, Some(&spec.cwd)) else {
                diags.push(Diagnostic::new(
                    p.file_name(),
                    format!("-R {t}: not a directory of the project"),
                ));
                continue;
            };
            let files: Vec<usize> = (0..p.files.len())
                .filter(|&i| p.files[i].dir().is_within(&dir))
                .collect();
            if files.is_empty() {
                diags.push(
                    Diagnostic::new(p.file_name(), format!("-R {t}: no pipeline file in `{t}`"))
                        .hint("give a directory that holds a dvc.yaml, or drop -R to name stages"),
                );
            }
            for f in files {
                out.extend(names_in(f));
            }
            continue;
        }
        let (file, name) = match t.rsplit_once(':') {
            Some((file, name)) if is_file_name(file) => match file_of(file) {
                Some(i) => (Some(i), Some(name)),
                None => {
                    diags.push(
                        Diagnostic::new(
                            p.file_name(),
                            format!("`{file}` is not a pipeline file of this project"),
                        )
                        .hint("`pipe dag` lists the stages and the files they come from"),
                    );
                    continue;
                }
            },
            _ if is_file_name(t) => match file_of(t) {
                Some(i) => (Some(i), None),
                None => (None, Some(t.as_str())),
            },
            _ => (here, Some(t.as_str())),
        };
        let Some(file) = file else {
            out.push(t.clone());
            continue;
        };
        let prefix = &p.files[file].prefix;
        match name {
            None => out.extend(names_in(file)),
            Some(pattern) if spec.glob => {
                let matched: Vec<String> = match glob::Pattern::new(pattern) {
                    Ok(pat) => names_in(file)
                        .filter(|n| pat.matches(n.strip_prefix(prefix.as_str()).unwrap_or(n)))
                        .collect(),
                    Err(e) => {
                        diags.push(Diagnostic::new(
                            p.file_name(),
                            format!("--glob `{pattern}`: {e}"),
                        ));
                        continue;
                    }
                };
                if matched.is_empty() {
                    diags.push(
                        Diagnostic::new(p.files[file].path.as_str(), format!("no stage matches `{pattern}`"))
                            .hint("`*` matches any text and `?` one character; `pipe dag` lists the stages"),
                    );
                }
                out.extend(matched);
            }
            Some(name) => {
                let full = format!("{prefix}{name}");
                let known = p.stage(&full).is_some()
                    || p.stages
                        .iter()
                        .any(|s| s.name.split_once('@').is_some_and(|(base, _)| base == full));
                if known {
                    out.push(full);
                    continue;
                }
                // An output path names the stage that writes it.
                let producer = RelPath::parse(name, Some(&spec.cwd)).ok().and_then(|path| {
                    p.stages
                        .iter()
                        .find(|s| s.outs.iter().any(|o| o.path == path))
                });
                match producer {
                    Some(s) => out.push(s.name.clone()),
                    None => out.push(full),
                }
            }
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(PipelineError { diagnostics: diags })
    }
}

/// Every output of the pipeline with its stage, sorted by path.
struct Outputs<'a>(&'a [(&'a RelPath, usize)]);

impl<'a> Outputs<'a> {
    /// The index of the first output at or after `path` in sorted order.
    fn first(&self, path: &str) -> usize {
        self.0.partition_point(|(p, _)| p.as_str() < path)
    }

    /// The outputs written exactly at `path`.
    fn at(&self, path: &str) -> &'a [(&'a RelPath, usize)] {
        let from = self.first(path);
        let len = self.0[from..]
            .iter()
            .take_while(|(p, _)| p.as_str() == path)
            .count();
        &self.0[from..from + len]
    }

    /// The output highest above `path` (strictly), if one is.
    fn topmost_ancestor(&self, path: &RelPath) -> Option<(&'a RelPath, usize)> {
        let text = path.as_str();
        text.match_indices('/')
            .find_map(|(i, _)| self.at(&text[..i]).first())
            .map(|&(p, s)| (p, s))
    }

    /// The outputs that are `path`, lie above it or inside it, with their
    /// stages: those above it first, then those at it, then those inside it
    /// (the run of paths that start with `path/`).
    fn overlapping<'p>(
        &'p self,
        path: &'p RelPath,
    ) -> impl Iterator<Item = (&'a RelPath, usize)> + 'p {
        let text = path.as_str();
        let above = text
            .match_indices('/')
            .flat_map(move |(i, _)| self.at(&text[..i]).iter());
        // Paths inside `text` sort right after `text/` (which is not a
        // path itself: paths have no trailing `/`).
        let from = self
            .0
            .partition_point(|(p, _)| below_inside(p.as_str(), text));
        let inside = self.0[from..]
            .iter()
            .take_while(move |(p, _)| is_inside(p.as_str(), text));
        above
            .chain(self.at(text).iter())
            .chain(inside)
            .map(|&(p, s)| (p, s))
    }
}

/// `path` lies inside `dir` (`dir/…`).
fn is_inside(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// `path` sorts before `dir/`, without building `dir/`.
fn below_inside(path: &str, dir: &str) -> bool {
    match path.strip_prefix(dir) {
        Some(rest) => rest.as_bytes().first().is_none_or(|&b| b < b'/'),
        None => path < dir,
    }
}

/// The number of distinct items at the start of `items` (sorted) once
/// duplicates are moved to its end.
fn dedup_len(items: &mut [(usize, usize)]) -> usize {
    let mut kept = 0;
    for i in 0..items.len() {
        if kept == 0 || items[i] != items[kept - 1] {
            items.swap(kept, i);
            kept += 1;
        }
    }
    kept
}

/// The error for a stage whose deps take the graph past [`MAX_EDGES`].
fn too_many_edges(p: &Pipeline, stage: usize) -> Diagnostic {
    let name = &p.stages[stage].name;
    p.diagnostic(
        name,
        format!(
            "its deps take the pipeline past {} dependencies between stages, the most pipe handles",
            crate::spec::limits::thousands(MAX_EDGES as u128)
        ),
    )
    .hint("put one stage between the many writers and the many readers: it reads the writers' outputs and writes one output that the readers depend on")
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
    fn links_deps_to_outputs_above_at_and_inside_them_only() {
        // `use` reads the directory `data` (two producers inside it) and
        // `data2/x` (a look-alike prefix of `data`: no edge from `parts`).
        let p = pipeline("stages:\n  parts:\n    cmd: x\n    outs: [data/a, data/b.txt]\n  more:\n    cmd: x\n    outs: [data/c]\n  dir:\n    cmd: x\n    outs: [data2]\n  use:\n    cmd: x\n    deps: [data, data2/x]\n  deep:\n    cmd: x\n    deps: [data/a/inner.txt]\n  lone:\n    cmd: x\n    deps: [dat, data-b, data.txt]\n").unwrap();
        let dag = Dag::build(&p).unwrap();
        let parents = |name: &str| {
            let i = p.stages.iter().position(|s| s.name == name).unwrap();
            names(&p, &dag.parents(i))
        };
        assert_eq!(parents("use"), ["parts", "more", "dir"]);
        assert_eq!(parents("deep"), ["parts"]);
        assert!(parents("lone").is_empty());
    }

    #[test]
    fn sorts_paths_before_a_directory_without_building_its_name() {
        for (path, dir) in [
            ("a", "a"),
            ("a-b", "a"),
            ("a.txt", "a"),
            ("a/b", "a"),
            ("a0", "a"),
            ("", "a"),
            ("b", "a"),
            ("a", "ab"),
            ("ab/c", "ab"),
            ("é", "e"),
        ] {
            assert_eq!(
                below_inside(path, dir),
                path < format!("{dir}/").as_str(),
                "{path} < {dir}/"
            );
            assert_eq!(
                is_inside(path, dir),
                path.starts_with(&format!("{dir}/")),
                "{path} in {dir}"
            );
        }
    }

    #[test]
    fn nesting_is_found_past_look_alike_names() {
        // `model1` sorts before `model10` and `model1-x`, none inside it.
        let p = pipeline("stages:\n  a:\n    cmd: x\n    outs: [model1, model10, model1-x, model1.txt]\n  b:\n    cmd: x\n    outs: [model1/w.bin]\n  c:\n    cmd: x\n    outs: [model10]\n").unwrap();
        let err = Dag::build(&p).unwrap_err().to_string();
        assert_eq!(
            err,
            "pipeline.yaml:7:12: stage `b`: output `model1/w.bin` is inside `model1`, an output of stage `a`\n  hint: outputs of different stages must not nest: write to a path outside it\n\
             pipeline.yaml:10:12: stage `c`: `model10` is also an output of stage `a`\n  hint: each path has one producer: rename one of the outputs, or merge the stages"
        );
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
