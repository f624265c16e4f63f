//! Key-by-key differences between the files of two sides.

use serde::Serialize;
use serde_json::Value as Json;

use super::{Files, Loaded};

/// One key of one file, on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffRow {
    pub path: String,
    pub key: String,
    /// `None`: missing on that side.
    pub old: Option<Json>,
    pub new: Option<Json>,
    /// `new − old` when both are numbers.
    pub change: Option<f64>,
}

impl DiffRow {
    pub fn changed(&self) -> bool {
        self.old != self.new
    }
}

/// Every key of every file of `old` and `new`, sorted by file then key;
/// without `all`, only the keys whose value differs.
pub fn diff(old: &Files, new: &Files, all: bool) -> Vec<DiffRow> {
    let empty = super::Flat::new();
    let values = |files: &'_ Files, path| -> super::Flat {
        files
            .get(path)
            .and_then(Loaded::values)
            .unwrap_or(&empty)
            .clone()
    };
    let mut paths: Vec<_> = old.keys().chain(new.keys()).cloned().collect();
    paths.sort();
    paths.dedup();
    let mut rows = Vec::new();
    for path in &paths {
        let (a, b) = (values(old, path), values(new, path));
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (o, n) = (a.get(key).cloned(), b.get(key).cloned());
            let change = match (
                o.as_ref().and_then(Json::as_f64),
                n.as_ref().and_then(Json::as_f64),
            ) {
                (Some(x), Some(y)) => Some(y - x),
                _ => None,
            };
            let row = DiffRow {
                path: path.to_string(),
                key: key.clone(),
                old: o,
                new: n,
                change,
            };
            if all || row.changed() {
                rows.push(row);
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::RelPath;
    use serde_json::json;

    fn files(pairs: &[(&str, Json)]) -> Files {
        let mut flat = super::super::Flat::new();
        for (k, v) in pairs {
            flat.insert(k.to_string(), v.clone());
        }
        let mut f = Files::new();
        f.insert(RelPath::from_normalized("m.json"), Loaded::Values(flat));
        f
    }

    #[test]
    fn numbers_get_a_change_and_missing_keys_none() {
        let a = files(&[("acc", json!(0.5)), ("gone", json!(1)), ("same", json!(2))]);
        let b = files(&[
            ("acc", json!(0.75)),
            ("new", json!("x")),
            ("same", json!(2)),
        ]);
        let rows = diff(&a, &b, false);
        let keys: Vec<_> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["acc", "gone", "new"]);
        assert_eq!(rows[0].change, Some(0.25));
        assert_eq!(
            (rows[1].old.clone(), rows[1].new.clone()),
            (Some(json!(1)), None)
        );
        assert_eq!(rows[2].change, None);
        assert_eq!(diff(&a, &b, true).len(), 4);
    }

    #[test]
    fn a_bad_file_counts_as_missing() {
        let a = files(&[("acc", json!(0.5))]);
        let mut b = Files::new();
        b.insert(
            RelPath::from_normalized("m.json"),
            Loaded::Bad("nope".into()),
        );
        let rows = diff(&a, &b, false);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].new, None);
    }
}
