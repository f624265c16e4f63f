//! `pipe gc`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::cache::gc::GcReport;
use pipe::cache::human_bytes;
use pipe::gc::{kept, Kept, Scope};

use super::{confirm, load_project, lock_project, print, CliError};

/// Remove from the cache what the chosen revisions do not use, as `dvc gc`
/// does: every object that no pipeline.lock in scope records. The
/// workspace and every experiment (refs/exps/*) are always kept; at least
/// one scope must be given. Shows what will go and asks on a terminal;
/// elsewhere -f is needed.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Keep what the workspace's pipeline.lock records (and nothing more,
    /// unless other scopes are given).
    #[arg(short = 'w', long)]
    pub workspace: bool,
    /// Also keep what the tip of every git branch records.
    #[arg(short = 'a', long)]
    pub all_branches: bool,
    /// Also keep what every git tag records.
    #[arg(short = 'T', long)]
    pub all_tags: bool,
    /// Also keep what every commit reachable from a branch, a tag or HEAD
    /// records.
    #[arg(short = 'A', long)]
    pub all_commits: bool,
    /// Also keep what this revision records (a branch, tag, commit,
    /// `HEAD~2`, an experiment); repeatable.
    #[arg(long, value_name = "REV")]
    pub rev: Vec<String>,
    /// With --rev: keep the last N commits from each REV (first parents).
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        default_value_t = 1,
        requires = "rev"
    )]
    pub num: usize,
    /// Also keep everything the run cache records (so that any fingerprint
    /// seen before can still be restored without running).
    #[arg(long)]
    pub keep_runs: bool,
    /// Remove without asking.
    #[arg(short, long)]
    pub force: bool,
    /// Say what would be removed, remove nothing.
    #[arg(long)]
    pub dry: bool,
}

pub fn run(cwd: &Path, args: GcArgs) -> Result<ExitCode, CliError> {
    let scope = Scope {
        all_branches: args.all_branches,
        all_tags: args.all_tags,
        all_commits: args.all_commits,
        revs: args.rev.clone(),
        num: args.num,
    };
    if !args.workspace && scope.workspace_only() {
        return Err(CliError {
            message: "pipe gc needs to be told what to keep: without a scope it would have to guess what may be removed".into(),
            hints: vec![
                "-w keeps what the workspace uses; -a, -T, -A and --rev REV also keep what branches, tags, all commits or REV use (`pipe gc --help`)".into(),
            ],
            code: 2,
        });
    }
    let project = load_project(cwd)?;
    let _guard = lock_project(&project)?;
    // Running experiments write to this cache: wait for none.
    let experiments = pipe::exp::isolated::experiments_lock(&project.cache_root())?;
    if experiments.try_lock().is_err() {
        return Err(CliError {
            message:
                "experiments are running (`pipe exp run`), and gc could remove what they write"
                    .into(),
            hints: vec!["run `pipe gc` when they have finished".into()],
            code: 1,
        });
    }
    let kept = kept(&project, &scope)?;
    let gc = |dry| {
        project
            .cache
            .gc(&kept.records, args.keep_runs, dry)
            .map_err(pipe::Error::from)
    };
    let plan = gc(true)?;
    let keeping = keeping(&scope, &kept);
    let going = going(&plan);
    if going.is_empty() {
        if !args.dry {
            // No object goes; leftovers of processes that are gone do.
            gc(false)?;
        }
        print(&format!(
            "Nothing to remove: everything in the cache is used by {keeping}.\n"
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry {
        print(&format!(
            "Would remove {going}, keeping {} used by {keeping}.\n",
            count(plan.objects_kept, "object")
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    if !args.force {
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(CliError {
                message: format!(
                    "pipe gc would remove {going}, keeping only what is used by {keeping}; it asks before it removes anything, and there is no terminal to ask on"
                ),
                hints: vec![
                    "add -f to remove them; --dry only says what would go; -a, -T, -A or --rev keep more".into(),
                ],
                code: 2,
            });
        }
        eprintln!("This removes {going} from the cache, keeping only what is used by {keeping}.");
        if !confirm("Remove them?")? {
            eprintln!("Nothing was removed.");
            return Ok(ExitCode::from(1));
        }
    }
    let report = gc(false)?;
    print(&format!(
        "Removed {}; kept {}.\n",
        going_or_nothing(&report),
        count(report.objects_kept, "object")
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `the workspace, all branches and 2 experiments`.
fn keeping(scope: &Scope, kept: &Kept) -> String {
    let mut parts = vec!["the workspace".to_string()];
    if scope.all_commits {
        parts.push(format!("all {} commits", kept.commits));
    } else {
        if scope.all_branches {
            parts.push("all branches".into());
        }
        if scope.all_tags {
            parts.push("all tags".into());
        }
    }
    for rev in &scope.revs {
        parts.push(if scope.num > 1 {
            format!("the last {} commits from {rev}", scope.num)
        } else {
            rev.clone()
        });
    }
    match kept.experiments {
        0 => {}
        1 => parts.push("1 experiment".into()),
        n => parts.push(format!("{n} experiments")),
    }
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => parts.join(""),
    }
}

/// `3 objects (1.2 MB), 2 run-cache entries and 1 damaged object set aside
/// in quarantine/`; empty when nothing goes.
fn going(report: &GcReport) -> String {
    let mut parts = Vec::new();
    if report.objects_removed > 0 {
        parts.push(format!(
            "{} ({})",
            count(report.objects_removed, "object"),
            human_bytes(report.bytes_removed)
        ));
    }
    if report.runs_removed > 0 {
        parts.push(count(report.runs_removed, "run-cache entry"));
    }
    if report.quarantined_removed > 0 {
        parts.push(format!(
            "{} set aside in quarantine/",
            count(report.quarantined_removed, "damaged object")
        ));
    }
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => parts.join(""),
    }
}

fn going_or_nothing(report: &GcReport) -> String {
    let text = going(report);
    if text.is_empty() {
        "nothing".into()
    } else {
        text
    }
}

/// `1 object`, `3 objects`, `2 run-cache entries`.
fn count(n: usize, what: &str) -> String {
    match (n, what.strip_suffix('y')) {
        (1, _) => format!("1 {what}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {what}s"),
    }
}
