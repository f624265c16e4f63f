//! `pipe exp show`: the workspace, the baseline (HEAD), its experiments and
//! the queued ones, as a table of their metrics and params.
//!
//! A column is one key of one metrics or params file. It is headed by the
//! key alone (`accuracy`, `fit.C`), or by `FILE:KEY` where two files of
//! its kind have that key, as DVC heads them. `--only-changed`, `--drop`
//! and `--keep` choose the columns; on a terminal (or with `COLUMNS` set)
//! the table is then fitted to the width: columns are left out, least
//! important first (unchanged params, unchanged metrics, the dates, the
//! revision; never the experiment's name, a kept column, the sort column or
//! a param that varies, while anything else can go), and a note says which.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use serde_json::{json, Value as Json};

use pipe::compare::table::{self, Table};
use pipe::compare::{Files, Reader, Side};
use pipe::exp as experiments;
use pipe::exp::queue;
use pipe::git::{Repo, Rev};

use super::err;
use crate::cli::compare::{open_repo, pretty, FormatArgs};
use crate::cli::{load_project, print, CliError};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SortOrder {
    Asc,
    Desc,
}

/// List the workspace, the baseline (HEAD) and its experiments (recorded
/// and queued), with their metrics and params.
///
/// On a terminal the table fits its width (`COLUMNS` overrides it): the
/// columns that do not fit are left out, unchanged ones first, and a note
/// names them; --csv and --json always have every column.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Experiments of every baseline, not only HEAD's.
    #[arg(short = 'A', long)]
    pub all_baselines: bool,
    /// Only the metrics and params whose value differs between rows.
    #[arg(long)]
    pub only_changed: bool,
    /// Leave out the columns whose heading (or FILE:KEY) matches REGEX, from
    /// its start (`--drop 'true_|false_'`, `--drop Created`); repeatable.
    #[arg(long, value_name = "REGEX")]
    pub drop: Vec<String>,
    /// Always show the columns whose heading (or FILE:KEY) matches REGEX,
    /// whatever --drop, --only-changed or the width would leave out;
    /// repeatable.
    #[arg(long, value_name = "REGEX")]
    pub keep: Vec<String>,
    /// Sort the experiments by a metric or param: its heading, `KEY`, or
    /// `FILE:KEY` (`metrics.json:accuracy`, `params.yaml:fit.C`).
    #[arg(long, value_name = "[FILE:]KEY")]
    pub sort_by: Option<String>,
    /// With --sort-by: ascending or descending (missing values last).
    #[arg(long, value_enum, default_value = "asc")]
    pub sort_order: SortOrder,
    /// Print CSV (every column, full precision, dates as ISO 8601).
    #[arg(long, conflicts_with_all = ["json", "md"])]
    pub csv: bool,
    /// Write a page instead (needs no network): the table, sorted by a
    /// click on a heading, and a chart of a metric (--y) against a param
    /// (--x), on a log scale when the param spans decades.
    #[arg(long, conflicts_with_all = ["csv", "json", "md"])]
    pub html: bool,
    /// With --html: the file to write [default: pipe_plots/experiments.html].
    #[arg(short = 'o', long = "out", value_name = "FILE", requires = "html")]
    pub out: Option<std::path::PathBuf>,
    /// With --html: the param of the chart's x axis, `KEY` or `FILE:KEY`
    /// [default: the first numeric param that varies].
    #[arg(long, value_name = "[FILE:]KEY", requires = "html")]
    pub x: Option<String>,
    /// With --html: the metric of the chart's y axis [default: the first
    /// numeric metric].
    #[arg(long, value_name = "[FILE:]KEY", requires = "html")]
    pub y: Option<String>,
    /// With --html: open the page in the default browser.
    #[arg(long, requires = "html")]
    pub open: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Metric,
    Param,
}

/// A metrics or params column: one key of one file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    kind: Kind,
    file: String,
    key: String,
}

impl Key {
    fn full(&self) -> String {
        format!("{}:{}", self.file, self.key)
    }
}

