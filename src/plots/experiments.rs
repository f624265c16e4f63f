//! The page of `pipe exp show --html`: the experiments as a table that
//! sorts by any column (a click on its heading: a few lines of inline
//! script, nothing loaded), and a chart of one metric against one param,
//! each experiment a labelled point. The x axis is logarithmic when the
//! param's values are positive and span two decades or more (`fit.C` from
//! 0.01 to 100).

use std::fmt::Write;

use serde_json::Value as Json;

use super::request::Template;
use super::svg::{self, escape};
use super::{page, Content, Plot, Point, Series, Value};
use crate::paths::RelPath;

/// The table as `exp show` would print it.
#[derive(Debug, Clone)]
pub struct ExpTable {
    pub headers: Vec<String>,
    pub rows: Vec<ExpRow>,
}

#[derive(Debug, Clone)]
pub struct ExpRow {
    pub name: String,
    /// Under `headers[1..]`; the first heading names the experiment.
    pub cells: Vec<Option<Json>>,
}

/// The chart: the columns of the param (x) and the metric (y), as indexes
/// of [`ExpTable::headers`].
#[derive(Debug, Clone, Copy)]
pub struct Chart {
    pub x: usize,
    pub y: usize,
}

/// Whether values span two decades or more (all positive): a log axis.
pub fn spans_decades(values: &[f64]) -> bool {
    let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    min > 0.0 && max / min >= 100.0
}

/// The whole page; `precision` rounds the numbers shown in the table.
pub fn render(title: &str, table: &ExpTable, chart: Option<Chart>, precision: usize) -> String {
    let mut body = String::new();
    if let Some(chart) = chart {
        body.push_str(&chart_svg(table, chart).unwrap_or_else(|| {
            format!(
                "<p class=\"meta\">No experiment has numbers for both {} and {}.</p>\n",
                escape(&table.headers[chart.x]),
                escape(&table.headers[chart.y])
            )
        }));
    }
    body.push_str("<div class=\"wide\"><table id=\"experiments\">\n<thead><tr>");
    for h in &table.headers {
        let _ = write!(body, "<th title=\"sort by {0}\">{0}</th>", escape(h));
    }
    body.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        let _ = write!(body, "<tr><td>{}</td>", escape(&row.name));
        for cell in &row.cells {
            let shown = crate::compare::table::cell(cell.as_ref(), precision);
            match cell.as_ref().and_then(Json::as_f64) {
                Some(n) => {
                    let _ = write!(body, "<td data-v=\"{n}\">{}</td>", escape(&shown));
                }
                None => {
                    let _ = write!(body, "<td>{}</td>", escape(&shown));
                }
            }
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</tbody>\n</table></div>\n");
    body.push_str(SORT_SCRIPT);
    page::document(title, &body)
}

/// Sorts the table by the clicked column: numbers by value, then text;
/// a second click reverses.
const SORT_SCRIPT: &str = r#"<script>
(function () {
  var table = document.getElementById("experiments");
  var heads = table.tHead.rows[0].cells;
  for (var i = 0; i < heads.length; i++) {
    heads[i].addEventListener("click", (function (col) {
      return function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var asc = this.getAttribute("data-order") !== "asc";
        for (var j = 0; j < heads.length; j++) heads[j].removeAttribute("data-order");
        this.setAttribute("data-order", asc ? "asc" : "desc");
        rows.sort(function (a, b) {
          var x = a.cells[col], y = b.cells[col];
          var nx = x.hasAttribute("data-v") ? parseFloat(x.getAttribute("data-v")) : null;
          var ny = y.hasAttribute("data-v") ? parseFloat(y.getAttribute("data-v")) : null;
          var o;
          if (nx !== null && ny !== null) o = nx - ny;
          else if (nx !== null) o = -1;
          else if (ny !== null) o = 1;
          else o = x.textContent.localeCompare(y.textContent);
          return asc ? o : -o;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      };
    })(i));
  }
})();
</script>
"#;

fn chart_svg(table: &ExpTable, chart: Chart) -> Option<String> {
    let number = |row: &ExpRow, column: usize| -> Option<f64> {
        row.cells.get(column.checked_sub(1)?)?.as_ref()?.as_f64()
    };
    // Rows at the same place (the workspace and its baseline, often)
    // share one point, labelled with every name.
    let mut points: Vec<Point> = Vec::new();
    for row in &table.rows {
        let (Some(x), Some(y)) = (number(row, chart.x), number(row, chart.y)) else {
            continue;
        };
        let (x, y) = (Value::Num(x), Value::Num(y));
        match points.iter_mut().find(|p| p.x == x && p.y == y) {
            Some(p) => {
                let label = p.label.get_or_insert_with(String::new);
                label.push_str(", ");
                label.push_str(&row.name);
            }
            None => points.push(Point {
                x,
                y,
                count: None,
                label: Some(row.name.clone()),
            }),
        }
    }
    if points.is_empty() {
        return None;
    }
    let xs: Vec<f64> = points.iter().filter_map(|p| p.x.number()).collect();
    let (x_label, y_label) = (&table.headers[chart.x], &table.headers[chart.y]);
    let plot = Plot {
        id: "chart".into(),
        title: format!("{y_label} against {x_label}"),
        template: Template::Scatter,
        x_label: x_label.clone(),
        y_label: y_label.clone(),
        content: Content::Chart {
            series: vec![Series {
                name: "experiments".into(),
                rev: String::new(),
                file: RelPath::from_normalized(""),
                x: x_label.clone(),
                y: y_label.clone(),
                note: None,
                total: points.len(),
                points,
            }],
        },
        warnings: Vec::new(),
    };
    let log_x = spans_decades(&xs);
    let svg = svg::draw(&plot, svg::Options { log_x })?;
    Some(format!(
        "<section id=\"chart\">\n<p class=\"meta\">x: {}{}</p>\n{svg}\n</section>\n",
        escape(x_label),
        if log_x { " (log scale)" } else { "" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decades() {
        assert!(spans_decades(&[0.01, 1.0, 100.0]));
        assert!(!spans_decades(&[1.0, 50.0]));
        assert!(!spans_decades(&[0.0, 100.0]));
    }
}
