//! `pipe dag`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::dag_view::{DagView, NodeView};
use pipe::graph::Selection;
use pipe::project::Project;

use super::{load_project, print, stage_targets, CliError};

/// Show the pipeline as a graph of stages (or of outputs with --outs).
#[derive(Debug, Args)]
pub struct DagArgs {
    /// Show only this stage and the stages it depends on.
    pub target: Option<String>,
    /// Graphviz DOT.
    #[arg(long, group = "format")]
    pub dot: bool,
    /// A Mermaid flowchart.
    #[arg(long, group = "format")]
    pub mermaid: bool,
    /// A Mermaid flowchart in a Markdown code block.
    #[arg(long, group = "format")]
    pub md: bool,
    /// Nodes and edges as JSON.
    #[arg(long, group = "format")]
    pub json: bool,
    /// Draw outputs instead of stages: an edge from an output to the
    /// outputs of the stages that read it.
    #[arg(long)]
    pub outs: bool,
}

pub fn run(cwd: &Path, args: DagArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let targets: Vec<String> = args.target.into_iter().collect();
    let targets = stage_targets(&project, cwd, &targets, false, false)?;
    let selected = project
        .dag
        .select(&project.pipeline, &targets, Selection::WithUpstream)
        .map_err(pipe::Error::from)?;
    let view = if args.outs {
        outs_view(&project, &selected)
    } else {
        stages_view(&project, &selected)
    };
    let text = if args.dot {
        view.dot()
    } else if args.mermaid {
        view.mermaid()
    } else if args.md {
        view.markdown()
    } else if args.json {
        format!(
            "{}\n",
            serde_json::to_string_pretty(&view.json()).expect("json serializes")
        )
    } else {
        view.text()
    };
    print(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn stages_view(project: &Project, selected: &[usize]) -> DagView {
    let index: BTreeMap<usize, usize> = selected
        .iter()
        .enumerate()
        .map(|(pos, &i)| (i, pos))
        .collect();
    DagView {
        nodes: selected
            .iter()
            .map(|&i| {
                let stage = &project.pipeline.stages[i];
                NodeView {
                    name: stage.name.clone(),
                    detail: stage.frozen.then(|| "(frozen)".to_string()),
                    desc: stage.desc.clone(),
                    parents: project
                        .dag
                        .parents(i)
                        .iter()
                        .filter_map(|p| index.get(p).copied())
                        .collect(),
                }
            })
            .collect(),
    }
}

fn outs_view(project: &Project, selected: &[usize]) -> DagView {
    // Outputs in stage order (topological), each pointing at the outputs of
    // upstream stages that its stage reads.
    let mut nodes: Vec<NodeView> = Vec::new();
    let mut position: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for &i in selected {
        let stage = &project.pipeline.stages[i];
        let mut parents = Vec::new();
        // Only the stage's parent stages write what it reads.
        let upstream = project.dag.parents(i);
        for dep in &stage.deps {
            for &p in &upstream {
                for (k, out) in project.pipeline.stages[p].outs.iter().enumerate() {
                    if out.path.overlaps(dep) {
                        if let Some(&pos) = position.get(&(p, k)) {
                            parents.push(pos);
                        }
                    }
                }
            }
        }
        parents.sort_unstable();
        parents.dedup();
        for (k, out) in stage.outs.iter().enumerate() {
            position.insert((i, k), nodes.len());
            nodes.push(NodeView {
                name: out.path.to_string(),
                detail: None,
                desc: None,
                parents: parents.clone(),
            });
        }
    }
    DagView { nodes }
}
