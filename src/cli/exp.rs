//! `pipe exp`: run, list, compare, apply, branch and remove experiments.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{mpsc, Mutex};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value as Json};

use pipe::compare::diff::diff;
use pipe::compare::table::{self, Table};
use pipe::compare::{self, Files, Flat, Reader, Side};
use pipe::exp::overrides::{self, Override};
use pipe::exp::queue::{self, Queued};
use pipe::exp::{self as experiments, apply, isolated, record};
use pipe::git::{Repo, Rev};
use pipe::project::Project;
use pipe::run::{Event, Reporter, ReproLock};

use super::compare::{diff_json, diff_table, open_repo, pretty, FormatArgs};
use super::progress::Progress;
use super::{load_project, print, CliError};

/// Run the pipeline with changed params and keep each result as an
/// experiment (a commit under refs/exps/, off your branch).
#[derive(Debug, Args)]
pub struct ExpArgs {
    #[command(subcommand)]
    pub command: ExpCommand,
}

#[derive(Debug, Subcommand)]
pub enum ExpCommand {
    Run(RunArgs),
    Show(ShowArgs),
    Diff(DiffArgs),
    Apply(ApplyArgs),
    Branch(BranchArgs),
    Remove(RemoveArgs),
}

/// Run the pipeline with changed params in a temporary copy of the
/// workspace (sharing its cache) and record the result as an experiment;
/// or queue experiments and run the queue in parallel. The workspace, HEAD,
/// branch and index are left as they are; `pipe exp apply` brings a result in.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Set a param: `KEY=VALUE`, `FILE:KEY=VALUE`; several values
    /// (`fit.C=0.1,1,10`) queue one experiment per combination and run them.
    #[arg(short = 'S', long = "set-param", value_name = "[FILE:]KEY=VALUE")]
    pub set: Vec<String>,
    /// The experiment's name [default: exp-<5 hex digits>].
    #[arg(short = 'n', long)]
    pub name: Option<String>,
    /// Only add to the queue; run it later with --run-all.
    #[arg(long)]
    pub queue: bool,
    /// Run every queued experiment.
    #[arg(long, conflicts_with = "queue")]
    pub run_all: bool,
    /// Queued experiments to run at once [default: 1].
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SortOrder {
    Asc,
    Desc,
}

