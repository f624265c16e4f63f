//! `stage`: the entry points the engine calls for `vectorize`, `fit` and
//! `score` (`split` lives in [`crate::split`], `synth` in [`crate::synth`]).
//!
//! Each stage is one module with a `VERSION` that enters the stage
//! fingerprint, a params struct read by `from_json`, and a `run_*`
//! function from paths to paths that returns a small report for the log.
//! Together with `split` they form the demo chain:
//!
//! ```text
//! reviews.tsv ─split─▶ train.parquet ─┐
//!                      test.parquet ──┴─vectorize─▶ vectorizer.json
//!                                                   train.features ─┐
//!                                                   test.features   │
//!                          vectorizer.json + train.features ─fit─▶ model.json
//!                              model.json + test.features ─score─▶ metrics.json, plots.json
//! ```
//!
//! | stage | reads | writes | params |
//! | --- | --- | --- | --- |
//! | [`vectorize`] | train and test tables (`text_column`, `label`) | vectorizer file ([`crate::model::save_vectorizer`]), train and test [`crate::features`] files | [`VectorizeParams`](crate::vectorize::VectorizeParams) |
//! | [`fit`] | train features, vectorizer file | model file ([`crate::model::Model`]) | [`LogisticParams`](crate::logistic::LogisticParams) |
//! | [`score`] | model file, test features | metrics JSON, plots JSON | none ([`score::ScoreParams`]) |
//!
//! Every output is written atomically (temporary file + rename) after
//! its parent directories are created; a failing stage leaves no new
//! output behind. Errors are [`StageError`]s that name the file at fault.

pub mod fit;
pub mod score;
pub mod vectorize;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::features::FeaturesError;
use crate::logistic::LogisticError;
use crate::metrics::MetricsError;
use crate::model::ModelError;
use crate::table::{Format, Table, TableError};
use crate::vectorize::VectorizeError;

pub use fit::run_fit;
pub use score::run_score;
pub use vectorize::run_vectorize;

/// Why a stage failed.
#[derive(Debug, Error)]
pub enum StageError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Features(#[from] FeaturesError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("cannot fit the vectorizer on `{path}`: {source}")]
    Vectorize {
        path: PathBuf,
        #[source]
        source: VectorizeError,
    },
    #[error("cannot fit on `{path}`: {source}")]
    Fit {
        path: PathBuf,
        #[source]
        source: LogisticError,
    },
    #[error("cannot score `{path}`: {source}")]
    Metrics {
        path: PathBuf,
        #[source]
        source: MetricsError,
    },
    #[error(
        "`{features}` has {found} feature columns, but `{other}` has {expected} terms\n\
         Hint: both must come from the same `vectorize` run; rerun it (`pipe repro`)"
    )]
    FeatureMismatch {
        features: PathBuf,
        found: usize,
        other: PathBuf,
        expected: usize,
    },
    #[error(
        "`{path}`: row {row} is labelled {label}, which is not a class of the model `{model}` (its classes: {classes:?})"
    )]
    UnknownClass {
        path: PathBuf,
        row: usize,
        label: i64,
        model: PathBuf,
        classes: Vec<i64>,
    },
    #[error("failed to write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Reads a table written by `split`: the format of its extension, and
/// parquet when the extension names none (split always writes parquet).
fn read_split_table(path: &Path, text_column: &str) -> Result<Table, TableError> {
    let format = Format::from_path(path).unwrap_or(Format::Parquet);
    Table::read(path, Some(&format.to_string()), &[text_column])
}
