//! `pipe commit`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::commit::{pending, record};
use pipe::gitignore::GitIgnorer;
use pipe::graph::Selection;
use pipe::lock::LockFile;

use super::progress::Warnings;
use super::{confirm, load_project, lock_project, print, CliError};

/// Record the selected stages in pipeline.lock and the cache as they are
/// now, without running them, as `dvc commit` does: after editing an
/// output by hand, or after a change to a dep or param that does not
/// change the results. Each changed stage is shown and confirmed on a
/// terminal; elsewhere -f is needed.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Stages to record; all when omitted. `name` also selects the
    /// generated stages `name@…`.
    pub targets: Vec<String>,
    /// Record without asking.
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(cwd: &Path, args: CommitArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let targets = super::stage_targets(&project, cwd, &args.targets, false, false)?;
    let selected = project
        .dag
        .select(&project.pipeline, &targets, Selection::Single)
        .map_err(pipe::Error::from)?;
    let _guard = lock_project(&project)?;
    let mut lock = LockFile::read(&project.root).map_err(pipe::Error::from)?;
    let hasher = project.hasher();
    let changed = pending(&project, &lock, &hasher, &selected)?;
    let _ = hasher.save();
    if changed.is_empty() {
        print("Nothing to record: the stages are up to date.\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let describe = |p: &pipe::commit::Pending| {
        let why: Vec<String> = p.reasons.iter().map(ToString::to_string).collect();
        format!(
            "{}: {}",
            project.pipeline.stages[p.stage].name,
            why.join("; ")
        )
    };
    let interactive = !args.force && std::io::IsTerminal::is_terminal(&std::io::stdin());
    if !args.force && !interactive {
        let list: Vec<String> = changed
            .iter()
            .map(|p| format!("  {}", describe(p)))
            .collect();
        return Err(CliError {
            message: format!(
                "recording a changed stage needs a confirmation, and there is no terminal to ask on:\n{}",
                list.join("\n")
            ),
            hints: vec![
                "`pipe commit -f` records them as they are; `pipe repro` runs them instead".into(),
            ],
            code: 2,
        });
    }
    let mut ignorer = GitIgnorer::new(&project.root);
    let mut out = String::new();
    for p in &changed {
        let stage = &project.pipeline.stages[p.stage];
        if interactive && !confirm(&format!("{}\nRecord it as it is?", describe(p)))? {
            print(&out)?;
            return Err(CliError {
                message: format!("stage {} was not recorded", stage.name),
                hints: vec![format!(
                    "`pipe repro {}` runs it instead; `pipe commit -f` records without asking",
                    stage.name
                )],
                code: 1,
            });
        }
        record(&project, &mut lock, &hasher, p)?;
        pipe::run::ignore_outputs(&project, stage, &mut ignorer, &Warnings);
        out.push_str(&format!("recorded {}\n", describe(p)));
    }
    let _ = hasher.save();
    project.cache.save_verified();
    print(&out)?;
    super::repro::print_git_hint(&ignorer.written());
    Ok(ExitCode::SUCCESS)
}
