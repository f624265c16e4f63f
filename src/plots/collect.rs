//! Reading a plot's files at each side into [`Plot`]s.
//!
//! Files come through [`Reader`] (the workspace, or a commit's tree and
//! the cache, as `pipe metrics diff` reads them), each parsed once per side
//! however many series use it. Every problem of one series (the file is
//! missing or not parseable, the column is not there, it holds text among
//! numbers) is a warning on its plot, with the file and side named; the
//! series is left out and the rest is drawn.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::data::{self, Cell, Table};
use super::request::{image_mime, Column, Request, Source, Template};
use super::{Content, Image, Plot, Point, Series, Value, MAX_POINTS};
use crate::compare::{Reader, Side};
use crate::error::Error;
use crate::git::Repo;
use crate::paths::RelPath;
use crate::project::Project;

/// A parsed file: side, file, list key, header.
type TableKey = (usize, RelPath, Option<String>, bool);

/// The plots of `requests` at `sides` (one series per side, file and
/// column).
pub fn collect(
    project: &Project,
    repo: Option<&Repo>,
    sides: &[Side],
    requests: &[Request],
) -> Result<Vec<Plot>, Error> {
    let mut readers: Vec<Reader> = sides
        .iter()
        .map(|s| Reader::new(project, repo, s.clone()))
        .collect();
    let mut files: HashMap<(usize, RelPath), Option<Rc<Vec<u8>>>> = HashMap::new();
    let mut tables: HashMap<TableKey, Rc<Result<Table, String>>> = HashMap::new();
    let mut plots = Vec::new();
    for request in requests {
        let mut warnings = Vec::new();
        if let Some(name) = &request.unknown_template {
            warnings.push(format!(
                "unknown template `{name}`, drawn as `linear` (known: {})",
                Template::ALL.map(|t| t.name()).join(", ")
            ));
        }
        let at = |i: usize| -> String {
            if sides.len() > 1 || !matches!(sides[i], Side::Workspace) {
                format!(" at {}", sides[i].label())
            } else {
                String::new()
            }
        };
        let mut read = |i: usize,
                        file: &RelPath,
                        readers: &mut Vec<Reader>|
         -> Result<Option<Rc<Vec<u8>>>, Error> {
            if let Some(bytes) = files.get(&(i, file.clone())) {
                return Ok(bytes.clone());
            }
            let bytes = match readers[i].read(file) {
                Ok(b) => b.map(Rc::new),
                // A directory, an unreadable file: a warning, like a missing one.
                Err(Error::Io { .. }) => None,
                Err(e) => return Err(e),
            };
            files.insert((i, file.clone()), bytes.clone());
            Ok(bytes)
        };
        let content = match &request.source {
            Source::Image(file) => {
                let mut images = Vec::new();
                for (i, side) in sides.iter().enumerate() {
                    match read(i, file, &mut readers)? {
                        Some(bytes) => images.push(Image {
                            rev: side.label(),
                            file: file.clone(),
                            mime: image_mime(file.as_str()).unwrap_or("application/octet-stream"),
                            bytes: bytes.to_vec(),
                        }),
                        None => warnings.push(format!("{file}{}: no such file", at(i))),
                    }
                }
                Content::Images { images }
            }
            Source::Data(columns) => {
                let mut series = Vec::new();
                let several_files = request.files().len() > 1;
                for i in 0..sides.len() {
                    for column in columns {
                        let key = (i, column.file.clone(), column.key.clone(), column.header);
                        let table = match tables.get(&key) {
                            Some(t) => t.clone(),
                            None => {
                                let parsed = match read(i, &column.file, &mut readers)? {
                                    None => Err("no such file".to_string()),
                                    Some(bytes) => match data::Format::of(column.file.as_str()) {
                                        None => Err("not a data file pipe can read (JSON, YAML, CSV, TSV) or an image".into()),
                                        Some(format) => data::parse(format, &bytes, column.key.as_deref(), column.header),
                                    },
                                };
                                let t = Rc::new(parsed);
                                tables.insert(key, t.clone());
                                t
                            }
                        };
                        let where_ = format!("{}{}", column.file, at(i));
                        let table = match table.as_ref() {
                            Ok(t) => t,
                            Err(why) => {
                                let w = format!("{where_}: {why}");
                                if !warnings.contains(&w) {
                                    warnings.push(w);
                                }
                                continue;
                            }
                        };
                        let mut parts = Vec::new();
                        if sides.len() > 1 {
                            parts.push(sides[i].label());
                        }
                        match make_series(request.template, column, table, &where_, &mut warnings) {
                            Some(mut s) => {
                                if columns.len() > 1 {
                                    parts.push(if several_files {
                                        format!("{}: {}", column.file, s.y)
                                    } else {
                                        s.y.clone()
                                    });
                                }
                                s.name = if parts.is_empty() {
                                    sides[i].label()
                                } else {
                                    parts.join(" · ")
                                };
                                s.rev = sides[i].label();
                                series.push(s);
                            }
                            None => continue,
                        }
                    }
                }
                Content::Chart { series }
            }
        };
        let series: &[Series] = match &content {
            Content::Chart { series } => series,
            Content::Images { .. } => &[],
        };
        let first = |f: fn(&Series) -> &String, fallback: &str| -> String {
            let mut names: Vec<&String> = series.iter().map(f).collect();
            names.dedup();
            match names.as_slice() {
                [one] => (*one).clone(),
                [] => fallback.to_string(),
                _ => fallback.to_string(),
            }
        };
        let (x_default, y_default) = if request.template.is_bar() {
            ("value", "")
        } else {
            ("x", "value")
        };
        plots.push(Plot {
            id: request.id.clone(),
            title: request.title.clone().unwrap_or_else(|| request.id.clone()),
            template: request.template,
            x_label: request
                .x_label
                .clone()
                .unwrap_or_else(|| first(|s| &s.x, x_default)),
            y_label: request
                .y_label
                .clone()
                .unwrap_or_else(|| first(|s| &s.y, y_default)),
            content,
            warnings,
        });
    }
    Ok(plots)
}

