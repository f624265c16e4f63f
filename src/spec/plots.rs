//! Plot definitions, as data: what to draw, never how.
//!
//! Two places declare plots, as in `dvc.yaml`:
//!
//! - the top-level `plots:` section: a list whose entries are a path
//!   (`- eval/importance.png`), or a plot id with its options
//!   (`- ROC: {x: fpr, y: {eval/roc.json: tpr}, template: simple}`). The
//!   id is either a path (then `x`/`y` name columns of that file) or a free
//!   name (then `y` maps files to their columns, and `x` is one column or a
//!   map of files to one column each). Read into [`PlotDef`]s.
//! - a stage's `plots:` outputs, which may carry the options of their plot
//!   (`- roc.csv: {x: fpr, y: tpr, template: simple, header: true}`). Read
//!   into [`PlotOptions`] on the [`super::Output`].
//!
//! Values arrive here with `${…}` already expanded. Paths are made
//! project-relative (from the pipeline file's directory) and checked like
//! every other path; a plot's shape is checked as DVC's schema checks it,
//! and every problem is reported, not only the first. Rendering is another
//! module's job: this one only says what was declared.

use serde::Serialize;
use yaml_serde::{Mapping, Value};

use super::raw::{key_text, unknown, Problem, PLOT_FIELDS};
use crate::paths::RelPath;

/// One entry of the top-level `plots:` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlotDef {
    /// The id as written: a path or a free name (`ROC`).
    pub id: String,
    /// The id as a project path, when it names a file or directory (no
    /// `y` map of files).
    pub file: Option<RelPath>,
    /// Column(s), or file → column, of the x axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<Axis>,
    /// Column(s), or file → column(s), of the y axis.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<Axis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y_label: Option<String>,
}

impl PlotDef {
    /// Every data file the plot reads: its own path, or the files of its
    /// `y` (then `x`) maps, each once, in the order written.
    pub fn files(&self) -> Vec<&RelPath> {
        let mut out: Vec<&RelPath> = self.file.iter().collect();
        for axis in [&self.y, &self.x].into_iter().flatten() {
            if let Axis::Files(files) = axis {
                for f in files {
                    if !out.contains(&&f.file) {
                        out.push(&f.file);
                    }
                }
            }
        }
        out
    }
}

/// The data of one axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// Columns (fields) of the plot's own file: one or several.
    Columns(Vec<String>),
    /// Files, each with its column(s), in the order written.
    Files(Vec<FileColumns>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileColumns {
    pub file: RelPath,
    pub columns: Vec<String>,
}

/// The plot options of a stage's `plots:` output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlotOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y_label: Option<String>,
    /// A CSV/TSV file has a header line (DVC's default: true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
}