/// List the baseline (HEAD) and its experiments, with their metrics and
/// the params that differ.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Experiments of every baseline, not only HEAD's.
    #[arg(short = 'A', long)]
    pub all_baselines: bool,
    /// Sort experiments by this metric or param column.
    #[arg(long, value_name = "COLUMN")]
    pub sort_by: Option<String>,
    #[arg(long, value_enum, default_value = "asc")]
    pub sort_order: SortOrder,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Compare the metrics and params of two experiments or revisions (B
/// defaults to A's baseline).
#[derive(Debug, Args)]
pub struct DiffArgs {
    pub a: String,
    pub b: Option<String>,
    /// Include what did not change.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Bring an experiment's params, lock, metrics and outputs into the
/// workspace (HEAD, branch and index stay as they are).
#[derive(Debug, Args)]
pub struct ApplyArgs {
    pub name: String,
    /// Overwrite uncommitted changes and modified outputs.
    #[arg(short, long)]
    pub force: bool,
}

/// Make a git branch of an experiment.
#[derive(Debug, Args)]
pub struct BranchArgs {
    pub name: String,
    pub branch: String,
}

/// Remove experiments (their refs) or queued experiments.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[arg(required_unless_present = "all")]
    pub names: Vec<String>,
    /// Every experiment and every queued one.
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
}

pub fn run(cwd: &Path, args: ExpArgs) -> Result<ExitCode, CliError> {
    match args.command {
        ExpCommand::Run(a) => run_cmd(cwd, a),
        ExpCommand::Show(a) => show(cwd, a),
        ExpCommand::Diff(a) => diff_cmd(cwd, a),
        ExpCommand::Apply(a) => apply_cmd(cwd, a),
        ExpCommand::Branch(a) => branch(cwd, a),
        ExpCommand::Remove(a) => remove(cwd, a),
    }
}

fn err(e: impl Into<pipe::Error>) -> CliError {
    CliError::from(e.into())
}

/// The recorded experiment `name`; a queued one is named as such.
fn find(project: &Project, repo: &Repo, name: &str) -> Result<experiments::Experiment, CliError> {
    let queued = queue::list(&project.cache_root()).map_err(err)?;
    if repo
        .experiment_names()
        .map_err(err)?
        .iter()
        .all(|n| n != name)
        && queued.iter().any(|e| e.queued.name == name)
    {
        return Err(CliError {
            message: format!("experiment {name} is queued and has not run yet"),
            hints: vec!["run the queue first: `pipe exp run --run-all`".into()],
            code: 2,
        });
    }
    experiments::find(repo, name).map_err(err)
}

fn pipe_exe() -> Result<PathBuf, CliError> {
    std::env::current_exe().map_err(|e| CliError {
        message: format!("cannot find the pipe executable: {e}"),
        hints: vec![],
        code: 1,
    })
}

fn run_cmd(cwd: &Path, args: RunArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp run")?;
    if args.jobs == Some(0) {
        return Err(CliError {
            message: "-j/--jobs must be at least 1".into(),
            hints: vec![],
            code: 2,
        });
    }
    let sets = args
        .set
        .iter()
        .map(|s| overrides::parse_set(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let combos = overrides::combinations(&sets);
    if args.run_all && args.set.is_empty() {
        return run_queue(&project, args.jobs.unwrap_or(1), None);
    }
    let baseline = repo.head_commit("pipe exp run").map_err(err)?;
    for combo in &combos {
        overrides::check(&project.root, combo).map_err(err)?;
    }
    let start = record::start_commit(&repo, &project.root, baseline.oid).map_err(err)?;
    let names = queue_names(&project, &repo, args.name.as_deref(), &combos)?;
    let entries: Vec<Queued> = names
        .iter()
        .zip(&combos)
        .map(|(name, combo)| Queued {
            name: name.clone(),
            baseline: baseline.oid.to_string(),
            start: start.to_string(),
            overrides: combo.clone(),
            queued_at: now_secs(),
        })
        .collect();
    if args.queue || args.run_all || entries.len() > 1 {
        for q in &entries {
            // The start commit (the workspace's changes) must outlive git gc
            // until the experiment has run.
            repo.raw()
                .reference(
                    &repo.queue_ref(&q.name),
                    start,
                    true,
                    "pipe exp run --queue",
                )
                .map_err(pipe::git::GitError::wrap(format!(
                    "keep the start of {}",
                    q.name
                )))
                .map_err(err)?;
            queue::push(&project.cache_root(), q).map_err(err)?;
            eprintln!("Queued {}: {}", q.name, describe(&q.overrides));
        }
        if args.queue {
            eprintln!("Run the queue with `pipe exp run --run-all -j N`.");
            return Ok(ExitCode::SUCCESS);
        }
        let only: Vec<String> = entries.iter().map(|q| q.name.clone()).collect();
        let only = (!args.run_all).then_some(only);
        return run_queue(&project, args.jobs.unwrap_or(1), only.as_deref());
    }
    let q = &entries[0];
    eprintln!("Running experiment {}: {}", q.name, describe(&q.overrides));
    match isolated::run(
        &project.root,
        &shared_cache(&project),
        q,
        &pipe_exe()?,
        isolated::Output::Terminal,
    ) {
        Ok(commit) => {
            eprintln!(
                "Recorded experiment {} ({}) on baseline {}.",
                q.name,
                Repo::short(commit),
                Repo::short(baseline.oid)
            );
            eprintln!(
                "Compare with `pipe exp show`; bring it into the workspace with `pipe exp apply {}`.",
                q.name
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(failure) => Err(CliError {
            message: format!(
                "experiment {} failed and was not recorded: {}",
                q.name, failure.message
            ),
            hints: vec![format!("fix it, then run it again: {}", rerun_command(q))],
            code: 1,
        }),
    }
}

/// The directory holding the project's cache (`v1/`), which experiment
/// copies share.
fn shared_cache(project: &Project) -> PathBuf {
    project
        .cache
        .dir()
        .parent()
        .expect("the cache has a parent directory")
        .to_path_buf()
}

/// The command that runs `q` again.
fn rerun_command(q: &Queued) -> String {
    let mut cmd = String::from("pipe exp run");
    for o in &q.overrides {
        let text = o.to_string();
        if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-=:/+".contains(c))
        {
            cmd.push_str(&format!(" -S {text}"));
        } else {
            cmd.push_str(&format!(" -S '{}'", text.replace('\'', "'\\''")));
        }
    }
    cmd.push_str(&format!(" -n {}", q.name));
    cmd
}

fn describe(combo: &[Override]) -> String {
    if combo.is_empty() {
        "params as they are".into()
    } else {
        combo
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Names for queued combinations: `NAME` (or `NAME-1`, `NAME-2`, …) with
/// -n, fresh ones without; none may be taken.
fn queue_names(
    project: &Project,
    repo: &Repo,
    base: Option<&str>,
    combos: &[Vec<Override>],
) -> Result<Vec<String>, CliError> {
    let queued: Vec<String> = queue::list(&project.cache_root())
        .map_err(err)?
        .into_iter()
        .map(|e| e.queued.name)
        .collect();
    let mut names = Vec::new();
    for (i, combo) in combos.iter().enumerate() {
        let name = match base {
            Some(base) if combos.len() == 1 => base.to_string(),
            Some(base) => format!("{base}-{}", i + 1),
            None => experiments::new_name(&format!("{i}{combo:?}")),
        };
        experiments::check_new_name(repo, &name).map_err(err)?;
        if queued.contains(&name) || names.contains(&name) {
            return Err(CliError {
                message: format!("an experiment named `{name}` is queued already"),
                hints: vec![format!(
                    "choose another -n NAME, or `pipe exp remove {name}`"
                )],
                code: 2,
            });
        }
        names.push(name);
    }
    Ok(names)
}

/// Runs the queued experiments (those named in `only`, or all), `jobs` at
/// a time.
fn run_queue(
    project: &Project,
    jobs: usize,
    only: Option<&[String]>,
) -> Result<ExitCode, CliError> {
    let recovered = queue::recover(&project.cache_root());
    if !recovered.is_empty() {
        eprintln!(
            "Queued again after an interrupted run: {}.",
            recovered.join(", ")
        );
    }
    let mut entries = queue::list(&project.cache_root()).map_err(err)?;
    if let Some(only) = only {
        entries.retain(|e| only.contains(&e.queued.name));
    }
    if entries.is_empty() {
        eprintln!("The queue is empty; add to it with `pipe exp run --queue -S KEY=VALUE`.");
        return Ok(ExitCode::SUCCESS);
    }
    let exe = pipe_exe()?;
    let total = entries.len();
    eprintln!(
        "Running {total} queued experiment(s), {} at a time.",
        jobs.min(total)
    );
    let work = Mutex::new(entries.into_iter().collect::<VecDeque<_>>());
    let (tx, rx) = mpsc::channel();
    let root = project.root.clone();
    let shared = shared_cache(project);
    let mut failed = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(total) {
            let tx = tx.clone();
            let (work, root, exe, shared) = (&work, &root, &exe, &shared);
            scope.spawn(move || loop {
                let Some(entry) = work.lock().expect("queue lock").pop_front() else {
                    break;
                };
                let Some(claimed) = queue::claim(&entry) else {
                    continue; // another `--run-all` took it
                };
                let result =
                    isolated::run(root, shared, &entry.queued, exe, isolated::Output::LogFile);
                let _ = queue::remove(&claimed.path);
                let _ = tx.send((entry.queued, result));
            });
        }
        drop(tx);
        for (queued, result) in rx {
            match result {
                Ok(commit) => eprintln!(
                    "✓ {} ({}): {}",
                    queued.name,
                    Repo::short(commit),
                    describe(&queued.overrides)
                ),
                Err(failure) => {
                    failed.push(rerun_command(&queued));
                    let log = failure
                        .log
                        .map(|l| format!(" (its output: {})", l.display()))
                        .unwrap_or_default();
                    eprintln!("✗ {} failed: {}{log}", queued.name, failure.message);
                }
            }
        }
    });
    if !failed.is_empty() {
        return Err(CliError {
            message: format!(
                "{} of {total} experiment(s) failed and were not recorded",
                failed.len()
            ),
            hints: vec![format!(
                "read the output files named above, fix, and run them again:\n    {}",
                failed.join("\n    ")
            )],
            code: 1,
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `exp show`.
struct Row {
    name: String,
    rev: String,
    /// The short hash of the commit an experiment started from.
    baseline: Option<String>,
    created: Option<i64>,
    queued: bool,
    metrics: Flat,
    params: Flat,
}

/// `path:key` when there are several files, else `key`.
fn columns(files: &Files, several: bool) -> Flat {
    let mut out = Flat::new();
    for (path, loaded) in files {
        for (key, value) in loaded.values().into_iter().flatten() {
            let column = if several {
                format!("{path}:{key}")
            } else {
                key.clone()
            };
            out.insert(column, value.clone());
        }
    }
    out
}

fn show(cwd: &Path, args: ShowArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp show")?;
    let head = repo.head().map_err(err)?;
    let several_metrics = compare::metric_files(&project).len() > 1;
    let several_params = compare::params_files(&project).len() > 1;
    for path in queue::damaged(&project.cache_root()) {
        eprintln!(
            "warning: queue entry {} is damaged and was left out (delete the file)",
            path.display()
        );
    }
    let read = |rev: Rev| -> Result<(Flat, Flat), CliError> {
        let side = Side::Commit(rev);
        let mut reader = Reader::new(&project, Some(&repo), side.clone());
        let metrics = reader.metrics().map_err(CliError::from)?;
        let params = reader.params(false).map_err(CliError::from)?;
        super::compare::warn(&side, &metrics);
        super::compare::warn(&side, &params);
        Ok((
            columns(&metrics, several_metrics),
            columns(&params, several_params),
        ))
    };
    let mut rows = Vec::new();
    let mut baseline_params = Flat::new();
    if let Some(head) = head {
        let (metrics, params) = read(Rev {
            oid: head,
            label: "HEAD".into(),
        })?;
        baseline_params = params.clone();
        let branch = repo
            .raw()
            .head()
            .ok()
            .filter(|h| h.is_branch())
            .and_then(|h| h.shorthand().map(str::to_string))
            .unwrap_or_else(|| "HEAD".into());
        let time = repo
            .raw()
            .find_commit(head)
            .map(|c| c.time().seconds())
            .ok();
        rows.push(Row {
            name: branch,
            rev: Repo::short(head),
            baseline: None,
            created: time,
            queued: false,
            metrics,
            params,
        });
    }
    let mut exps = Vec::new();
    for exp in experiments::list(&repo).map_err(err)? {
        if !args.all_baselines && Some(exp.baseline) != head {
            continue;
        }
        let (metrics, params) = read(Rev {
            oid: exp.commit,
            label: exp.name.clone(),
        })?;
        exps.push(Row {
            name: exp.name,
            rev: Repo::short(exp.commit),
            baseline: Some(Repo::short(exp.baseline)),
            created: Some(exp.time),
            queued: false,
            metrics,
            params,
        });
    }
    for entry in queue::list(&project.cache_root()).map_err(err)? {
        let q = entry.queued;
        if !args.all_baselines
            && Some(q.baseline.as_str()) != head.map(|h| h.to_string()).as_deref()
        {
            continue;
        }
        let mut params = baseline_params.clone();
        for o in &q.overrides {
            let column = if several_params {
                format!("{}:{}", o.file, o.key)
            } else {
                o.key.clone()
            };
            params.insert(column, o.value.clone());
        }
        exps.push(Row {
            baseline: Some(q.baseline.chars().take(7).collect()),
            name: q.name,
            rev: "queued".into(),
            created: Some(q.queued_at as i64),
            queued: true,
            metrics: Flat::new(),
            params,
        });
    }
    if let Some(column) = &args.sort_by {
        let known: Vec<&String> = rows
            .iter()
            .chain(&exps)
            .flat_map(|r| r.metrics.keys().chain(r.params.keys()))
            .collect();
        if !known.contains(&column) {
            let names: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
            let near = pipe::spec::diagnostic::did_you_mean(column, names.iter().copied());
            return Err(CliError {
                message: format!("--sort-by {column}: no metric or param of that name"),
                hints: vec![match near {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => "name a column of `pipe exp show`".into(),
                }],
                code: 2,
            });
        }
        let key = |r: &Row| {
            r.metrics
                .get(column)
                .or_else(|| r.params.get(column))
                .and_then(Json::as_f64)
        };
        exps.sort_by(|a, b| match (key(a), key(b)) {
            (Some(x), Some(y)) => {
                let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                match args.sort_order {
                    SortOrder::Asc => o,
                    SortOrder::Desc => o.reverse(),
                }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
    rows.extend(exps);
    if args.format.json {
        let out: Vec<Json> = rows
            .iter()
            .map(|r| {
                json!({
                    "name": r.name, "rev": r.rev, "baseline": r.baseline, "created": r.created,
                    "queued": r.queued, "metrics": r.metrics, "params": r.params,
                })
            })
            .collect();
        print(&pretty(&json!(out)))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut metric_cols: Vec<String> = rows
        .iter()
        .flat_map(|r| r.metrics.keys().cloned())
        .collect();
    metric_cols.sort();
    metric_cols.dedup();
    let mut param_cols: Vec<String> = rows.iter().flat_map(|r| r.params.keys().cloned()).collect();
    param_cols.sort();
    param_cols.dedup();
    // Only the params that differ somewhere.
    param_cols.retain(|c| {
        let first = rows.first().and_then(|r| r.params.get(c));
        rows.iter().any(|r| r.params.get(c) != first)
    });
    let mut headers = vec!["Experiment".to_string(), "Rev".into()];
    if args.all_baselines {
        headers.push("Baseline".into());
    }
    headers.push("Created".into());
    headers.extend(metric_cols.iter().cloned());
    headers.extend(param_cols.iter().cloned());
    let mut t = Table::new(headers);
    let p = args.format.precision;
    for (i, r) in rows.iter().enumerate() {
        let prefix = if i == 0 || head.is_none() {
            ""
        } else {
            "├─ "
        };
        let mut cells = vec![format!("{prefix}{}", r.name), r.rev.clone()];
        if args.all_baselines {
            cells.push(r.baseline.clone().unwrap_or_else(|| table::MISSING.into()));
        }
        cells.push(
            r.created
                .map(format_time)
                .unwrap_or_else(|| table::MISSING.into()),
        );
        cells.extend(metric_cols.iter().map(|c| table::cell(r.metrics.get(c), p)));
        cells.extend(param_cols.iter().map(|c| table::cell(r.params.get(c), p)));
        t.rows.push(cells);
    }
    if let (Some(last), true) = (t.rows.last_mut(), rows.len() > 1 && head.is_some()) {
        last[0] = last[0].replacen("├─", "└─", 1);
    }
    if rows.is_empty() {
        eprintln!("No commits and no experiments yet.");
        return Ok(ExitCode::SUCCESS);
    }
    print(&args.format.render(&t))?;
    Ok(ExitCode::SUCCESS)
}

/// `YYYY-MM-DD HH:MM` in UTC.
fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days → civil date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

fn diff_cmd(cwd: &Path, args: DiffArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp diff")?;
    let a = match repo.resolve(&args.a) {
        Ok(a) => a,
        Err(e) => {
            find(&project, &repo, &args.a)?;
            return Err(err(e));
        }
    };
    let b = match &args.b {
        Some(b) => repo.resolve(b).map_err(err)?,
        None => {
            let commit = repo
                .raw()
                .find_commit(a.oid)
                .map_err(pipe::git::GitError::wrap(format!("read {}", args.a)))
                .map_err(err)?;
            let parent = commit.parent_id(0).map_err(|_| CliError {
                message: format!("{} has no parent to compare with", args.a),
                hints: vec!["name both sides: `pipe exp diff A B`".into()],
                code: 2,
            })?;
            Rev {
                oid: parent,
                label: Repo::short(parent),
            }
        }
    };
    // Old side first: B is the reference, A the experiment.
    let (old_side, new_side) = (Side::Commit(b.clone()), Side::Commit(a.clone()));
    let mut old = Reader::new(&project, Some(&repo), old_side.clone());
    let mut new = Reader::new(&project, Some(&repo), new_side.clone());
    let (old_metrics, new_metrics) = (
        old.metrics().map_err(CliError::from)?,
        new.metrics().map_err(CliError::from)?,
    );
    let (old_params, new_params) = (
        old.params(false).map_err(CliError::from)?,
        new.params(false).map_err(CliError::from)?,
    );
    for (side, files) in [
        (&old_side, &old_metrics),
        (&new_side, &new_metrics),
        (&old_side, &old_params),
        (&new_side, &new_params),
    ] {
        super::compare::warn(side, files);
    }
    let metrics = diff(&old_metrics, &new_metrics, args.all);
    let params = diff(&old_params, &new_params, args.all);
    if args.format.json {
        print(&pretty(
            &json!({"metrics": diff_json(&metrics), "params": diff_json(&params)}),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let p = args.format.precision;
    let mut out = String::new();
    if !metrics.is_empty() {
        out.push_str(
            &args
                .format
                .render(&diff_table(&metrics, "Metric", &b.label, &a.label, p)),
        );
    }
    if !params.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(
            &args
                .format
                .render(&diff_table(&params, "Param", &b.label, &a.label, p)),
        );
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn apply_cmd(cwd: &Path, args: ApplyArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp apply")?;
    let exp = find(&project, &repo, &args.name)?;
    let progress = Progress::new();
    let _guard = ReproLock::acquire(&project.cache_root(), |holder| {
        progress.event(Event::WaitingForLock { holder });
    })?;
    progress.finish();
    let applied = apply::apply(&project.root, &repo, &exp, args.force).map_err(err)?;
    let mut out = String::new();
    for f in &applied.written {
        out.push_str(&format!("wrote {f}\n"));
    }
    for f in &applied.deleted {
        out.push_str(&format!("deleted {f}\n"));
    }
    let mut missing = 0;
    for item in &applied.outputs {
        match item.action {
            pipe::checkout::CheckoutAction::Restored => {
                out.push_str(&format!("restored {}\n", item.path))
            }
            pipe::checkout::CheckoutAction::NotInCache
            | pipe::checkout::CheckoutAction::NotCached => {
                missing += 1;
                out.push_str(&format!(
                    "cannot restore {}: not in the cache (run `pipe repro {}`)\n",
                    item.path, item.stage
                ));
            }
            _ => {}
        }
    }
    out.push_str(&format!(
        "Applied experiment {} ({}).\n",
        exp.name,
        Repo::short(exp.commit)
    ));
    print(&out)?;
    Ok(if missing > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn branch(cwd: &Path, args: BranchArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp branch")?;
    let exp = experiments::find(&repo, &args.name).map_err(err)?;
    if repo
        .raw()
        .find_branch(&args.branch, git2::BranchType::Local)
        .is_ok()
    {
        return Err(CliError {
            message: format!("a branch named `{}` exists already", args.branch),
            hints: vec!["choose another branch name".into()],
            code: 2,
        });
    }
    let commit = repo
        .raw()
        .find_commit(exp.commit)
        .map_err(pipe::git::GitError::wrap(format!(
            "read experiment {}",
            exp.name
        )))
        .map_err(err)?;
    repo.raw()
        .branch(&args.branch, &commit, false)
        .map_err(|source| CliError {
            message: format!(
                "cannot create branch `{}`: {}",
                args.branch,
                source.message()
            ),
            hints: vec!["a branch name cannot contain spaces, `..`, `~`, `^` or `:`".into()],
            code: 2,
        })?;
    print(&format!(
        "Branch {} now points at experiment {} ({}).\n",
        args.branch,
        exp.name,
        Repo::short(exp.commit)
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn remove(cwd: &Path, args: RemoveArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp remove")?;
    let queued = queue::list(&project.cache_root()).map_err(err)?;
    let recorded = repo.experiment_names().map_err(err)?;
    let names: Vec<String> = if args.all {
        recorded
            .iter()
            .cloned()
            .chain(queued.iter().map(|e| e.queued.name.clone()))
            .collect()
    } else {
        args.names.clone()
    };
    let mut names = names;
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    // Every name is checked before anything is removed.
    let mut unknown = Vec::new();
    for name in &names {
        if !recorded.contains(name) && !queued.iter().any(|e| &e.queued.name == name) {
            unknown.push(name.clone());
        }
    }
    if let Some(name) = unknown.first() {
        experiments::find(&repo, name).map_err(err)?;
    }
    let mut by_name: BTreeMap<&str, Vec<&queue::Entry>> = BTreeMap::new();
    for e in &queued {
        by_name.entry(e.queued.name.as_str()).or_default().push(e);
    }
    let mut out = String::new();
    for name in &names {
        if recorded.contains(name) {
            let mut reference = repo
                .raw()
                .find_reference(&repo.experiment_ref(name))
                .map_err(pipe::git::GitError::wrap(format!("find experiment {name}")))
                .map_err(err)?;
            reference
                .delete()
                .map_err(pipe::git::GitError::wrap(format!(
                    "remove experiment {name}"
                )))
                .map_err(err)?;
            out.push_str(&format!("removed experiment {name}\n"));
        }
        for e in by_name.get(name.as_str()).into_iter().flatten() {
            queue::remove(&e.path).map_err(err)?;
            if let Ok(mut r) = repo.raw().find_reference(&repo.queue_ref(name)) {
                let _ = r.delete();
            }
            out.push_str(&format!("removed queued experiment {name}\n"));
        }
    }
    if out.is_empty() {
        out.push_str("Nothing to remove.\n");
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
