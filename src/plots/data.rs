//! Plot data files, read into one shape: a [`Table`] of named columns.
//!
//! DVC reads plot data from JSON (a list of records, or an object holding
//! one), YAML (the same), CSV and TSV (a header line, or none with
//! `header: false`: then the columns are named `0`, `1`, …). Every format
//! lands here as rows of [`Cell`]s under column names in the order the
//! file first writes them (the order matters: DVC's default `y` is the
//! last column). JSON and YAML go through one order-keeping [`Node`], so a
//! record's fields are never re-sorted.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One value of a data file.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Num(f64),
    Text(String),
}

impl Cell {
    /// The value as a number, when it is one (CSV text that reads as one
    /// was already made a number).
    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// The value as a category (`0`, `cat`, `true`).
    pub fn category(&self) -> String {
        match self {
            Cell::Null => "null".into(),
            Cell::Bool(b) => b.to_string(),
            Cell::Num(n) => format_number(*n),
            Cell::Text(t) => t.clone(),
        }
    }
}

/// A number as a person writes it: `1`, `0.25`, `1e-7`.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let text = format!("{n}");
        if text.len() > 12 {
            format!("{n:.6e}")
        } else {
            text
        }
    }
}

/// Rows of cells under named columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// In the order the file first writes them.
    pub columns: Vec<String>,
    /// Each as long as `columns`; a record without a field holds `Null`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// The format of a data file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Csv,
    Tsv,
}

impl Format {
    pub fn of(path: &str) -> Option<Format> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match ext.as_str() {
            "json" => Format::Json,
            "yaml" | "yml" => Format::Yaml,
            "csv" => Format::Csv,
            "tsv" => Format::Tsv,
            _ => return None,
        })
    }
}

/// Reads `bytes` as `format`. `key` picks the list of an object holding
/// several (`roc` of `{"roc": […], "confusion": […]}`); without it the
/// first list of records is taken, as DVC takes it. The error says why,
/// in words for a warning.
pub fn parse(
    format: Format,
    bytes: &[u8],
    key: Option<&str>,
    header: bool,
) -> Result<Table, String> {
    match format {
        Format::Csv | Format::Tsv => delimited(format, bytes, header),
        Format::Json => {
            let node: Node =
                serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
            records(node, key)
        }
        Format::Yaml => {
            let node: Node =
                yaml_serde::from_slice(bytes).map_err(|e| format!("not valid YAML: {e}"))?;
            records(node, key)
        }
    }
}

fn delimited(format: Format, bytes: &[u8], header: bool) -> Result<Table, String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(if format == Format::Tsv { b'\t' } else { b',' })
        .has_headers(header)
        .flexible(true)
        .from_reader(bytes);
    let mut table = Table::default();
    if header {
        let headers = reader
            .headers()
            .map_err(|e| format!("cannot read its header: {e}"))?;
        table.columns = headers.iter().map(|h| h.trim().to_string()).collect();
    }
    for (i, record) in reader.records().enumerate() {
        let record =
            record.map_err(|e| format!("cannot read line {}: {e}", i + 1 + header as usize))?;
        if table.columns.len() < record.len() {
            for c in table.columns.len()..record.len() {
                table.columns.push(c.to_string());
            }
        }
        let mut row: Vec<Cell> = record
            .iter()
            .map(|field| {
                let field = field.trim();
                match field.parse::<f64>() {
                    Ok(n) if !field.is_empty() => Cell::Num(n),
                    _ if field.is_empty() => Cell::Null,
                    _ => Cell::Text(field.to_string()),
                }
            })
            .collect();
        row.resize(table.columns.len(), Cell::Null);
        table.rows.push(row);
    }
    for row in &mut table.rows {
        row.resize(table.columns.len(), Cell::Null);
    }
    Ok(table)
}

