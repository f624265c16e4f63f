//! `split`: keep the labelled rows of a table, shuffle them with a seed,
//! and write a train and a test table.
//!
//! # What it does
//!
//! 1. Read the input table ([`crate::table`]: TSV, CSV or parquet). The
//!    text and label columns are read as text, exactly as written.
//! 2. Keep the rows whose label, compared **as its text** (`"0"`, `"4"`,
//!    `"pos"`), is a key of `classes`, and give each the integer class its
//!    key maps to (`classes: {0: 0, 4: 1}` keeps Sentiment 0 and 4 as
//!    classes 0 and 1). Without `classes`, every row is kept and its label,
//!    which must then be an integer, is its class.
//! 3. Shuffle the kept rows with a seeded permutation and cut it: the first
//!    `n_test` rows of the permutation are the test set, the rest the
//!    training set, both in permutation order (scikit-learn's
//!    `ShuffleSplit`). With `n` kept rows, `n_test = ceil(test_size · n)`
//!    for a fraction and `test_size` itself for a whole number, and
//!    `n_train = n − n_test` (`train_test_split`'s rounding).
//! 4. With `stratify`, every class is split in the same proportion:
//!    class `c` with `n_c` rows gives `n_test · n_c / n` test rows,
//!    rounded by largest remainder (ties to the smaller class) so that the
//!    total is still `n_test`. Walking the same permutation, a row goes to
//!    test while its class still needs test rows, so the shuffled order is
//!    kept within both outputs.
//! 5. Write both as parquet ([`crate::table::write_parquet`], atomic):
//!    **all** the input's columns plus an integer column `label` holding
//!    the class. When every kept label is written as an integer, the label
//!    column itself is stored as integers too (as type inference would have
//!    read it), so pandas and polars users can compare it with numbers.
//!
//! # Reproducibility
//!
//! The permutation is a Fisher–Yates shuffle driven by the crate's own
//! [`SplitMix64`] ([`permutation`]): for `i` from `n − 1` down to 1, swap
//! position `i` with position `below(i + 1)`. It depends on nothing but
//! `n` and `seed`, so the same input and params give the same split on
//! every machine and with every version of polars. (It is not the
//! permutation NumPy would draw for the same seed.) Bump [`VERSION`]
//! whenever the output could change.
//!
//! # Empty texts
//!
//! A row whose text is empty (or null, in parquet) is kept: it becomes an
//! empty document, which the vectorizer turns into an all-zero TF-IDF row,
//! so the classifier scores it by its intercept alone. The report counts
//! such rows in `empty_texts`.
//!
//! # Errors
//!
//! No row left after filtering (the message lists the labels the file
//! has), a single class left, a non-integer label when `classes` is not
//! given, a `test_size` that leaves train or test empty, a table error
//! (missing column, bad UTF-8, …), or an input that already has a `label`
//! column other than the label column itself.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::synth::SplitMix64;
use crate::table::{self, quoted_list, KeepRows, Table, TableError};

/// The algorithm version; it enters the stage fingerprint.
pub const VERSION: u32 = 2;

/// The name of the class column the split adds.
pub const LABEL: &str = "label";

/// How many rows go to the test set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TestSize {
    /// A share of the rows in (0, 1); `ceil(share · n)` rows.
    Fraction(f64),
    /// A number of rows.
    Count(u64),
}

impl TestSize {
    /// The number of test rows out of `n` (may be 0 or `n`: the caller
    /// checks).
    pub fn n_test(self, n: usize) -> usize {
        match self {
            TestSize::Fraction(f) => (f * n as f64).ceil() as usize,
            TestSize::Count(c) => usize::try_from(c).unwrap_or(usize::MAX),
        }
    }
}

