//! Tables for the terminal, Markdown and CSV, and how values are written in
//! them.
//!
//! A table for the terminal can be fitted to its width ([`Table::fit`]):
//! columns are left out, least important first, until every row fits on
//! one line; a row is never wrapped, and what still does not fit is cut
//! with `…`.

use serde_json::Value as Json;

/// What a missing value shows as.
pub const MISSING: &str = "—";

/// Rows of cells under a heading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: Vec<String>) -> Table {
        Table {
            headers,
            rows: Vec::new(),
        }
    }

    /// Columns padded to their widest cell, two spaces apart; numbers are
    /// not right-aligned, so that a column reads the same in a pager.
    pub fn to_text(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let pad = widths[i] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table (`|` in cells escaped).
    pub fn to_markdown(&self) -> String {
        let row = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = row(&self.headers);
        out.push_str(&format!(
            "|{}\n",
            self.headers.iter().map(|_| " --- |").collect::<String>()
        ));
        for r in &self.rows {
            out.push_str(&row(r));
        }
        out
    }

    /// CSV (RFC 4180: a field with a comma, quote or line break is quoted).
    pub fn to_csv(&self) -> String {
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            out.write_record(row).expect("writing to memory");
        }
        String::from_utf8(out.into_inner().expect("writing to memory")).expect("cells are text")
    }

    /// The table without the columns that do not fit in `width` characters
    /// as [`Table::to_text`] lays it out, and the headings of those left out.
    /// `rank` gives each column its importance (lower: kept longer); among
    /// columns of one rank the rightmost goes first. Columns of rank 0 are
    /// always kept.
    pub fn fit(&self, width: usize, rank: &[usize]) -> (Table, Vec<String>) {
        let widths = self.widths();
        let mut kept: Vec<bool> = vec![true; self.headers.len()];
        let line = |kept: &[bool]| -> usize {
            let cols: Vec<usize> = widths
                .iter()
                .zip(kept)
                .filter(|(_, k)| **k)
                .map(|(w, _)| *w)
                .collect();
            cols.iter().sum::<usize>() + 2 * cols.len().saturating_sub(1)
        };
        let mut order: Vec<usize> = (0..self.headers.len()).collect();
        // Least important first; of equals, the rightmost first.
        order.sort_by(|a, b| rank[*b].cmp(&rank[*a]).then(b.cmp(a)));
        for i in order {
            if line(&kept) <= width {
                break;
            }
            if rank[i] > 0 {
                kept[i] = false;
            }
        }
        let pick = |row: &[String]| -> Vec<String> {
            row.iter()
                .zip(&kept)
                .filter(|(_, k)| **k)
                .map(|(c, _)| c.clone())
                .collect()
        };
        let dropped = self
            .headers
            .iter()
            .zip(&kept)
            .filter(|(_, k)| !**k)
            .map(|(h, _)| h.clone())
            .collect();
        let table = Table {
            headers: pick(&self.headers),
            rows: self.rows.iter().map(|r| pick(r)).collect(),
        };
        (table, dropped)
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.chars().count());
                }
            }
        }
        widths
    }
}