/// Reads a plot option of a stage output into `options`; false when
/// `key` is not a plot option.
pub fn output_option(
    options: &mut PlotOptions,
    path: &str,
    key: &str,
    value: &Value,
) -> Result<bool, Problem> {
    let text = |value: &Value| -> Result<String, Problem> {
        scalar_text(value).ok_or_else(|| {
            Problem::new(
                key,
                format!("`{key}` of plot `{path}` must be text (a column name, a title, …)"),
            )
        })
    };
    match key {
        "x" => options.x = Some(text(value)?),
        "y" => options.y = Some(text(value)?),
        "template" => options.template = Some(text(value)?),
        "title" => options.title = Some(text(value)?),
        "x_label" => options.x_label = Some(text(value)?),
        "y_label" => options.y_label = Some(text(value)?),
        "header" => {
            options.header = Some(value.as_bool().ok_or_else(|| {
                Problem::new(
                    key,
                    format!("`header` of plot `{path}` must be true or false"),
                )
            })?)
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The top-level `plots:` section (already rendered). `path` turns a
/// written path into a project path, or says why it cannot.
pub fn read_top_level(
    value: &Value,
    path: &dyn Fn(&str) -> Result<RelPath, Problem>,
) -> (Vec<PlotDef>, Vec<Problem>) {
    let mut plots = Vec::new();
    let mut problems = Vec::new();
    let Value::Sequence(entries) = value else {
        problems.push(
            Problem::new("plots", "`plots` must be a list of plots")
                .hint("write `plots:` then one `- path` or `- name: {x: …, y: …}` per line"),
        );
        return (plots, problems);
    };
    let mut ids: Vec<String> = Vec::new();
    for entry in entries {
        match entry {
            Value::String(id) => ids.push(id.clone()),
            Value::Mapping(map) => ids.extend(map.keys().map(key_text)),
            _ => {}
        }
        match entry {
            Value::String(id) => match path(id) {
                Ok(file) => plots.push(PlotDef {
                    id: id.clone(),
                    file: Some(file),
                    ..PlotDef::empty(id)
                }),
                Err(p) => problems.push(p),
            },
            Value::Mapping(map) => {
                for (k, v) in map {
                    let id = key_text(k);
                    match definition(&id, v, path) {
                        Ok(def) => plots.push(def),
                        Err(mut p) => problems.append(&mut p),
                    }
                }
            }
            other => problems.push(Problem::new(
                "plots",
                format!(
                    "a plot is a path or `name: {{options}}`, not `{}`",
                    yaml_serde::to_string(other).unwrap_or_default().trim()
                ),
            )),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in &ids {
        if !seen.insert(id) {
            problems.push(
                Problem::new(id, format!("plot `{id}` is declared twice"))
                    .hint("every plot needs its own id"),
            );
        }
    }
    (plots, problems)
}

impl PlotDef {
    fn empty(id: &str) -> PlotDef {
        PlotDef {
            id: id.to_string(),
            file: None,
            x: None,
            y: None,
            template: None,
            title: None,
            x_label: None,
            y_label: None,
        }
    }
}

fn definition(
    id: &str,
    value: &Value,
    path: &dyn Fn(&str) -> Result<RelPath, Problem>,
) -> Result<PlotDef, Vec<Problem>> {
    let mut def = PlotDef::empty(id);
    let mut problems = Vec::new();
    let options = match value {
        Value::Null => Mapping::new(),
        Value::Mapping(m) => m.clone(),
        _ => {
            return Err(vec![Problem::new(
                id,
                format!(
                    "the options of plot `{id}` must be a mapping such as {{x: step, y: loss}}"
                ),
            )])
        }
    };
    for (k, v) in &options {
        let key = key_text(k);
        let text = |v: &Value| {
            scalar_text(v)
                .ok_or_else(|| Problem::new(&key, format!("`{key}` of plot `{id}` must be text")))
        };
        let result = match key.as_str() {
            "x" => axis(id, "x", v, false, path).map(|a| def.x = Some(a)),
            "y" => axis(id, "y", v, true, path).map(|a| def.y = Some(a)),
            "template" => text(v).map(|t| def.template = Some(t)),
            "title" => text(v).map(|t| def.title = Some(t)),
            "x_label" => text(v).map(|t| def.x_label = Some(t)),
            "y_label" => text(v).map(|t| def.y_label = Some(t)),
            _ => Err(unknown(&key, PLOT_FIELDS, "plot fields")),
        };
        if let Err(p) = result {
            problems.push(p);
        }
    }
    let y_files = matches!(def.y, Some(Axis::Files(_)));
    if !y_files {
        // The id is the data file.
        match path(id) {
            Ok(file) => def.file = Some(file),
            Err(p) => problems.push(p),
        }
        if matches!(def.x, Some(Axis::Files(_))) {
            problems.push(
                Problem::new(id, format!("plot `{id}`: `x` names files but `y` does not"))
                    .hint("give `y` as a map of files to columns too, e.g. y: {train.csv: acc}"),
            );
        }
    }
    if problems.is_empty() {
        Ok(def)
    } else {
        Err(problems)
    }
}

/// `x` is one column, or file → one column; `y` (`many`) also takes a
/// list of columns, and file → column(s).
fn axis(
    id: &str,
    name: &str,
    value: &Value,
    many: bool,
    path: &dyn Fn(&str) -> Result<RelPath, Problem>,
) -> Result<Axis, Problem> {
    let wrong = || {
        let shapes = if many {
            "a column, a list of columns, or a map of files to column(s)"
        } else {
            "a column, or a map of files to one column each"
        };
        Problem::new(name, format!("`{name}` of plot `{id}` must be {shapes}"))
    };
    let columns = |v: &Value, many: bool| -> Option<Vec<String>> {
        match v {
            Value::Sequence(items) if many && !items.is_empty() => {
                items.iter().map(scalar_text).collect()
            }
            other => scalar_text(other).map(|c| vec![c]),
        }
    };
    match value {
        Value::Mapping(map) => {
            let mut files = Vec::new();
            for (k, v) in map {
                let file = path(&key_text(k))?;
                let columns = columns(v, many).ok_or_else(wrong)?;
                files.push(FileColumns { file, columns });
            }
            Ok(Axis::Files(files))
        }
        other => columns(other, many).map(Axis::Columns).ok_or_else(wrong),
    }
}

/// A scalar as text (a column may be named `1`).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> (Vec<PlotDef>, Vec<Problem>) {
        let value: Value = yaml_serde::from_str(yaml).unwrap();
        read_top_level(&value, &|p: &str| {
            RelPath::parse(p, None).map_err(|e| Problem::new(p, e.to_string()))
        })
    }

    #[test]
    fn reads_dvcs_example_plots() {
        let (plots, problems) = read(
            "- ROC:\n    template: simple\n    x: fpr\n    y:\n      eval/roc/train.json: tpr\n      eval/roc/test.json: tpr\n- eval/importance.png\n- loss.csv:\n    y: [train, val]\n    x: step\n- img.png:\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(plots.len(), 4);
        assert_eq!(plots[0].id, "ROC");
        assert_eq!(plots[0].file, None);
        assert_eq!(plots[0].x, Some(Axis::Columns(vec!["fpr".into()])));
        assert_eq!(
            plots[0].files(),
            [
                &RelPath::from_normalized("eval/roc/train.json"),
                &RelPath::from_normalized("eval/roc/test.json")
            ]
        );
        assert_eq!(
            plots[1].file,
            Some(RelPath::from_normalized("eval/importance.png"))
        );
        assert_eq!(
            plots[2].y,
            Some(Axis::Columns(vec!["train".into(), "val".into()]))
        );
        assert_eq!(plots[3].file, Some(RelPath::from_normalized("img.png")));
    }

    #[test]
    fn every_problem_is_reported() {
        let (_, problems) = read(
            "- a.csv:\n    xx: 1\n    y: {k: [v]}\n    x: {f.csv: [1, 2]}\n- b.csv:\n    x: [a, b]\n- a.csv\n",
        );
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unknown field `xx`",
                "`x` of plot `a.csv` must be a column, or a map of files to one column each",
                "`x` of plot `b.csv` must be a column, or a map of files to one column each",
                "plot `a.csv` is declared twice",
            ]
        );
    }
}