impl fmt::Display for TestSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestSize::Fraction(v) => write!(f, "{v}"),
            TestSize::Count(c) => write!(f, "{c} rows"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SplitParams {
    /// The column of texts (default `Phrase`).
    pub text_column: String,
    /// The column of labels (default `Sentiment`).
    pub label_column: String,
    /// Label text → class. `None`: keep every row, the label is the class.
    pub classes: Option<BTreeMap<String, i64>>,
    /// Default 0.2.
    pub test_size: TestSize,
    /// Default 42.
    pub seed: u64,
    /// Split each class in the same proportion (default false).
    pub stratify: bool,
}

impl Default for SplitParams {
    fn default() -> Self {
        SplitParams {
            text_column: "Phrase".into(),
            label_column: "Sentiment".into(),
            classes: None,
            test_size: TestSize::Fraction(0.2),
            seed: 42,
            stratify: false,
        }
    }
}

const KEYS: &str = "text_column, label_column, classes, test_size, seed and stratify";

impl SplitParams {
    /// Reads the params from a mapping; missing keys keep their defaults,
    /// unknown keys are refused. `classes` is a mapping from label (as
    /// written in the file; YAML's `{0: 0, 4: 1}` arrives with the keys
    /// `"0"` and `"4"`) to an integer class, or null.
    pub fn from_json(params: &Map<String, Value>) -> Result<SplitParams, String> {
        let mut p = SplitParams::default();
        for (key, value) in params {
            match key.as_str() {
                "text_column" | "label_column" => {
                    let name = value
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| {
                            format!("split param `{key}` must be a column name, not {value}")
                        })?
                        .to_string();
                    if key == "text_column" {
                        p.text_column = name;
                    } else {
                        p.label_column = name;
                    }
                }
                "classes" => p.classes = classes_from_json(value)?,
                "test_size" => p.test_size = test_size_from_json(value)?,
                "seed" => {
                    p.seed = value
                        .as_u64()
                        .ok_or("split param `seed` must be a whole number")?
                }
                "stratify" => {
                    p.stratify = value
                        .as_bool()
                        .ok_or("split param `stratify` must be true or false")?
                }
                other => return Err(format!("split has no param `{other}` (it takes {KEYS})")),
            }
        }
        if p.text_column == p.label_column {
            return Err(format!(
                "split params `text_column` and `label_column` are both `{}`",
                p.text_column
            ));
        }
        Ok(p)
    }
}

fn classes_from_json(value: &Value) -> Result<Option<BTreeMap<String, i64>>, String> {
    let bad = || {
        format!(
            "split param `classes` must map labels to integer classes, like {{0: 0, 4: 1}}, or be null; not {value}"
        )
    };
    match value {
        Value::Null => Ok(None),
        Value::Object(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| v.as_i64().map(|c| (k.clone(), c)).ok_or_else(bad))
            .collect::<Result<_, _>>()
            .map(Some),
        _ => Err(bad()),
    }
}

fn test_size_from_json(value: &Value) -> Result<TestSize, String> {
    if let Some(c) = value.as_u64() {
        if c >= 1 {
            return Ok(TestSize::Count(c));
        }
    } else if let Some(f) = value.as_f64() {
        if value.is_f64() && f > 0.0 && f < 1.0 {
            return Ok(TestSize::Fraction(f));
        }
    }
    Err(format!(
        "split param `test_size` must be a share of the rows between 0 and 1 (like 0.2) \
         or a whole number of rows (like 1000), not {value}"
    ))
}

/// What a split did, for the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitReport {
    /// Data rows in the input.
    pub rows_read: usize,
    /// Rows whose label was kept.
    pub rows_kept: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    /// Kept rows with an empty or null text (empty documents).
    pub empty_texts: usize,
    /// Train and test rows per class, by class.
    pub classes: Vec<ClassCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    pub class: i64,
    pub train: usize,
    pub test: usize,
}

