//! The `score` stage: score the model on the test features; write the
//! metrics and the plot data.
//!
//! Inputs: the model file (from `fit`) and the test [`crate::features`]
//! file (from the same `vectorize` run). Both outputs are JSON, written
//! atomically, pretty-printed with a final newline so that git diffs of
//! metrics read well.
//!
//! # Two classes
//!
//! The positive class is the model's second (larger) class, as in
//! scikit-learn; with the demo's classes 0 and 1 that is class 1. The
//! metrics file is flat ([`crate::metrics::BinaryReport`], flattened):
//!
//! ```json
//! {"accuracy": 0.926, "true_negative": 0.909, "false_positive": 0.091,
//!  "false_negative": 0.061, "true_positive": 0.939, "precision": 0.93,
//!  "recall": 0.939, "f1": 0.935, "roc_auc": 0.978, "log_loss": 0.295,
//!  "n_test": 3256}
//! ```
//!
//! The four confusion entries are the rates of the confusion matrix
//! normalised over the true classes (`true_negative + false_positive = 1`).
//! `roc_auc` is `null` when the test set holds one class only.
//!
//! # More classes
//!
//! The metrics are the `accuracy`, `n_test`, and per class (keyed by the
//! class as text) its `support` (test rows of that class), `predicted`
//! (rows predicted as it) and `correct` (rows of it predicted right):
//!
//! ```json
//! {"accuracy": 0.71, "n_test": 500,
//!  "classes": {"0": {"support": 100, "predicted": 90, "correct": 80}, "...": {}}}
//! ```
//!
//! # Plots
//!
//! ```json
//! {"roc": [{"fpr": 0.0, "tpr": 0.0, "threshold": null}, ...],
//!  "confusion": [{"actual": 0, "predicted": 0, "count": 1480}, ...]}
//! ```
//!
//! `roc` (two classes only, absent when the test set has one class) is
//! scikit-learn's `roc_curve` with `drop_intermediate`: the first point's
//! threshold is infinite, written `null`. `confusion` lists every
//! (actual, predicted) pair of classes with its number of test rows, zeros
//! included, actual-major in class order: the confusion matrix as records.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use super::StageError;
use crate::atomic;
use crate::features;
use crate::metrics::{accuracy, BinaryReport};
use crate::model::Model;

/// The stage version; it enters the stage fingerprint. It covers
/// [`crate::metrics`], the output layouts and this glue: bump it when any
/// of them changes.
pub const VERSION: u32 = 1;

/// `score` takes no params; this refuses any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScoreParams;

impl ScoreParams {
    pub fn from_json(params: &Map<String, Value>) -> Result<ScoreParams, String> {
        match params.keys().next() {
            Some(key) => Err(format!("score has no param `{key}` (it takes none)")),
            None => Ok(ScoreParams),
        }
    }
}

/// The metrics file of a two-class model; see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinaryMetrics {
    pub accuracy: f64,
    pub true_negative: f64,
    pub false_positive: f64,
    pub false_negative: f64,
    pub true_positive: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub roc_auc: Option<f64>,
    pub log_loss: f64,
    pub n_test: usize,
}

/// Per-class counts of a multi-class model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassMetrics {
    pub support: u64,
    pub predicted: u64,
    pub correct: u64,
}

/// The metrics file of a model with more than two classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MulticlassMetrics {
    pub accuracy: f64,
    pub n_test: usize,
    pub classes: BTreeMap<String, ClassMetrics>,
}

/// What `score` wrote to the metrics file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ScoreReport {
    Binary(BinaryMetrics),
    Multiclass(MulticlassMetrics),
}

impl ScoreReport {
    pub fn accuracy(&self) -> f64 {
        match self {
            ScoreReport::Binary(m) => m.accuracy,
            ScoreReport::Multiclass(m) => m.accuracy,
        }
    }
}

#[derive(Serialize)]
struct RocPoint {
    fpr: f64,
    tpr: f64,
    threshold: f64,
}

#[derive(Serialize)]
struct ConfusionCell {
    actual: i64,
    predicted: i64,
    count: u64,
}

#[derive(Serialize)]
struct Plots {
    #[serde(skip_serializing_if = "Option::is_none")]
    roc: Option<Vec<RocPoint>>,
    confusion: Vec<ConfusionCell>,
}