/// One series of `table`, or a warning on why not.
fn make_series(
    template: Template,
    column: &Column,
    table: &Table,
    where_: &str,
    warnings: &mut Vec<String>,
) -> Option<Series> {
    let find = |name: &str, warnings: &mut Vec<String>| -> Option<usize> {
        let at = table.column(name);
        if at.is_none() {
            let near = crate::spec::diagnostic::did_you_mean(
                name,
                table.columns.iter().map(String::as_str),
            );
            warnings.push(format!(
                "{where_}: no column `{name}` (its columns: {}){}",
                if table.columns.is_empty() {
                    "none".to_string()
                } else {
                    table.columns.join(", ")
                },
                near.map(|n| format!("; did you mean `{n}`?"))
                    .unwrap_or_default()
            ));
        }
        at
    };
    let y_name = match &column.y {
        Some(y) => y.clone(),
        None => match table.columns.last() {
            Some(last) => last.clone(),
            None => {
                warnings.push(format!("{where_}: no data"));
                return None;
            }
        },
    };
    let y = find(&y_name, warnings)?;
    let x = match &column.x {
        Some(name) => Some(find(name, warnings)?),
        None => None,
    };
    let count = match &column.count {
        Some(name) => Some(find(name, warnings)?),
        None => None,
    };
    let x_name = column.x.clone().unwrap_or_else(|| "step".into());
    let total = table.rows.len();
    let mut series = Series {
        name: String::new(),
        rev: String::new(),
        file: column.file.clone(),
        x: x_name.clone(),
        y: y_name.clone(),
        note: None,
        total,
        points: Vec::new(),
    };
    if template.is_confusion() {
        let Some(x) = x else {
            warnings.push(format!(
                "{where_}: a confusion matrix needs `x` (the predicted class column)"
            ));
            return None;
        };
        let mut cells: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut order: Vec<(String, String)> = Vec::new();
        for row in &table.rows {
            let key = (row[x].category(), row[y].category());
            let weight = count.map_or(Some(1.0), |c| row[c].number()).unwrap_or(0.0);
            if !cells.contains_key(&key) {
                order.push(key.clone());
            }
            *cells.entry(key).or_default() += weight;
        }
        series.points = order
            .into_iter()
            .map(|k| {
                let n = cells[&k];
                Point {
                    x: Value::Text(k.0),
                    y: Value::Text(k.1),
                    count: Some(n),
                    label: None,
                }
            })
            .collect();
        return Some(series);
    }
    // Numbers on the value axis (y; x for bars): other rows are left out.
    let (value_col, value_name) = if template.is_bar() {
        match x {
            Some(x) => (x, x_name.clone()),
            None => {
                warnings.push(format!(
                    "{where_}: a bar chart needs `x` (the column of lengths)"
                ));
                return None;
            }
        }
    } else {
        (y, y_name.clone())
    };
    let mut text_rows = 0;
    let mut null_rows = 0;
    let mut numbers = 0;
    for row in &table.rows {
        match &row[value_col] {
            Cell::Num(n) if n.is_finite() => numbers += 1,
            Cell::Null => null_rows += 1,
            _ => text_rows += 1,
        }
    }
    if numbers == 0 {
        warnings.push(format!("{where_}: column `{value_name}` holds no numbers"));
        return None;
    }
    if text_rows > 0 {
        warnings.push(format!(
            "{where_}: column `{value_name}` mixes numbers and text: {text_rows} of {total} rows left out"
        ));
    }
    let _ = null_rows;
    let x_numeric = x.is_none_or(|x| {
        table.rows.iter().all(|r| {
            matches!(r[x], Cell::Num(_) | Cell::Null) || !matches!(r[value_col], Cell::Num(_))
        })
    });
    for (i, row) in table.rows.iter().enumerate() {
        let Some(v) = row[value_col].number().filter(|n| n.is_finite()) else {
            continue;
        };
        if template.is_bar() {
            series.points.push(Point {
                x: Value::Num(v),
                y: Value::Text(row[y].category()),
                count: None,
                label: None,
            });
            continue;
        }
        let xv = match x {
            None => Value::Num(i as f64),
            Some(x) => match (&row[x], x_numeric) {
                (Cell::Num(n), true) => Value::Num(*n),
                (Cell::Null, _) => continue,
                (cell, _) => Value::Text(cell.category()),
            },
        };
        series.points.push(Point {
            x: xv,
            y: Value::Num(v),
            count: None,
            label: None,
        });
    }
    if column.auc {
        series.note = auc(&series.points).map(|a| format!("AUC {a:.3}"));
    }
    if template == Template::BarHorizontalSorted {
        series.points.sort_by(|a, b| {
            b.x.number()
                .partial_cmp(&a.x.number())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    }
    if series.points.len() > MAX_POINTS {
        let before = series.points.len();
        series.points = downsample(std::mem::take(&mut series.points), MAX_POINTS);
        warnings.push(format!(
            "{where_}: {before} points, down-sampled to {} for drawing (each bucket keeps its first, lowest and highest point)",
            series.points.len()
        ));
    }
    Some(series)
}

/// The area under a curve of numeric points, by trapezoids.
fn auc(points: &[Point]) -> Option<f64> {
    let xy: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.x.number()?, p.y.number()?)))
        .collect();
    if xy.len() < 2 {
        return None;
    }
    Some(
        xy.windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum::<f64>()
            .abs(),
    )
}