/// One row of `exp show`.
struct Row {
    name: String,
    /// Its commit's short hash; `None` for the workspace.
    rev: Option<String>,
    /// The short hash of the commit an experiment started from.
    baseline: Option<String>,
    created: Option<i64>,
    queued: bool,
    values: BTreeMap<Key, Json>,
}

impl Row {
    fn rev_cell(&self) -> String {
        match (&self.rev, self.queued) {
            (_, true) => "queued".into(),
            (Some(rev), _) => rev.clone(),
            (None, _) => table::MISSING.into(),
        }
    }
}

/// The values of `files` under their keys.
fn values(kind: Kind, files: &Files, out: &mut BTreeMap<Key, Json>) {
    for (path, loaded) in files {
        for (key, value) in loaded.values().into_iter().flatten() {
            let k = Key {
                kind,
                file: path.to_string(),
                key: key.clone(),
            };
            out.insert(k, value.clone());
        }
    }
}

/// The heading of each column: the key, or `FILE:KEY` when another file of
/// its kind has the key too.
fn labels(keys: &BTreeSet<Key>) -> BTreeMap<Key, String> {
    let mut count: BTreeMap<(Kind, &str), usize> = BTreeMap::new();
    for k in keys {
        *count.entry((k.kind, k.key.as_str())).or_default() += 1;
    }
    keys.iter()
        .map(|k| {
            let label = if count[&(k.kind, k.key.as_str())] > 1 {
                k.full()
            } else {
                k.key.clone()
            };
            (k.clone(), label)
        })
        .collect()
}

fn usage(message: String, hint: String) -> CliError {
    CliError {
        message,
        hints: vec![hint],
        code: 2,
    }
}

/// `patterns` as one regular expression matched from the start of a name,
/// as DVC matches them.
fn pattern(flag: &str, patterns: &[String]) -> Result<Option<regex::Regex>, CliError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let joined = format!("^(?:{})", patterns.join("|"));
    regex::Regex::new(&joined).map(Some).map_err(|e| {
        usage(
            format!(
                "{flag} {}: not a regular expression: {e}",
                patterns.join(" ")
            ),
            "write a regular expression, e.g. --drop 'true_|false_'".into(),
        )
    })
}