#[derive(Debug, Error)]
pub enum SplitError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(
        "no row of `{path}` is left: column `{column}` has none of the labels {} asked for in `classes`\n\
         The labels in the file: {}",
        quoted_list(.wanted),
        label_counts(.found)
    )]
    NoRowsLeft {
        path: PathBuf,
        column: String,
        wanted: Vec<String>,
        /// Each distinct label with its number of rows (at most 20).
        found: Vec<(String, usize)>,
    },
    #[error(
        "only one class ({class}) is left in `{path}` after filtering ({rows} rows): a classifier needs at least two\n\
         Hint: keep more labels in `classes`"
    )]
    SingleClass {
        path: PathBuf,
        class: i64,
        rows: usize,
    },
    #[error(
        "`{path}`: label column `{column}` at {location} is {value}, not an integer\n\
         Hint: map the labels to integer classes with the `classes` param, like `classes: {{neg: 0, pos: 1}}`"
    )]
    LabelNotInteger {
        path: PathBuf,
        column: String,
        location: String,
        value: String,
    },
    #[error(
        "{}: test_size {test_size} of {rows} rows leaves {n_train} rows for training and {n_test} for testing; both need at least one", path.display()
    )]
    EmptySide {
        path: PathBuf,
        test_size: TestSize,
        rows: usize,
        n_train: usize,
        n_test: usize,
    },
    #[error(
        "`{path}` already has a column `label`, and split adds `label` with the class of each row\n\
         Hint: rename that column, or make it the label column (`label_column: label`)"
    )]
    LabelColumnExists { path: PathBuf },
    #[error("failed to build the split of `{path}`: {source}")]
    Frame {
        path: PathBuf,
        #[source]
        source: PolarsError,
    },
}

