//! `pipe gc`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::cache::gc::GcReport;
use pipe::cache::human_bytes;
use pipe::gc::{kept, Kept, Scope};
use pipe::remote::gc::CloudGcReport;

use super::{confirm, load_data_project, lock_project, print, CliError};

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
    /// Also remove from the remote what no kept lock records (objects and
    /// run-cache entries of other stages' runs).
    #[arg(short = 'c', long)]
    pub cloud: bool,
    /// The remote for --cloud (default: the default remote).
    #[arg(short = 'r', long, value_name = "NAME", requires = "cloud")]
    pub remote: Option<String>,
    /// With --cloud: leave unused objects younger than this (a teammate may
    /// be pushing them): `30m`, `2h`, `1d`, `0` [default: 1h].
    #[arg(long, value_name = "AGE", requires = "cloud", value_parser = parse_age)]
    pub min_age: Option<std::time::Duration>,
}

fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not an age such as 30m, 2h or 1d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(format!("`{text}` is not an age such as 30m, 2h or 1d")),
    };
    Ok(std::time::Duration::from_secs(secs))
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
    let project = load_data_project(cwd, false)?;
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
    // With --cloud, the remote's part too.
    let remote = match args.cloud {
        true => Some(super::transfer::open_remote(
            &project,
            args.remote.as_deref(),
            None,
        )?),
        false => None,
    };
    let cloud_keep = pipe::remote::gc::CloudKeep {
        records: &kept.records,
        runs: &kept.runs,
        keep_runs: args.keep_runs,
        min_age: args.min_age.unwrap_or(std::time::Duration::from_secs(3600)),
    };
    let cloud = |dry| -> Result<Option<CloudGcReport>, CliError> {
        match &remote {
            Some(r) => Ok(Some(
                r.gc(&project.cache, &cloud_keep, dry)
                    .map_err(pipe::Error::from)?,
            )),
            None => Ok(None),
        }
    };
    let cloud_plan = cloud(true)?;
    let cloud_name = remote.as_ref().map(|r| r.name.clone()).unwrap_or_default();
    let local_going = going(&plan);
    let cloud_going = cloud_plan.as_ref().map(cloud_counts).unwrap_or_default();
    // Without --cloud the cache is the only place, and goes unnamed.
    let going = match (local_going.is_empty(), cloud_going.is_empty()) {
        _ if remote.is_none() => local_going.clone(),
        (true, true) => String::new(),
        (false, true) => format!("{local_going} from the cache"),
        (true, false) => format!("{cloud_going} from remote {cloud_name}"),
        (false, false) => {
            format!("{local_going} from the cache and {cloud_going} from remote {cloud_name}")
        }
    };
    let going_where = match remote {
        None => format!("{going} from the cache"),
        Some(_) => going.clone(),
    };
    let recent = cloud_plan
        .as_ref()
        .map(|c| left_young(c, &cloud_name, cloud_keep.min_age))
        .unwrap_or_default();
    if going.is_empty() {
        if !args.dry {
            // No object goes; leftovers of processes that are gone do.
            gc(false)?;
        }
        print(&format!(
            "Nothing to remove: everything in the cache{} is used by {keeping}.\n{recent}",
            if remote.is_some() {
                format!(" and on remote {cloud_name}")
            } else {
                String::new()
            }
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry {
        print(&format!(
            "Would remove {going}, keeping {} used by {keeping}.\n{recent}",
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
        eprintln!("This removes {going_where}, keeping only what is used by {keeping}.");
        if !confirm("Remove them?")? {
            eprintln!("Nothing was removed.");
            return Ok(ExitCode::from(1));
        }
    }
    let report = gc(false)?;
    let mut done = format!(
        "Removed {}{}; kept {}.\n",
        going_or_nothing(&report),
        if remote.is_some() {
            " from the cache"
        } else {
            ""
        },
        count(report.objects_kept, "object")
    );
    if let Some(c) = cloud(false)? {
        let removed = match cloud_counts(&c) {
            g if g.is_empty() => "nothing".to_string(),
            g => g,
        };
        done.push_str(&format!(
            "Removed {removed} from remote {cloud_name}; kept {} there.\n{recent}",
            count(c.objects_kept as usize, "object")
        ));
    }
    print(&done)?;
    Ok(ExitCode::SUCCESS)
}

/// `3 objects (1.2 MB) and 2 run-cache entries`.
fn cloud_counts(c: &CloudGcReport) -> String {
    let mut parts = Vec::new();
    if c.objects_removed > 0 {
        parts.push(format!(
            "{} ({})",
            count(c.objects_removed as usize, "object"),
            human_bytes(c.bytes_removed)
        ));
    }
    if c.runs_removed > 0 {
        parts.push(count(c.runs_removed as usize, "run-cache entry"));
    }
    parts.join(" and ")
}

/// `Left on remote origin: 2 unused objects younger than 1h (--min-age).`
/// as a line; empty when nothing was left for its age.
fn left_young(c: &CloudGcReport, name: &str, min_age: std::time::Duration) -> String {
    let mut parts = Vec::new();
    if c.too_recent > 0 {
        parts.push(count(c.too_recent as usize, "unused object"));
    }
    if c.too_recent_runs > 0 {
        parts.push(count(c.too_recent_runs as usize, "unused run-cache entry"));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!(
        "Left on remote {name}: {} younger than {} (--min-age; a push may be under way).\n",
        parts.join(" and "),
        show_age(min_age)
    )
}

/// `1h`, `30m`, `90s`: the way --min-age is written.
fn show_age(age: std::time::Duration) -> String {
    let s = age.as_secs();
    match s {
        s if s >= 86400 && s % 86400 == 0 => format!("{}d", s / 86400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
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