/// The column `--sort-by` (or `flag`) names.
fn sort_column(
    flag: &str,
    by: &str,
    keys: &BTreeSet<Key>,
    labels: &BTreeMap<Key, String>,
) -> Result<Key, CliError> {
    let matches: Vec<&Key> = keys
        .iter()
        .filter(|k| labels[*k] == by || k.full() == by)
        .collect();
    let matches = if matches.is_empty() {
        keys.iter().filter(|k| k.key == by).collect()
    } else {
        matches
    };
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let names: Vec<String> = keys
                .iter()
                .flat_map(|k| [labels[k].clone(), k.full()])
                .collect();
            let near = pipe::spec::diagnostic::did_you_mean(by, names.iter().map(String::as_str));
            Err(usage(
                format!("{flag} {by}: no metric or param of that name"),
                match near {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => "name a column of `pipe exp show`, or FILE:KEY".into(),
                },
            ))
        }
        several => Err(usage(
            format!("{flag} {by}: several columns have that name"),
            format!(
                "name one as FILE:KEY: {}",
                several
                    .iter()
                    .map(|k| k.full())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// The width to fit the table to: `COLUMNS`, else the terminal's; none when
/// stdout is not a terminal.
fn width() -> Option<usize> {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size().map(|(w, _)| w.0 as usize)
}

pub(super) fn show(cwd: &Path, args: ShowArgs) -> Result<ExitCode, CliError> {
    let drop_re = pattern("--drop", &args.drop)?;
    let keep_re = pattern("--keep", &args.keep)?;
    let project = load_project(cwd)?;
    let repo = open_repo(&project.root, "pipe exp show")?;
    let head = repo.head().map_err(err)?;
    for path in queue::damaged(&project.cache_root()) {
        eprintln!(
            "warning: queue entry {} is damaged and was left out (delete the file)",
            path.display()
        );
    }
    let read = |side: Side| -> Result<BTreeMap<Key, Json>, CliError> {
        let mut reader = Reader::new(&project, Some(&repo), side.clone());
        let metrics = reader.metrics().map_err(CliError::from)?;
        let params = reader.params(false).map_err(CliError::from)?;
        crate::cli::compare::warn(&side, &metrics);
        crate::cli::compare::warn(&side, &params);
        let mut out = BTreeMap::new();
        values(Kind::Metric, &metrics, &mut out);
        values(Kind::Param, &params, &mut out);
        Ok(out)
    };
    let mut rows = vec![Row {
        name: "workspace".into(),
        rev: None,
        baseline: None,
        created: None,
        queued: false,
        values: read(Side::Workspace)?,
    }];
    let mut baseline_values = BTreeMap::new();
    if let Some(head) = head {
        let values = read(Side::Commit(Rev {
            oid: head,
            label: "HEAD".into(),
        }))?;
        baseline_values = values.clone();
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
            rev: Some(Repo::short(head)),
            baseline: None,
            created: time,
            queued: false,
            values,
        });
    }
    let fixed = rows.len();
    let mut exps = Vec::new();
    for exp in experiments::list(&repo).map_err(err)? {
        if !args.all_baselines && Some(exp.baseline) != head {
            continue;
        }
        exps.push(Row {
            values: read(Side::Commit(Rev {
                oid: exp.commit,
                label: exp.name.clone(),
            }))?,
            name: exp.name,
            rev: Some(Repo::short(exp.commit)),
            baseline: Some(Repo::short(exp.baseline)),
            created: Some(exp.time),
            queued: false,
        });
    }
    for entry in queue::list(&project.cache_root()).map_err(err)? {
        let q = entry.queued;
        if !args.all_baselines
            && Some(q.baseline.as_str()) != head.map(|h| h.to_string()).as_deref()
        {
            continue;
        }
        // What it will run with: the baseline's params, and its own.
        let mut values: BTreeMap<Key, Json> = baseline_values
            .iter()
            .filter(|(k, _)| k.kind == Kind::Param)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for o in &q.overrides {
            let k = Key {
                kind: Kind::Param,
                file: o.file.to_string(),
                key: o.key.clone(),
            };
            values.insert(k, o.value.clone());
        }
        exps.push(Row {
            baseline: Some(q.baseline.chars().take(7).collect()),
            name: q.name,
            rev: None,
            created: Some(q.queued_at as i64),
            queued: true,
            values,
        });
    }
    let keys: BTreeSet<Key> = rows
        .iter()
        .chain(&exps)
        .flat_map(|r| r.values.keys().cloned())
        .collect();
    let labels = labels(&keys);
    let sort = match &args.sort_by {
        Some(by) => Some(sort_column("--sort-by", by, &keys, &labels)?),
        None => None,
    };
    if let Some(column) = &sort {
        sort_rows(&mut exps, column, args.sort_order);
    }
    rows.extend(exps);

    // A column varies when its rows have more than one value (missing
    // values aside).
    let varies = |k: &Key| {
        let mut seen: Vec<&Json> = Vec::new();
        for v in rows.iter().filter_map(|r| r.values.get(k)) {
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        seen.len() > 1
    };
    let matches = |re: &Option<regex::Regex>, heading: &str, full: Option<String>| {
        re.as_ref()
            .is_some_and(|re| re.is_match(heading) || full.is_some_and(|f| re.is_match(&f)))
    };
    let kept = |k: &Key| matches(&keep_re, &labels[k], Some(k.full())) || sort.as_ref() == Some(k);
    let columns: Vec<&Key> = keys
        .iter()
        .filter(|k| {
            kept(k)
                || (!matches(&drop_re, &labels[*k], Some(k.full()))
                    && (!args.only_changed || varies(k)))
        })
        .collect();

    if args.html {
        return html(cwd, &project, &args, &rows, &columns, &labels);
    }

    if args.format.json {
        let out: Vec<Json> = rows
            .iter()
            .map(|r| {
                let pick = |kind: Kind| -> serde_json::Map<String, Json> {
                    columns
                        .iter()
                        .filter(|k| k.kind == kind)
                        .filter_map(|k| r.values.get(*k).map(|v| (labels[*k].clone(), v.clone())))
                        .collect()
                };
                json!({
                    "name": r.name, "rev": r.rev, "baseline": r.baseline, "created": r.created,
                    "queued": r.queued, "metrics": pick(Kind::Metric), "params": pick(Kind::Param),
                })
            })
            .collect();
        print(&pretty(&json!(out)))?;
        return Ok(ExitCode::SUCCESS);
    }

    // Each column's rank for fitting (see `Table::fit`): never left out (0)
    // are the name, kept columns, the sort column and the params that vary;
    // then, kept longest first, the metrics that vary, the revision, the
    // dates, the metrics and params that do not.
    let meta_shown =
        |heading: &str| matches(&keep_re, heading, None) || !matches(&drop_re, heading, None);
    let mut headers = vec!["Experiment".to_string()];
    let mut rank = vec![0];
    let mut meta: Vec<&str> = vec!["Rev"];
    if args.all_baselines || args.csv {
        meta.push("Baseline");
    }
    meta.push("Created");
    meta.retain(|h| meta_shown(h));
    for h in &meta {
        headers.push(h.to_string());
        rank.push(match *h {
            _ if matches(&keep_re, h, None) => 0,
            "Rev" => 2,
            _ => 3,
        });
    }
    for k in &columns {
        headers.push(labels[*k].clone());
        rank.push(match (kept(k), varies(k), k.kind) {
            (true, _, _) | (false, true, Kind::Param) => 0,
            (false, true, Kind::Metric) => 1,
            (false, false, Kind::Metric) => 4,
            (false, false, Kind::Param) => 5,
        });
    }
    let mut t = Table::new(headers);
    let p = args.format.precision;
    let last = rows.len().saturating_sub(1);
    for (i, r) in rows.iter().enumerate() {
        let mut cells = vec![if args.csv || i < fixed {
            r.name.clone()
        } else if i == last {
            format!("└─ {}", r.name)
        } else {
            format!("├─ {}", r.name)
        }];
        for h in &meta {
            cells.push(match *h {
                "Rev" if args.csv => r.rev.clone().unwrap_or_else(|| {
                    if r.queued {
                        "queued".into()
                    } else {
                        String::new()
                    }
                }),
                "Rev" => r.rev_cell(),
                "Baseline" => r.baseline.clone().unwrap_or_else(|| {
                    if args.csv {
                        String::new()
                    } else {
                        table::MISSING.into()
                    }
                }),
                _ => match (r.created, args.csv) {
                    (Some(t), true) => iso_time(t),
                    (Some(t), false) => format_time(t),
                    (None, true) => String::new(),
                    (None, false) => table::MISSING.into(),
                },
            });
        }
        for k in &columns {
            let value = r.values.get(*k);
            cells.push(match (value, args.csv) {
                (None, true) => String::new(),
                (Some(Json::String(s)), true) => s.clone(),
                (Some(v), true) => v.to_string(),
                (v, false) => table::cell(v, p),
            });
        }
        t.rows.push(cells);
    }
    if args.csv {
        print(&t.to_csv())?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.format.md {
        print(&t.to_markdown())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(width) = width() else {
        print(&t.to_text())?;
        return Ok(ExitCode::SUCCESS);
    };
    let (fitted, dropped) = t.fit(width, &rank);
    if !dropped.is_empty() {
        const NAMED: usize = 6;
        let mut names = dropped
            .iter()
            .take(NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if dropped.len() > NAMED {
            names.push_str(&format!(" and {} more", dropped.len() - NAMED));
        }
        eprintln!(
            "note: {} of {} columns do not fit in {width} characters and are left out: {names}",
            dropped.len(),
            t.headers.len()
        );
        eprintln!(
            "  hint: choose with --keep/--drop REGEX or --only-changed; --csv and --json have them all"
        );
    }
    print(&table::cut_lines(&fitted.to_text(), width))?;
    Ok(ExitCode::SUCCESS)
}

/// `exp show --html`: the page of the table and chart.
fn html(
    cwd: &Path,
    project: &pipe::project::Project,
    args: &ShowArgs,
    rows: &[Row],
    columns: &[&Key],
    labels: &BTreeMap<Key, String>,
) -> Result<ExitCode, CliError> {
    use pipe::plots::experiments::{self as page, Chart, ExpRow, ExpTable};
    let mut headers = vec!["Experiment".to_string()];
    headers.extend(columns.iter().map(|k| labels[*k].clone()));
    let table = ExpTable {
        headers,
        rows: rows
            .iter()
            .map(|r| ExpRow {
                name: if r.queued {
                    format!("{} (queued)", r.name)
                } else {
                    r.name.clone()
                },
                cells: columns.iter().map(|k| r.values.get(*k).cloned()).collect(),
            })
            .collect(),
    };
    let shown: BTreeSet<Key> = columns.iter().map(|k| (*k).clone()).collect();
    let numeric = |k: &Key| {
        rows.iter()
            .any(|r| r.values.get(k).is_some_and(Json::is_number))
    };
    let varies = |k: &Key| {
        let mut seen: Vec<&Json> = rows.iter().filter_map(|r| r.values.get(k)).collect();
        seen.dedup();
        seen.len() > 1
    };
    let pick = |flag: &str, by: &Option<String>, kind: Kind| -> Result<Option<Key>, CliError> {
        match by {
            Some(by) => sort_column(flag, by, &shown, labels).map(Some),
            None => Ok(columns
                .iter()
                .filter(|k| k.kind == kind && numeric(k))
                .find(|k| kind == Kind::Metric || varies(k))
                .or_else(|| columns.iter().find(|k| k.kind == kind && numeric(k)))
                .map(|k| (*k).clone())),
        }
    };
    let x = pick("--x", &args.x, Kind::Param)?;
    let y = pick("--y", &args.y, Kind::Metric)?;
    let index = |k: &Key| columns.iter().position(|c| *c == k).map(|i| i + 1);
    let chart = match (x.as_ref().and_then(index), y.as_ref().and_then(index)) {
        (Some(x), Some(y)) => Some(Chart { x, y }),
        _ => {
            eprintln!("note: no chart: the experiments have no numeric param and metric (choose with --x and --y)");
            None
        }
    };
    let text = page::render("Experiments", &table, chart, args.format.precision);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from("pipe_plots/experiments.html"));
    let file = crate::cli::plots::write_file(cwd, project, &out, &text)?;
    let url = format!("file://{}", file.display());
    print(&format!("{url}\n"))?;
    if args.open {
        crate::cli::plots::open(&url);
    }
    Ok(ExitCode::SUCCESS)
}

/// Sorts experiments by `column`: numbers by value, then text, then rows
/// without it.
fn sort_rows(rows: &mut [Row], column: &Key, order: SortOrder) {
    rows.sort_by(|a, b| {
        let (x, y) = (a.values.get(column), b.values.get(column));
        let o = match (x, y) {
            (None, None) => return std::cmp::Ordering::Equal,
            (Some(_), None) => return std::cmp::Ordering::Less,
            (None, Some(_)) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => table::cell(Some(x), 17).cmp(&table::cell(Some(y), 17)),
            },
        };
        match order {
            SortOrder::Asc => o,
            SortOrder::Desc => o.reverse(),
        }
    });
}

/// Days since the epoch → (year, month, day), by Howard Hinnant's method.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DD HH:MM` in UTC.
fn format_time(secs: i64) -> String {
    let (year, month, day) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// ISO 8601 in UTC: `YYYY-MM-DDTHH:MM:SSZ`.
fn iso_time(secs: i64) -> String {
    let (year, month, day) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(iso_time(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00");
    }
}
