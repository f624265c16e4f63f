//! The `fit` stage: fit logistic regression on the training features and
//! save the model.
//!
//! Inputs: the training [`crate::features`] file and the vectorizer file,
//! both from one `vectorize` run (their column counts must agree). The
//! classifier is [`crate::logistic`] with [`LogisticParams`] (`C`,
//! `max_iter`, `tol`, scikit-learn's names and defaults); the output is one
//! [`Model`] file holding the vectorizer and the classifier, which
//! `score` and `pipe predict` load. The vectorizer is not refitted.
//!
//! A fit that stops at `max_iter` is not an error (scikit-learn warns);
//! the model file records `converged: false` and the report says so.

use std::path::Path;

use serde::Serialize;

use super::StageError;
use crate::features;
use linfa::traits::Fit;
use linfa::DatasetBase;
use ndarray::Array1;

use crate::logistic::LogisticParams;
use crate::model::{self, Model};

/// The stage version; it enters the stage fingerprint. It covers
/// [`crate::logistic::VERSION`], the model file format and this glue:
/// bump it when any of them changes.
pub const VERSION: u32 = 3;

/// What `fit` did, for the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitReport {
    pub rows: usize,
    pub features: usize,
    pub classes: Vec<i64>,
    /// L-BFGS iterations.
    pub n_iter: usize,
    /// False when the solver stopped at `max_iter`.
    pub converged: bool,
}

/// Fits on `train_features` and writes the model to `model_out`.
pub fn run_fit(
    train_features: &Path,
    vectorizer: &Path,
    model_out: &Path,
    params: &LogisticParams,
) -> Result<FitReport, StageError> {
    let vectorizer_path = vectorizer;
    let vectorizer = model::load_vectorizer(vectorizer_path)?;
    // In the order the solver visits the rows: no copy of them to sort.
    let train = features::read_shortest_rows_first(train_features)?;
    if train.x.ncols() != vectorizer.vocabulary().len() {
        return Err(StageError::FeatureMismatch {
            features: train_features.to_path_buf(),
            found: train.x.ncols(),
            other: vectorizer_path.to_path_buf(),
            expected: vectorizer.vocabulary().len(),
        });
    }
    let fit_err = |source| StageError::Fit {
        path: train_features.to_path_buf(),
        source,
    };
    // Through linfa's `Fit` trait (see `crate::estimator`).
    let dataset = DatasetBase::new(train.x, Array1::from(train.labels));
    let (classifier, info) = params.fit(&dataset).map_err(fit_err)?;
    let rows = dataset.records.nrows();
    let model = Model::from_parts(vectorizer, classifier, params.clone(), &info)?;
    model.save(model_out)?;
    Ok(FitReport {
        rows,
        features: model.vectorizer().vocabulary().len(),
        classes: model.classes().to_vec(),
        n_iter: model.n_iter(),
        converged: model.converged(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logistic;
    use crate::sparse::Csr;
    use crate::vectorize::{TfidfVectorizer, VectorizeParams};

    const TEXTS: [&str; 6] = [
        "great fun",
        "a great film",
        "wonderful",
        "dull mess",
        "a dull film",
        "boring",
    ];

    fn inputs(dir: &Path) -> (TfidfVectorizer, Csr) {
        let (v, x) = TfidfVectorizer::fit_transform(&TEXTS, &VectorizeParams::default()).unwrap();
        model::save_vectorizer(&v, &dir.join("vectorizer.json")).unwrap();
        (v, x)
    }

    #[test]
    fn fits_and_saves_a_model_that_predicts() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (v, x) = inputs(d);
        features::write(&d.join("train.features"), &x, &[1, 1, 1, 0, 0, 0]).unwrap();
        let params = LogisticParams {
            c: 10.0,
            ..LogisticParams::default()
        };
        let report = run_fit(
            &d.join("train.features"),
            &d.join("vectorizer.json"),
            &d.join("model/model.json"),
            &params,
        )
        .unwrap();
        assert_eq!(report.classes, [0, 1]);
        assert_eq!((report.rows, report.features), (6, v.vocabulary().len()));
        assert!(report.converged);
        let m = Model::load(&d.join("model/model.json")).unwrap();
        assert_eq!(m.vectorizer(), &v);
        assert_eq!(m.params(), &params);
        assert_eq!(m.predict(&TEXTS), [1, 1, 1, 0, 0, 0]);
        // The same as fitting in memory.
        let (c, _) = logistic::fit(&x, &[1, 1, 1, 0, 0, 0], &params).unwrap();
        assert_eq!(m.classifier(), &c);
    }

    #[test]
    fn mismatched_inputs_and_one_class_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        inputs(d);
        let other = Csr::new(2, 3, vec![0, 1, 2], vec![0, 2], vec![1.0, 1.0]).unwrap();
        features::write(&d.join("other.features"), &other, &[0, 1]).unwrap();
        let run = |f: &str| {
            run_fit(
                &d.join(f),
                &d.join("vectorizer.json"),
                &d.join("model.json"),
                &LogisticParams::default(),
            )
            .unwrap_err()
            .to_string()
        };
        let e = run("other.features");
        assert!(
            e.contains("has 3 feature columns") && e.contains("same `vectorize` run"),
            "{e}"
        );
        let (_, x) = inputs(d);
        features::write(&d.join("one.features"), &x, &[1; 6]).unwrap();
        let e = run("one.features");
        assert!(
            e.contains("cannot fit on") && e.contains("only one class (1)"),
            "{e}"
        );
        let e = run("missing.features");
        assert!(e.contains("failed to read the features file"), "{e}");
        assert!(!d.join("model.json").exists());
    }

    #[test]
    fn version_covers_its_parts() {
        assert_eq!(
            (VERSION, logistic::VERSION, model::FORMAT_VERSION),
            (3, 3, 1)
        );
    }
}
