//! The `vectorize` stage: fit TF-IDF on the training texts, turn train
//! and test into feature files.
//!
//! Inputs are the tables `split` wrote (any [`crate::table`] format;
//! parquet when the extension names none) with the text column
//! (`text_column`, default `Phrase`) and the integer class column `label`.
//! The vectorizer ([`crate::vectorize`]) is fitted on the training texts
//! only, then applied to the test texts, so no word of the test set leaks
//! into the vocabulary or the idf. Empty or null texts are empty documents:
//! all-zero rows.
//!
//! Outputs: the fitted vectorizer ([`crate::model::save_vectorizer`]: params,
//! vocabulary, idf) and one [`crate::features`] file per table, the
//! TF-IDF matrix with the `label` of every row.

use std::path::Path;

use serde::Serialize;

use super::{read_split_table, StageError};
use crate::features;
use crate::model;
use crate::split::LABEL;
use crate::vectorize::{TfidfVectorizer, VectorizeParams};

/// The stage version; it enters the stage fingerprint. It covers
/// [`crate::vectorize::VERSION`], the features file format and this glue:
/// bump it when any of them changes.
pub const VERSION: u32 = 1;

/// The default `text_column`.
pub const DEFAULT_TEXT_COLUMN: &str = "Phrase";

/// What `vectorize` did, for the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VectorizeReport {
    pub train_rows: usize,
    pub test_rows: usize,
    /// Terms in the vocabulary (feature columns).
    pub vocabulary: usize,
    pub train_nnz: usize,
    pub test_nnz: usize,
    /// Test rows without any known term (all-zero rows).
    pub empty_test_rows: usize,
}

/// Fits on `train`, writes the vectorizer and both feature files.
pub fn run_vectorize(
    train: &Path,
    test: &Path,
    vectorizer_out: &Path,
    train_features_out: &Path,
    test_features_out: &Path,
    text_column: &str,
    params: &VectorizeParams,
) -> Result<VectorizeReport, StageError> {
    let train_table = read_split_table(train, text_column)?;
    let test_table = read_split_table(test, text_column)?;
    let train_texts = train_table.texts(text_column)?;
    let train_labels = train_table.integers(LABEL)?;
    let test_texts = test_table.texts(text_column)?;
    let test_labels = test_table.integers(LABEL)?;

    let (vectorizer, x_train) =
        TfidfVectorizer::fit_transform(&train_texts, params).map_err(|source| {
            StageError::Vectorize {
                path: train.to_path_buf(),
                source,
            }
        })?;
    drop(train_texts);
    // The vectorizer and the training features are written while the test
    // texts are transformed.
    let (written, (x_test, test_written)) = rayon::join(
        || -> Result<(), StageError> {
            model::save_vectorizer(&vectorizer, vectorizer_out)?;
            features::write(train_features_out, &x_train, &train_labels)?;
            Ok(())
        },
        || {
            let x_test = vectorizer.transform(&test_texts);
            let written = features::write(test_features_out, &x_test, &test_labels);
            (x_test, written)
        },
    );
    written?;
    test_written?;
    Ok(VectorizeReport {
        train_rows: x_train.nrows(),
        test_rows: x_test.nrows(),
        vocabulary: vectorizer.vocabulary().len(),
        train_nnz: x_train.nnz(),
        test_nnz: x_test.nnz(),
        empty_test_rows: (0..x_test.nrows())
            .filter(|&i| x_test.row(i).0.is_empty())
            .count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::write_parquet;
    use polars::prelude::*;

    /// Writes a split-like parquet table of (text, label) rows.
    fn table(path: &Path, rows: &[(&str, i64)]) {
        let texts: Vec<&str> = rows.iter().map(|r| r.0).collect();
        let labels: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("Phrase".into(), texts),
            Column::new("label".into(), labels),
        ])
        .unwrap();
        write_parquet(&mut df, path).unwrap();
    }

    #[test]
    fn fits_on_train_only_and_writes_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        table(
            &d.join("train.parquet"),
            &[("good film", 1), ("bad film", 0), ("", 0)],
        );
        table(
            &d.join("test.parquet"),
            &[("good unseen", 1), ("unseen", 0)],
        );
        let out = d.join("out");
        let report = run_vectorize(
            &d.join("train.parquet"),
            &d.join("test.parquet"),
            &out.join("vectorizer.json"),
            &out.join("train.features"),
            &out.join("test.features"),
            "Phrase",
            &VectorizeParams::default(),
        )
        .unwrap();
        assert_eq!(
            report,
            VectorizeReport {
                train_rows: 3,
                test_rows: 2,
                vocabulary: 3,
                train_nnz: 4,
                test_nnz: 1,
                empty_test_rows: 1,
            }
        );
        let v = model::load_vectorizer(&out.join("vectorizer.json")).unwrap();
        assert_eq!(v.vocabulary().terms(), ["bad", "film", "good"]);
        let train = features::read(&out.join("train.features")).unwrap();
        assert_eq!(train.labels, [1, 0, 0]);
        // The empty text is an all-zero row.
        assert!(train.x.row(2).0.is_empty());
        let test = features::read(&out.join("test.features")).unwrap();
        assert_eq!(test.labels, [1, 0]);
        assert_eq!(test.x.row(0), (&[2u32][..], &[1.0][..]));
    }

    #[test]
    fn missing_columns_and_bad_labels_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        table(&d.join("t.parquet"), &[("good film", 1), ("bad film", 0)]);
        let run = |train: &Path, column: &str| {
            run_vectorize(
                train,
                &d.join("t.parquet"),
                &d.join("v.json"),
                &d.join("a.features"),
                &d.join("b.features"),
                column,
                &VectorizeParams::default(),
            )
            .unwrap_err()
            .to_string()
        };
        let e = run(&d.join("t.parquet"), "Text");
        assert!(
            e.contains("has no column `Text` (its columns: `Phrase`, `label`)"),
            "{e}"
        );
        let raw = d.join("raw.tsv");
        std::fs::write(&raw, "Phrase\tSentiment\ngood\t4\n").unwrap();
        let e = run(&raw, "Phrase");
        assert!(e.contains("has no column `label`"), "{e}");
        let nolabel = d.join("nolabel.tsv");
        std::fs::write(&nolabel, "Phrase\tlabel\ngood\tpos\n").unwrap();
        let e = run(&nolabel, "Phrase");
        assert!(
            e.contains("column `label` at line 2 is `pos`, not an integer"),
            "{e}"
        );
        let empty = d.join("empty.tsv");
        std::fs::write(&empty, "Phrase\tlabel\na\t1\n!\t0\n").unwrap();
        let e = run(&empty, "Phrase");
        assert!(
            e.contains("cannot fit the vectorizer on") && e.contains("empty vocabulary"),
            "{e}"
        );
        // No output was written by the failing runs.
        assert!(!d.join("v.json").exists());
    }

    #[test]
    fn version_covers_its_parts() {
        // Bump VERSION with any of these.
        assert_eq!(
            (
                VERSION,
                crate::vectorize::VERSION,
                features::FORMAT_VERSION,
                model::VECTORIZER_FORMAT_VERSION
            ),
            (1, 1, 1, 1)
        );
    }
}