/// Each line of `text` cut to `width` characters, the last of a cut line
/// being `…`.
pub fn cut_lines(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.chars().count() > width {
            out.extend(line.chars().take(width.saturating_sub(1)));
            out.push('…');
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// A value for a table cell: numbers rounded to `precision` decimals and
/// written in their shortest form (`0.94070` → `0.9407`), text as it is,
/// lists and mappings as compact JSON, missing as [`MISSING`].
pub fn cell(value: Option<&Json>, precision: usize) -> String {
    match value {
        None => MISSING.to_string(),
        Some(Json::Number(n)) if n.is_f64() => number(n.as_f64().unwrap_or(f64::NAN), precision),
        // One line per row: line breaks are shown escaped.
        Some(Json::String(s)) => s.replace('\n', "\\n").replace('\r', "\\r"),
        Some(Json::Null) => "null".into(),
        Some(other) => other.to_string(),
    }
}

/// `x` rounded to `precision` decimals (at most 17), shortest form; a
/// value that would round to 0, and a very large one, in scientific
/// notation with `precision` significant digits (`1.5e-7`, `1e300`).
pub fn number(x: f64, precision: usize) -> String {
    let precision = precision.min(17);
    if !x.is_finite() {
        return x.to_string();
    }
    let tiny = x != 0.0 && x.abs() < 0.5 * 10f64.powi(-(precision as i32));
    if tiny || x.abs() >= 1e15 {
        let digits = precision.max(1) - 1;
        let text = format!("{x:.digits$e}");
        // Shortest: no trailing zeros in the mantissa.
        let (mantissa, exponent) = text.split_once('e').expect("scientific notation");
        let mantissa = if mantissa.contains('.') {
            mantissa.trim_end_matches('0').trim_end_matches('.')
        } else {
            mantissa
        };
        return format!("{mantissa}e{exponent}");
    }
    let rounded: f64 = format!("{x:.precision$}").parse().unwrap_or(x);
    // No `-0`.
    let rounded = if rounded == 0.0 { 0.0 } else { rounded };
    rounded.to_string()
}

/// A change column cell: signed, rounded, or [`MISSING`].
pub fn change(x: Option<f64>, precision: usize) -> String {
    match x {
        None => MISSING.to_string(),
        Some(x) => {
            let text = number(x, precision);
            if text.starts_with('-') || text == "0" {
                text
            } else {
                format!("+{text}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_rounded_and_short() {
        assert_eq!(cell(Some(&json!(0.940700001)), 5), "0.9407");
        assert_eq!(cell(Some(&json!(3)), 2), "3");
        assert_eq!(cell(Some(&json!(-0.000001)), 3), "-1e-6");
        assert_eq!(cell(Some(&json!(0.000001234)), 3), "1.23e-6");
        assert_eq!(cell(Some(&json!(1e300)), 5), "1e300");
        assert_eq!(number(0.1234, 65536), "0.1234");
        assert_eq!(number(2.5, 0), "2");
        assert_eq!(cell(Some(&json!("adam")), 3), "adam");
        assert_eq!(cell(Some(&json!("a\nb")), 3), "a\\nb");
        assert_eq!(cell(None, 3), MISSING);
        assert_eq!(change(Some(0.0123), 3), "+0.012");
        assert_eq!(change(Some(-0.5), 3), "-0.5");
        assert_eq!(change(None, 3), MISSING);
    }

    #[test]
    fn fitting_leaves_out_the_least_important_columns_then_cuts() {
        let mut t = Table::new(vec!["Exp".into(), "a".into(), "bb".into(), "c".into()]);
        t.rows
            .push(vec!["one".into(), "1".into(), "2".into(), "3".into()]);
        // Exp  a  bb  c: 3 + 2 + 1 + 2 + 2 + 2 + 1 = 13 characters.
        let (same, dropped) = t.fit(13, &[0, 1, 1, 1]);
        assert_eq!((same, dropped.len()), (t.clone(), 0));
        let (fitted, dropped) = t.fit(12, &[0, 1, 2, 1]);
        assert_eq!(dropped, ["bb"]);
        assert_eq!(fitted.to_text(), "Exp  a  c\none  1  3\n");
        let (fitted, dropped) = t.fit(4, &[0, 1, 2, 1]);
        assert_eq!(dropped, ["a", "bb", "c"]);
        assert_eq!(fitted.headers, ["Exp"]);
        assert_eq!(cut_lines("Experiment\nab\n", 4), "Exp…\nab\n");
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        let mut t = Table::new(vec!["Experiment".into(), "note".into()]);
        t.rows.push(vec!["a".into(), "x, \"y\"".into()]);
        t.rows.push(vec!["b".into(), String::new()]);
        assert_eq!(t.to_csv(), "Experiment,note\na,\"x, \"\"y\"\"\"\nb,\n");
    }

    #[test]
    fn text_and_markdown_layouts() {
        let mut t = Table::new(vec!["Path".into(), "Metric".into(), "Value".into()]);
        t.rows
            .push(vec!["m.json".into(), "accuracy".into(), "0.9".into()]);
        t.rows
            .push(vec!["m.json".into(), "f1".into(), "a|b".into()]);
        assert_eq!(
            t.to_text(),
            "Path    Metric    Value\nm.json  accuracy  0.9\nm.json  f1        a|b\n"
        );
        assert_eq!(
            t.to_markdown(),
            "| Path | Metric | Value |\n| --- | --- | --- |\n| m.json | accuracy | 0.9 |\n| m.json | f1 | a\\|b |\n"
        );
    }
}