/// At most about `max` points: the series cut into buckets, each keeping
/// its first, lowest and highest point in their order.
fn downsample(points: Vec<Point>, max: usize) -> Vec<Point> {
    let per = 3;
    let buckets = (max / per).max(1);
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(max);
    for chunk in points.chunks(size) {
        let y = |p: &Point| p.y.number().unwrap_or(0.0);
        let mut keep = vec![0];
        let lo = (0..chunk.len())
            .min_by(|&a, &b| y(&chunk[a]).total_cmp(&y(&chunk[b])))
            .unwrap_or(0);
        let hi = (0..chunk.len())
            .max_by(|&a, &b| y(&chunk[a]).total_cmp(&y(&chunk[b])))
            .unwrap_or(0);
        keep.extend([lo, hi]);
        keep.sort_unstable();
        keep.dedup();
        out.extend(keep.into_iter().map(|i| chunk[i].clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_the_diagonal_is_a_half() {
        let p = |x: f64, y: f64| Point {
            x: Value::Num(x),
            y: Value::Num(y),
            count: None,
            label: None,
        };
        assert_eq!(auc(&[p(0.0, 0.0), p(1.0, 1.0)]), Some(0.5));
        assert_eq!(auc(&[p(0.0, 0.0), p(0.0, 1.0), p(1.0, 1.0)]), Some(1.0));
    }

    #[test]
    fn downsampling_keeps_spikes() {
        let mut points: Vec<Point> = (0..10_000)
            .map(|i| Point {
                x: Value::Num(i as f64),
                y: Value::Num(0.0),
                count: None,
                label: None,
            })
            .collect();
        points[5_555].y = Value::Num(100.0);
        let out = downsample(points, 300);
        assert!(out.len() <= 300, "{}", out.len());
        assert!(out.iter().any(|p| p.y == Value::Num(100.0)));
    }
}