/// Scores `model` on `test_features`; writes `metrics_out` and `plots_out`.
pub fn run_score(
    model_path: &Path,
    test_features: &Path,
    metrics_out: &Path,
    plots_out: &Path,
) -> Result<ScoreReport, StageError> {
    let model = Model::load(model_path)?;
    let test = features::read(test_features)?;
    let vocabulary = model.vectorizer().vocabulary().len();
    if test.x.ncols() != vocabulary {
        return Err(StageError::FeatureMismatch {
            features: test_features.to_path_buf(),
            found: test.x.ncols(),
            other: model_path.to_path_buf(),
            expected: vocabulary,
        });
    }
    let classes = model.classes();
    // Class index of every test label; a label the model never saw is an
    // error rather than a silent miscount.
    let y: Vec<usize> = test
        .labels
        .iter()
        .enumerate()
        .map(|(row, &label)| {
            classes
                .binary_search(&label)
                .map_err(|_| StageError::UnknownClass {
                    path: test_features.to_path_buf(),
                    row,
                    label,
                    model: model_path.to_path_buf(),
                    classes: classes.to_vec(),
                })
        })
        .collect::<Result<_, _>>()?;
    let metrics_err = |source| StageError::Metrics {
        path: test_features.to_path_buf(),
        source,
    };
    let proba = model
        .classifier()
        .predict_proba(&test.x)
        .expect("columns checked against the vocabulary");
    let pred: Vec<usize> = model
        .classifier()
        .predict(&test.x)
        .expect("columns checked against the vocabulary")
        .iter()
        .map(|p| {
            classes
                .binary_search(p)
                .expect("a predicted class is a class")
        })
        .collect();

    let k = classes.len();
    let mut matrix = vec![0u64; k * k];
    for (&t, &p) in y.iter().zip(&pred) {
        matrix[t * k + p] += 1;
    }
    let confusion = (0..k * k)
        .map(|cell| ConfusionCell {
            actual: classes[cell / k],
            predicted: classes[cell % k],
            count: matrix[cell],
        })
        .collect();
    let y: Vec<i64> = y.iter().map(|&i| i as i64).collect();
    let pred: Vec<i64> = pred.iter().map(|&i| i as i64).collect();

    let (report, roc) = if k == 2 {
        let r = BinaryReport::compute(&y, &pred, &proba.column(1)).map_err(metrics_err)?;
        let roc = r.roc.as_ref().map(|c| {
            (0..c.fpr.len())
                .map(|i| RocPoint {
                    fpr: c.fpr[i],
                    tpr: c.tpr[i],
                    threshold: c.thresholds[i],
                })
                .collect()
        });
        let m = BinaryMetrics {
            accuracy: r.accuracy,
            true_negative: r.confusion.true_negative,
            false_positive: r.confusion.false_positive,
            false_negative: r.confusion.false_negative,
            true_positive: r.confusion.true_positive,
            precision: r.precision,
            recall: r.recall,
            f1: r.f1,
            roc_auc: r.roc_auc,
            log_loss: r.log_loss,
            n_test: y.len(),
        };
        (ScoreReport::Binary(m), roc)
    } else {
        let per_class = (0..k)
            .map(|c| {
                let row = &matrix[c * k..(c + 1) * k];
                let m = ClassMetrics {
                    support: row.iter().sum(),
                    predicted: (0..k).map(|t| matrix[t * k + c]).sum(),
                    correct: matrix[c * k + c],
                };
                (classes[c].to_string(), m)
            })
            .collect();
        let m = MulticlassMetrics {
            accuracy: accuracy(&y, &pred).map_err(metrics_err)?,
            n_test: y.len(),
            classes: per_class,
        };
        (ScoreReport::Multiclass(m), None)
    };

    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StageError::Write { path, source }
    };
    atomic::write_json(metrics_out, &report).map_err(write_err(metrics_out))?;
    atomic::write_json(plots_out, &Plots { roc, confusion }).map_err(write_err(plots_out))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logistic::LogisticParams;
    use crate::vectorize::VectorizeParams;

    const TEXTS: [&str; 8] = [
        "great fun",
        "a great film",
        "wonderful",
        "dull mess",
        "a dull film",
        "boring",
        "fine film",
        "so so",
    ];

    /// Fits on TEXTS with `labels`, saves the model, and writes the test
    /// features of `test` with `test_labels`.
    fn setup(dir: &Path, labels: &[i64], test: &[&str], test_labels: &[i64]) {
        let p = LogisticParams {
            c: 10.0,
            ..LogisticParams::default()
        };
        let fitted = Model::fit(&TEXTS, labels, &VectorizeParams::default(), &p).unwrap();
        fitted.model.save(&dir.join("model.json")).unwrap();
        let x = fitted.model.vectorizer().transform(test);
        features::write(&dir.join("test.features"), &x, test_labels).unwrap();
    }

    fn score(dir: &Path) -> Result<ScoreReport, StageError> {
        run_score(
            &dir.join("model.json"),
            &dir.join("test.features"),
            &dir.join("out/metrics.json"),
            &dir.join("out/plots.json"),
        )
    }

    fn json(path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn binary_metrics_and_plots() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let labels = [1, 1, 1, 0, 0, 0, 1, 0];
        setup(
            d,
            &labels,
            &["great film", "dull", "wonderful fun", "boring mess", "film"],
            &[1, 0, 1, 0, 0],
        );
        let report = score(d).unwrap();
        let m = json(&d.join("out/metrics.json"));
        let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = [
            "accuracy",
            "true_negative",
            "false_positive",
            "false_negative",
            "true_positive",
            "precision",
            "recall",
            "f1",
            "roc_auc",
            "log_loss",
            "n_test",
        ];
        want.sort();
        assert_eq!(keys, want);
        assert_eq!(m["n_test"], 5);
        assert_eq!(m["accuracy"].as_f64().unwrap(), report.accuracy());
        let tn = m["true_negative"].as_f64().unwrap();
        let fp = m["false_positive"].as_f64().unwrap();
        assert!((tn + fp - 1.0).abs() < 1e-12);
        assert!(m["roc_auc"].as_f64().unwrap() > 0.5);
        let plots = json(&d.join("out/plots.json"));
        let roc = plots["roc"].as_array().unwrap();
        assert_eq!(roc[0]["threshold"], Value::Null);
        assert_eq!(
            (roc[0]["fpr"].as_f64(), roc[0]["tpr"].as_f64()),
            (Some(0.0), Some(0.0))
        );
        let last = roc.last().unwrap();
        assert_eq!(
            (last["fpr"].as_f64(), last["tpr"].as_f64()),
            (Some(1.0), Some(1.0))
        );
        let confusion = plots["confusion"].as_array().unwrap();
        assert_eq!(confusion.len(), 4);
        assert_eq!(confusion[0]["actual"], 0);
        assert_eq!(confusion[1]["predicted"], 1);
        let total: u64 = confusion.iter().map(|c| c["count"].as_u64().unwrap()).sum();
        assert_eq!(total, 5);
        // Pretty-printed, with a final newline.
        let text = std::fs::read_to_string(d.join("out/metrics.json")).unwrap();
        assert!(text.starts_with("{\n") && text.ends_with("}\n"));
    }

    #[test]
    fn positive_class_is_the_larger_label() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Classes 0 and 4 (a split without `classes`).
        let labels = [4, 4, 4, 0, 0, 0, 4, 0];
        setup(d, &labels, &["great film", "dull mess"], &[4, 0]);
        let ScoreReport::Binary(m) = score(d).unwrap() else {
            panic!("two classes")
        };
        assert_eq!(
            (m.accuracy, m.true_positive, m.true_negative),
            (1.0, 1.0, 1.0)
        );
        let plots = json(&d.join("out/plots.json"));
        assert_eq!(plots["confusion"][3]["actual"], 4);
        assert_eq!(plots["confusion"][3]["count"], 1);
    }

    #[test]
    fn one_class_in_test_gives_null_auc_and_no_roc() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        setup(d, &[1, 1, 1, 0, 0, 0, 1, 0], &["great", "fun"], &[1, 1]);
        let ScoreReport::Binary(m) = score(d).unwrap() else {
            panic!("two classes")
        };
        assert_eq!(m.roc_auc, None);
        assert_eq!(json(&d.join("out/metrics.json"))["roc_auc"], Value::Null);
        assert!(json(&d.join("out/plots.json")).get("roc").is_none());
    }

    #[test]
    fn multiclass_reports_accuracy_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let labels = [2, 2, 2, 0, 0, 0, 1, 1];
        setup(
            d,
            &labels,
            &["great fun", "dull mess", "fine film", "so so", "wonderful"],
            &[2, 0, 1, 1, 2],
        );
        let ScoreReport::Multiclass(m) = score(d).unwrap() else {
            panic!("three classes")
        };
        assert_eq!(m.n_test, 5);
        let support: u64 = m.classes.values().map(|c| c.support).sum();
        let predicted: u64 = m.classes.values().map(|c| c.predicted).sum();
        let correct: u64 = m.classes.values().map(|c| c.correct).sum();
        assert_eq!((support, predicted), (5, 5));
        assert_eq!(m.accuracy, correct as f64 / 5.0);
        assert_eq!(m.classes["1"].support, 2);
        let metrics = json(&d.join("out/metrics.json"));
        assert_eq!(metrics["classes"]["2"]["support"], 2);
        let plots = json(&d.join("out/plots.json"));
        assert!(plots.get("roc").is_none());
        assert_eq!(plots["confusion"].as_array().unwrap().len(), 9);
    }

    #[test]
    fn unknown_labels_and_mismatched_features_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        setup(d, &[1, 1, 1, 0, 0, 0, 1, 0], &["great", "dull"], &[1, 7]);
        let e = score(d).unwrap_err().to_string();
        assert!(
            e.contains("row 1 is labelled 7, which is not a class of the model"),
            "{e}"
        );
        let x = crate::sparse::Csr::new(1, 2, vec![0, 0], vec![], vec![]).unwrap();
        features::write(&d.join("test.features"), &x, &[1]).unwrap();
        let e = score(d).unwrap_err().to_string();
        assert!(e.contains("has 2 feature columns"), "{e}");
        assert!(!d.join("out").exists());
        assert!(ScoreParams::from_json(&Map::new()).is_ok());
        let mut m = Map::new();
        m.insert("x".into(), Value::from(1));
        assert!(ScoreParams::from_json(&m)
            .unwrap_err()
            .contains("no param `x`"));
    }
}