fn label_counts(found: &[(String, usize)]) -> String {
    if found.is_empty() {
        return "none (every label is empty)".into();
    }
    found
        .iter()
        .map(|(l, n)| format!("`{l}` ({n} rows)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The permutation of `0..n` for `seed`; see the module docs.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

/// Test rows per class: `n_test · n_c / n` by largest remainder, ties to
/// the smaller class. `counts` is sorted by class.
fn stratified_quotas(counts: &[(i64, usize)], n: usize, n_test: usize) -> Vec<usize> {
    let share = |c: usize| (n_test as u128 * c as u128) / n as u128;
    let rem = |c: usize| (n_test as u128 * c as u128) % n as u128;
    let mut quotas: Vec<usize> = counts.iter().map(|&(_, c)| share(c) as usize).collect();
    let missing = n_test - quotas.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    // Stable sort: equal remainders keep class order.
    order.sort_by(|&a, &b| rem(counts[b].1).cmp(&rem(counts[a].1)));
    for &k in order.iter().take(missing) {
        quotas[k] += 1;
    }
    quotas
}

/// Splits `input` into `train_out` and `test_out`; see the module docs.
pub fn run_split(
    input: &Path,
    format: Option<&str>,
    train_out: &Path,
    test_out: &Path,
    params: &SplitParams,
) -> Result<SplitReport, SplitError> {
    let text_columns = [params.text_column.as_str(), params.label_column.as_str()];
    // With `classes`, rows are filtered as the file is read: polars parses
    // only the rows kept (a fifth of the movie-review file).
    let (table, seen_all) = match &params.classes {
        Some(classes) => {
            let keep = |label: &str| classes.contains_key(label);
            let filter = KeepRows {
                column: &params.label_column,
                keep: &keep,
            };
            let (table, kept) = Table::read_keeping(input, format, &text_columns, &filter)?;
            (table, Some(kept))
        }
        None => (Table::read(input, format, &text_columns)?, None),
    };
    let path = || input.to_path_buf();
    let frame_err = |source| SplitError::Frame {
        path: path(),
        source,
    };
    // Both columns must exist, and the text column must be text.
    let texts = table.texts(&params.text_column)?;
    let label_col = table.column(&params.label_column)?;
    if params.label_column != LABEL && table.frame().column(LABEL).is_ok() {
        return Err(SplitError::LabelColumnExists { path: path() });
    }
    let label_text = label_col.cast(&DataType::String).map_err(frame_err)?;
    let label_text = label_text.str().map_err(frame_err)?;

    // Filter and map, counting every distinct label on the way.
    let mut kept: Vec<usize> = Vec::new();
    let mut class_of: Vec<i64> = Vec::new();
    let mut seen: FxHashMap<&str, usize> = FxHashMap::default();
    for (row, label) in label_text.iter().enumerate() {
        let text = label.unwrap_or("");
        *seen.entry(text).or_default() += 1;
        let class = match &params.classes {
            Some(map) => match map.get(text) {
                Some(&c) => c,
                None => continue,
            },
            None => text
                .parse::<i64>()
                .map_err(|_| SplitError::LabelNotInteger {
                    path: path(),
                    column: params.label_column.clone(),
                    location: table.location(row),
                    value: if text.is_empty() {
                        "empty".into()
                    } else {
                        format!("`{text}`")
                    },
                })?,
        };
        kept.push(row);
        class_of.push(class);
    }
    // Whether every kept label is written as an integer is a question about
    // each distinct label, not each row.
    let canonical = seen
        .keys()
        .filter(|label| {
            params
                .classes
                .as_ref()
                .is_none_or(|m| m.contains_key(**label))
        })
        .all(|label| label.parse::<i64>().is_ok_and(|v| v.to_string() == *label));
    let n = kept.len();
    if n == 0 {
        let mut found: Vec<(String, usize)> = match &seen_all {
            Some(kept) => kept.values.iter().map(|(l, c)| (l.clone(), *c)).collect(),
            None => seen.iter().map(|(l, c)| (l.to_string(), *c)).collect(),
        };
        found.sort();
        found.truncate(20);
        return Err(SplitError::NoRowsLeft {
            path: path(),
            column: params.label_column.clone(),
            wanted: params
                .classes
                .as_ref()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            found,
        });
    }
    let mut per_class: BTreeMap<i64, usize> = BTreeMap::new();
    for &c in &class_of {
        *per_class.entry(c).or_default() += 1;
    }
    if per_class.len() < 2 {
        return Err(SplitError::SingleClass {
            path: path(),
            class: class_of[0],
            rows: n,
        });
    }
    let n_test = params.test_size.n_test(n);
    if n_test == 0 || n_test >= n {
        return Err(SplitError::EmptySide {
            path: path(),
            test_size: params.test_size,
            rows: n,
            n_train: n.saturating_sub(n_test),
            n_test: n_test.min(n),
        });
    }

    // Positions (into `kept`) of the test and train rows.
    let perm = permutation(n, params.seed);
    let (test_pos, train_pos): (Vec<usize>, Vec<usize>) = if params.stratify {
        let counts: Vec<(i64, usize)> = per_class.iter().map(|(&c, &k)| (c, k)).collect();
        let mut need: BTreeMap<i64, usize> = counts
            .iter()
            .zip(stratified_quotas(&counts, n, n_test))
            .map(|(&(c, _), q)| (c, q))
            .collect();
        perm.iter().partition(|&&i| {
            let left = need.get_mut(&class_of[i]).expect("every class has a quota");
            let to_test = *left > 0;
            *left -= usize::from(to_test);
            to_test
        })
    } else {
        (perm[..n_test].to_vec(), perm[n_test..].to_vec())
    };

    let empty_texts = kept.iter().filter(|&&r| texts[r].is_empty()).count();
    let mut counts: BTreeMap<i64, ClassCount> = BTreeMap::new();
    for (&pos, to_test) in test_pos
        .iter()
        .map(|p| (p, true))
        .chain(train_pos.iter().map(|p| (p, false)))
    {
        let class = class_of[pos];
        let e = counts.entry(class).or_insert(ClassCount {
            class,
            train: 0,
            test: 0,
        });
        if to_test {
            e.test += 1;
        } else {
            e.train += 1;
        }
    }
    let report = SplitReport {
        rows_read: seen_all.as_ref().map_or(table.height(), |k| k.rows_read),
        rows_kept: n,
        train_rows: train_pos.len(),
        test_rows: test_pos.len(),
        empty_texts,
        classes: counts.into_values().collect(),
    };
    drop(texts);

    let label_is_text = table.column(&params.label_column)?.dtype() == &DataType::String;
    let df = table.into_frame();
    let write = |positions: &[usize], out: &Path| -> Result<(), SplitError> {
        let rows: Vec<IdxSize> = positions.iter().map(|&p| kept[p] as IdxSize).collect();
        let mut part = df
            .take(&IdxCa::from_vec("rows".into(), rows))
            .map_err(frame_err)?;
        if label_is_text && canonical {
            let ints = part
                .column(&params.label_column)
                .and_then(|c| c.cast(&DataType::Int64))
                .map_err(frame_err)?;
            part.with_column(ints).map_err(frame_err)?;
        }
        let classes: Vec<i64> = positions.iter().map(|&p| class_of[p]).collect();
        part.with_column(Int64Chunked::from_vec(LABEL.into(), classes).into_column())
            .map_err(frame_err)?;
        table::write_parquet(&mut part, out)?;
        Ok(())
    };
    let (train, test) = rayon::join(
        || write(&train_pos, train_out),
        || write(&test_pos, test_out),
    );
    train?;
    test?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> SplitParams {
        SplitParams::from_json(&serde_json::from_str(json).unwrap()).unwrap()
    }

    fn params_err(json: &str) -> String {
        SplitParams::from_json(&serde_json::from_str(json).unwrap()).unwrap_err()
    }

    /// A TSV with `n` rows: text `t{i}`, label cycling over `labels`.
    fn corpus(dir: &Path, n: usize, labels: &[&str]) -> PathBuf {
        let mut s = String::from("Id\tPhrase\tSentiment\n");
        for i in 0..n {
            s.push_str(&format!("{i}\tt{i}\t{}\n", labels[i % labels.len()]));
        }
        let path = dir.join("in.tsv");
        std::fs::write(&path, s).unwrap();
        path
    }

    fn split(
        input: &Path,
        p: &SplitParams,
    ) -> Result<(SplitReport, DataFrame, DataFrame), SplitError> {
        let dir = input.parent().unwrap();
        let (train, test) = (dir.join("out/train.parquet"), dir.join("out/test.parquet"));
        let report = run_split(input, None, &train, &test, p)?;
        let read = |p: &Path| Table::read(p, None, &[]).unwrap().into_frame();
        Ok((report, read(&train), read(&test)))
    }

    fn ints(df: &DataFrame, name: &str) -> Vec<i64> {
        df.column(name)
            .unwrap()
            .i64()
            .unwrap()
            .no_null_iter()
            .collect()
    }

    #[test]
    fn permutation_is_pinned() {
        // Pinned (and checked against an independent Python transcription
        // of the module docs): a change here changes every split, so it
        // needs a new VERSION.
        assert_eq!(permutation(10, 42), [8, 3, 6, 5, 4, 0, 9, 2, 1, 7]);
        let mut p = permutation(1000, 7);
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
        assert_eq!(permutation(0, 1), Vec::<usize>::new());
        assert_ne!(permutation(50, 1), permutation(50, 2));
    }

    #[test]
    fn params_defaults_and_checks() {
        let p = params("{}");
        assert_eq!(p, SplitParams::default());
        let p = params(
            r#"{"classes": {"0": 0, "4": 1}, "test_size": 0.25, "seed": 1, "stratify": true,
                "text_column": "t", "label_column": "y"}"#,
        );
        assert_eq!(
            p.classes,
            Some(BTreeMap::from([("0".into(), 0), ("4".into(), 1)]))
        );
        assert_eq!(p.test_size, TestSize::Fraction(0.25));
        assert_eq!(
            params(r#"{"test_size": 300}"#).test_size,
            TestSize::Count(300)
        );
        assert!(params_err(r#"{"test_sise": 0.2}"#).contains("no param `test_sise`"));
        assert!(params_err(r#"{"test_size": 1.0}"#).contains("test_size"));
        assert!(params_err(r#"{"test_size": 0}"#).contains("test_size"));
        assert!(params_err(r#"{"test_size": -0.5}"#).contains("test_size"));
        assert!(params_err(r#"{"classes": [0, 4]}"#).contains("{0: 0, 4: 1}"));
        assert!(params_err(r#"{"classes": {"0": "neg"}}"#).contains("classes"));
        assert!(params_err(r#"{"classes": {}}"#).contains("classes"));
        assert!(params_err(r#"{"seed": -1}"#).contains("seed"));
        assert!(params_err(r#"{"text_column": "a", "label_column": "a"}"#).contains("both"));
    }

    #[test]
    fn keeps_the_chosen_labels_and_maps_them() {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 100, &["0", "1", "2", "3", "4"]);
        let p = params(r#"{"classes": {"0": 0, "4": 1}}"#);
        let (report, train, test) = split(&input, &p).unwrap();
        assert_eq!((report.rows_read, report.rows_kept), (100, 40));
        // ceil(0.2 · 40) = 8 test rows.
        assert_eq!((report.train_rows, report.test_rows), (32, 8));
        assert_eq!((train.height(), test.height()), (32, 8));
        // All input columns plus `label`; the label column stays integer.
        assert_eq!(
            train.get_column_names(),
            ["Id", "Phrase", "Sentiment", "label"]
        );
        for df in [&train, &test] {
            for (s, l) in ints(df, "Sentiment").iter().zip(ints(df, "label")) {
                assert_eq!((*s, l), if *s == 0 { (0, 0) } else { (4, 1) });
            }
        }
        // Every kept row is in exactly one side.
        let mut ids: Vec<i64> = ints(&train, "Id");
        ids.extend(ints(&test, "Id"));
        ids.sort_unstable();
        let want: Vec<i64> = (0..100).filter(|i| i % 5 == 0 || i % 5 == 4).collect();
        assert_eq!(ids, want);
        // The test rows are the first 8 of the permutation, in its order.
        let perm = permutation(40, 42);
        let kept_ids: Vec<i64> = want.clone();
        let first: Vec<i64> = perm[..8].iter().map(|&p| kept_ids[p]).collect();
        assert_eq!(ints(&test, "Id"), first);
    }

    #[test]
    fn same_seed_same_split_other_seed_other_split() {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 60, &["0", "1"]);
        let p = SplitParams::default();
        let (_, _, a) = split(&input, &p).unwrap();
        let (_, _, b) = split(&input, &p).unwrap();
        assert_eq!(a, b);
        let (_, _, c) = split(&input, &SplitParams { seed: 43, ..p }).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn without_classes_labels_are_the_classes() {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 30, &["3", "-1", "7"]);
        let p = params(r#"{"test_size": 6}"#);
        let (report, train, test) = split(&input, &p).unwrap();
        assert_eq!((report.train_rows, report.test_rows), (24, 6));
        let mut classes = ints(&train, "label");
        classes.extend(ints(&test, "label"));
        classes.sort_unstable();
        classes.dedup();
        assert_eq!(classes, [-1, 3, 7]);
        assert_eq!(
            report.classes.iter().map(|c| c.class).collect::<Vec<_>>(),
            [-1, 3, 7]
        );
    }

    #[test]
    fn text_labels_stay_text() {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 20, &["pos", "neg", "04"]);
        let p = params(r#"{"classes": {"pos": 1, "neg": 0, "04": 1}}"#);
        let (report, train, _) = split(&input, &p).unwrap();
        assert_eq!(report.rows_kept, 20);
        // "04" is not written as an integer: the column stays as written.
        assert_eq!(
            train.column("Sentiment").unwrap().dtype(),
            &DataType::String
        );
    }

    #[test]
    fn stratified_split_keeps_class_proportions_and_order() {
        let dir = tempfile::tempdir().unwrap();
        // 90 rows of class 0, 10 of class 1 (label "1" every tenth row).
        let labels: Vec<&str> = (0..10).map(|i| if i == 9 { "1" } else { "0" }).collect();
        let input = corpus(dir.path(), 100, &labels);
        let p = params(r#"{"stratify": true, "test_size": 0.25}"#);
        let (report, train, test) = split(&input, &p).unwrap();
        // 25 test rows: 22.5 → 22 + the largest remainder... class 0: 22.5,
        // class 1: 2.5; equal remainders, the smaller class (0) wins.
        assert_eq!(
            report.classes,
            [
                ClassCount {
                    class: 0,
                    train: 67,
                    test: 23
                },
                ClassCount {
                    class: 1,
                    train: 8,
                    test: 2
                }
            ]
        );
        assert_eq!((train.height(), test.height()), (75, 25));
        // Rows follow the permutation within each side.
        let perm = permutation(100, 42);
        let pos_of = |id: i64| perm.iter().position(|&p| p as i64 == id).unwrap();
        for df in [&train, &test] {
            let order: Vec<usize> = ints(df, "Id").into_iter().map(pos_of).collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn quotas_sum_to_n_test() {
        assert_eq!(stratified_quotas(&[(0, 90), (1, 10)], 100, 25), [23, 2]);
        assert_eq!(
            stratified_quotas(&[(0, 1), (1, 1), (2, 1)], 3, 2),
            [1, 1, 0]
        );
        // Shares 1.5, 0.9, 0.6: floors 1, 0, 0; the two largest
        // remainders (0.9, 0.6) get the two missing rows.
        assert_eq!(
            stratified_quotas(&[(0, 5), (1, 3), (2, 2)], 10, 3),
            [1, 1, 1]
        );
    }

    #[test]
    fn empty_texts_are_kept_as_empty_documents() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("e.tsv");
        std::fs::write(
            &input,
            "Phrase\tSentiment\ngood\t4\n\t0\nbad\t0\n\t4\nfine\t4\n",
        )
        .unwrap();
        let (report, train, test) = split(&input, &params(r#"{"test_size": 0.4}"#)).unwrap();
        assert_eq!(report.rows_kept, 5);
        assert_eq!(report.empty_texts, 2);
        let mut texts: Vec<String> = Vec::new();
        for df in [&train, &test] {
            let t = Table::from_frame(Path::new("x.parquet"), table::Format::Parquet, df.clone());
            texts.extend(t.texts("Phrase").unwrap().iter().map(|s| s.to_string()));
        }
        texts.sort();
        assert_eq!(texts, ["", "", "bad", "fine", "good"]);
    }

    #[test]
    fn no_rows_left_lists_the_labels_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 10, &["neg", "pos"]);
        let e = split(&input, &params(r#"{"classes": {"0": 0, "4": 1}}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no row of") && e.contains("has none of the labels `0`, `4`"),
            "{e}"
        );
        assert!(
            e.ends_with("The labels in the file: `neg` (5 rows), `pos` (5 rows)"),
            "{e}"
        );
    }

    #[test]
    fn a_single_class_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 10, &["0", "2"]);
        let e = split(&input, &params(r#"{"classes": {"0": 0, "4": 1}}"#)).unwrap_err();
        assert!(matches!(
            e,
            SplitError::SingleClass {
                class: 0,
                rows: 5,
                ..
            }
        ));
        assert!(e.to_string().contains("Hint: keep more labels"), "{e}");
        // Two labels mapped to one class are one class too.
        let e = split(&input, &params(r#"{"classes": {"0": 1, "2": 1}}"#)).unwrap_err();
        assert!(matches!(e, SplitError::SingleClass { class: 1, .. }), "{e}");
    }

    #[test]
    fn non_integer_labels_without_classes_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 10, &["0", "1", "1", "x"]);
        let e = split(&input, &SplitParams::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("in.tsv`: label column `Sentiment` at line 5 is `x`, not an integer"),
            "{e}"
        );
        assert!(e.contains("Hint: map the labels"), "{e}");
    }

    #[test]
    fn test_size_must_leave_both_sides_non_empty() {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 4, &["0", "1"]);
        let e = split(&input, &params(r#"{"test_size": 4}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: test_size 4 rows of 4 rows leaves 0 rows for training and 4 for testing; both need at least one",
                input.display()
            )
        );
        // ceil(0.9 · 4) = 4: nothing left to train on.
        let e = split(&input, &params(r#"{"test_size": 0.9}"#)).unwrap_err();
        assert!(matches!(e, SplitError::EmptySide { n_train: 0, .. }), "{e}");
        let e = split(&input, &params(r#"{"test_size": 9}"#)).unwrap_err();
        assert!(matches!(e, SplitError::EmptySide { n_test: 4, .. }), "{e}");
    }

    #[test]
    fn missing_columns_and_label_clash_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = corpus(dir.path(), 4, &["0", "1"]);
        let e = split(&input, &params(r#"{"text_column": "Text"}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has no column `Text` (its columns: `Id`, `Phrase`, `Sentiment`)"),
            "{e}"
        );
        let clash = dir.path().join("c.tsv");
        std::fs::write(&clash, "Phrase\tSentiment\tlabel\na\t0\tx\nb\t1\ty\n").unwrap();
        let e = split(&clash, &SplitParams::default()).unwrap_err();
        assert!(matches!(e, SplitError::LabelColumnExists { .. }), "{e}");
        // `label` as the label column is replaced by the class.
        let own = dir.path().join("o.tsv");
        std::fs::write(&own, "Phrase\tlabel\na\t0\nb\t1\nc\t1\n").unwrap();
        let p = params(r#"{"label_column": "label", "test_size": 1}"#);
        let (_, train, _) = split(&own, &p).unwrap();
        assert_eq!(train.get_column_names(), ["Phrase", "label"]);
    }
}
