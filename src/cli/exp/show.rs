//! `pipe exp show` (the baseline, its experiments and queued ones, as a
//! table) and `pipe exp diff`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value as Json};

use pipe::compare::diff::diff;
use pipe::compare::table::{self, Table};
use pipe::compare::{self, Files, Flat, Reader, Side};
use pipe::exp as experiments;
use pipe::exp::queue;
use pipe::git::{Repo, Rev};

use super::{err, find};
use crate::cli::compare::{diff_json, diff_table, open_repo, pretty, FormatArgs};
use crate::cli::{load_project, print, CliError};

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

pub(super) fn show(cwd: &Path, args: ShowArgs) -> Result<ExitCode, CliError> {
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
        crate::cli::compare::warn(&side, &metrics);
        crate::cli::compare::warn(&side, &params);
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

pub(super) fn diff_cmd(cwd: &Path, args: DiffArgs) -> Result<ExitCode, CliError> {
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
        crate::cli::compare::warn(side, files);
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