fn records(node: Node, key: Option<&str>) -> Result<Table, String> {
    let list = match (node, key) {
        (Node::List(items), None) => items,
        (Node::Map(fields), Some(key)) => match fields.into_iter().find(|(k, _)| k == key) {
            Some((_, Node::List(items))) => items,
            Some(_) => return Err(format!("`{key}` is not a list of records")),
            None => return Err(format!("it has no `{key}` list")),
        },
        (Node::Map(fields), None) => match fields
            .into_iter()
            .find(|(_, v)| matches!(v, Node::List(items) if items.iter().all(|i| matches!(i, Node::Map(_)))))
        {
            Some((_, Node::List(items))) => items,
            _ => return Err("it holds no list of records (write `[{\"x\": 1, \"y\": 2}, …]`)".into()),
        },
        (Node::List(_), Some(key)) => return Err(format!("it is a list, not an object with `{key}`")),
        _ => return Err("it holds no list of records (write `[{\"x\": 1, \"y\": 2}, …]`)".into()),
    };
    let mut table = Table::default();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, item) in list.into_iter().enumerate() {
        let Node::Map(fields) = item else {
            return Err(format!(
                "item {} of its list is not a record (`{{\"x\": 1, \"y\": 2}}`)",
                i + 1
            ));
        };
        let mut row = vec![Cell::Null; table.columns.len()];
        for (k, v) in fields {
            let at = *index.entry(k.clone()).or_insert_with(|| {
                table.columns.push(k);
                table.columns.len() - 1
            });
            if row.len() <= at {
                row.resize(at + 1, Cell::Null);
            }
            row[at] = match v {
                Node::Null => Cell::Null,
                Node::Bool(b) => Cell::Bool(b),
                Node::Num(n) => Cell::Num(n),
                Node::Str(s) => Cell::Text(s),
                Node::List(_) | Node::Map(_) => Cell::Text("[nested]".into()),
            };
        }
        table.rows.push(row);
    }
    let width = table.columns.len();
    for row in &mut table.rows {
        row.resize(width, Cell::Null);
    }
    Ok(table)
}

/// A JSON or YAML document with its mappings in written order.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON or YAML value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_none<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
                Ok(Node::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
                Ok(Node::Num(n as f64))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
                Ok(Node::Num(n as f64))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Node, E> {
                Ok(Node::Num(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<Node, E> {
                Ok(Node::Str(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Node, E> {
                Ok(Node::Str(s))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
                Node::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<KeyText, Node>()? {
                    fields.push((k.0, v));
                }
                Ok(Node::Map(fields))
            }
        }
        d.deserialize_any(V)
    }
}

/// A mapping key as text (YAML allows `1:` or `true:`).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyText, D::Error> {
        Ok(KeyText(match Node::deserialize(d)? {
            Node::Str(s) => s,
            Node::Num(n) => format_number(n),
            Node::Bool(b) => b.to_string(),
            Node::Null => "null".into(),
            _ => "[nested]".into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_the_written_order_of_fields() {
        let t = parse(
            Format::Json,
            br#"{"roc": [{"fpr": 0, "tpr": 1, "threshold": null}]}"#,
            None,
            true,
        )
        .unwrap();
        assert_eq!(t.columns, ["fpr", "tpr", "threshold"]);
        assert_eq!(t.rows, [vec![Cell::Num(0.0), Cell::Num(1.0), Cell::Null]]);
    }

    #[test]
    fn csv_without_header_names_columns_by_index() {
        let t = parse(Format::Csv, b"1,a\n2,b\n", None, false).unwrap();
        assert_eq!(t.columns, ["0", "1"]);
        assert_eq!(t.rows[1], [Cell::Num(2.0), Cell::Text("b".into())]);
    }

    #[test]
    fn yaml_and_tsv() {
        let t = parse(
            Format::Yaml,
            b"- {step: 1, loss: 0.5}\n- {step: 2, loss: 0.25}\n",
            None,
            true,
        )
        .unwrap();
        assert_eq!(t.columns, ["step", "loss"]);
        let t = parse(Format::Tsv, b"step\tloss\n1\t0.5\n", None, true).unwrap();
        assert_eq!(t.rows, [vec![Cell::Num(1.0), Cell::Num(0.5)]]);
    }

    #[test]
    fn an_object_without_records_is_an_error() {
        let e = parse(Format::Json, br#"{"a": 1}"#, None, true).unwrap_err();
        assert_eq!(
            e,
            "it holds no list of records (write `[{\"x\": 1, \"y\": 2}, …]`)"
        );
    }
}
