//! `model`: the fitted text classifier as one versioned file.
//!
//! A [`Model`] is a fitted [`TfidfVectorizer`] followed by a fitted
//! [`LogisticModel`], plus the params and solver outcome of the fit. It
//! turns raw texts into class probabilities; `save` and `load` move it
//! through one JSON file.
//!
//! # Predictions
//!
//! [`Model::predictions`] is the one prediction path of `pipe predict` and
//! `pipe serve`: a [`Prediction`] per text, with the answer of the mlseries
//! sentiment service it stands in for:
//!
//! - the class is sklearn's `predict` (for two classes, the second when the
//!   decision value is positive; else the first highest decision value);
//! - its label is `negative` / `positive` for a model of classes `[0, 1]`,
//!   else the class number as text;
//! - the score is the confidence in that class × 100 with 3 decimals, as
//!   mlseries computes it: for two classes `s = np.round(p₁ × 100, 3)` and
//!   the score is `s` for the second class, `round(100 − s, 3)` for the
//!   first; for more classes, `np.round(p × 100, 3)` of the predicted one.
//!
//! mlseries lowercases a text before its pipeline; the vectorizer lowercases
//! every text itself (as sklearn's `CountVectorizer` does, see
//! [`crate::text`]), so a lowercased text and the text itself are the same
//! input here. The decision values are computed per row straight from the
//! coefficients, summed in the order [`LogisticModel::decision_function`]
//! sums them, so they equal the batch path bit for bit without its
//! transposed copy of the coefficients (which would cost more than the
//! prediction of one short text).
//!
//! # File format (`format_version` 1)
//!
//! ```json
//! {
//!   "format": "pipe-model",
//!   "format_version": 1,
//!   "vectorizer": {
//!     "algorithm_version": 1,
//!     "params": {"ngram_range": [1, 1], "min_df": 1, "max_df": 1.0,
//!                "max_features": null, "sublinear_tf": false},
//!     "vocabulary": ["aaa", "abandon", "..."],
//!     "idf": [9.78, 8.39, "..."]
//!   },
//!   "classifier": {
//!     "algorithm_version": 1,
//!     "kind": "logistic_regression",
//!     "params": {"C": 1.0, "max_iter": 1000, "tol": 0.0001},
//!     "classes": [0, 1],
//!     "coef": [[0.12, -1.5, "..."]],
//!     "intercept": [0.11],
//!     "n_iter": 21,
//!     "converged": true
//!   }
//! }
//! ```
//!
//! - `vocabulary` lists the terms in column order (sorted), `idf` has one
//!   value per term; `params` are the vectorizer's, as
//!   [`VectorizeParams::to_json`] writes them (`min_df`/`max_df`: an
//!   integer is a count of documents, a float a proportion).
//! - `coef` has one row per class, or a single row for the second class
//!   when there are two (sklearn's `coef_`); `intercept` one value per row.
//! - `algorithm_version`s are the stages' [`vectorize::VERSION`] and
//!   [`logistic::VERSION`] at fit time, for the record.
//! - Floats are written in the shortest form that reads back to the same
//!   `f64`, so a saved and loaded model predicts bit-for-bit the same.
//!
//! Any change to this layout bumps [`FORMAT_VERSION`]; [`Model::load`]
//! refuses other versions with a message naming both, and refuses files
//! that are not a `pipe-model` at all. Saving writes a temporary file next
//! to the target and renames it into place, so a model file is never half
//! written.
//!
//! # The vectorizer file (`pipe-vectorizer`, `format_version` 1)
//!
//! The `vectorize` stage runs before `fit`, so the fitted vectorizer is
//! saved on its own by [`save_vectorizer`], as the `vectorizer` object
//! above under a header of its own:
//!
//! ```json
//! {"format": "pipe-vectorizer", "format_version": 1,
//!  "vectorizer": {"algorithm_version": 1, "params": {...}, "vocabulary": [...], "idf": [...]}}
//! ```
//!
//! [`load_vectorizer`] reads it back with the same checks, and
//! [`Model::from_parts`] joins a loaded vectorizer and a classifier fitted
//! on its matrix into a [`Model`] without refitting anything.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::logistic::{self, FitInfo, LogisticError, LogisticModel, LogisticParams, Probabilities};
use crate::vectorize::{self, TfidfVectorizer, VectorizeError, VectorizeParams, Vocabulary};

/// The value of the `format` field.
pub const FORMAT: &str = "pipe-model";
/// The layout version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The value of the `format` field of a vectorizer file.
pub const VECTORIZER_FORMAT: &str = "pipe-vectorizer";
/// The vectorizer file layout version this build reads and writes.
pub const VECTORIZER_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error(transparent)]
    Vectorize(#[from] VectorizeError),
    #[error(transparent)]
    Logistic(#[from] LogisticError),
    #[error("failed to write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a {kind} file: {reason}")]
    NotAModel {
        path: PathBuf,
        /// `pipe model` or `pipe vectorizer`.
        kind: &'static str,
        reason: String,
    },
    #[error(
        "`{path}` is a {kind} in format version {found}, but this pipe reads version {supported}\n\
         Hint: refit it with this version of pipe (`pipe repro`)"
    )]
    UnsupportedVersion {
        path: PathBuf,
        kind: &'static str,
        found: u64,
        supported: u32,
    },
    #[error("the {kind} file `{path}` is damaged: {reason}")]
    Corrupt {
        path: PathBuf,
        kind: &'static str,
        reason: String,
    },
}

/// A JSON file format: its `format` value, version, and name in messages.
struct FileKind {
    format: &'static str,
    version: u32,
    name: &'static str,
}

const MODEL_FILE: FileKind = FileKind {
    format: FORMAT,
    version: FORMAT_VERSION,
    name: "pipe model",
};
const VECTORIZER_FILE: FileKind = FileKind {
    format: VECTORIZER_FORMAT,
    version: VECTORIZER_FORMAT_VERSION,
    name: "pipe vectorizer",
};

/// Writes `value` as one line of JSON to `path`, atomically.
fn save_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ModelError> {
    crate::atomic::write(path, |w| {
        serde_json::to_writer(&mut *w, value).map_err(std::io::Error::from)?;
        w.write_all(b"\n")
    })
    .map_err(|source| ModelError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads `path` as JSON of `kind` and checks its `format` and
/// `format_version` fields; returns the whole value.
fn load_json(path: &Path, kind: &FileKind) -> Result<Value, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_json(path, &bytes, kind)
}

/// [`load_json`] of bytes already read from `path`.
fn parse_json(path: &Path, bytes: &[u8], kind: &FileKind) -> Result<Value, ModelError> {
    let not_a_model = |reason: String| ModelError::NotAModel {
        path: path.to_path_buf(),
        kind: kind.name,
        reason,
    };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| not_a_model(format!("it is not JSON ({e})")))?;
    match value.get("format").and_then(Value::as_str) {
        Some(f) if f == kind.format => {}
        Some(other) => return Err(not_a_model(format!("its format is `{other}`"))),
        None => {
            return Err(not_a_model(format!(
                "it has no `format: \"{}\"` field",
                kind.format
            )))
        }
    }
    let found = value
        .get("format_version")
        .and_then(Value::as_u64)
        .ok_or_else(|| not_a_model("it has no whole-number `format_version`".into()))?;
    if found != u64::from(kind.version) {
        return Err(ModelError::UnsupportedVersion {
            path: path.to_path_buf(),
            kind: kind.name,
            found,
            supported: kind.version,
        });
    }
    Ok(value)
}

fn corrupt(path: &Path, kind: &FileKind, reason: String) -> ModelError {
    ModelError::Corrupt {
        path: path.to_path_buf(),
        kind: kind.name,
        reason,
    }
}

/// Writes a fitted vectorizer to `path` (format in the module docs),
/// atomically, creating parent directories.
pub fn save_vectorizer(vectorizer: &TfidfVectorizer, path: &Path) -> Result<(), ModelError> {
    save_json(
        path,
        &VectorizerOnlyFile {
            format: VECTORIZER_FORMAT.to_string(),
            format_version: VECTORIZER_FORMAT_VERSION,
            vectorizer: VectorizerFile::of(vectorizer),
        },
    )
}

/// Reads a vectorizer written by [`save_vectorizer`].
pub fn load_vectorizer(path: &Path) -> Result<TfidfVectorizer, ModelError> {
    let value = load_json(path, &VECTORIZER_FILE)?;
    let file: VectorizerOnlyFile = serde_json::from_value(value)
        .map_err(|e| corrupt(path, &VECTORIZER_FILE, e.to_string()))?;
    file.vectorizer
        .into_vectorizer()
        .map_err(|reason| corrupt(path, &VECTORIZER_FILE, reason))
}

/// A fitted TF-IDF + logistic regression text classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    vectorizer: TfidfVectorizer,
    classifier: LogisticModel,
    params: LogisticParams,
    n_iter: usize,
    converged: bool,
}

/// The result of [`Model::fit`]: the model, the solver outcome, and the
/// training matrix (for callers that report on it).
#[derive(Debug)]
pub struct Fitted {
    pub model: Model,
    pub info: FitInfo,
    pub train_matrix: crate::sparse::Csr,
}

impl Model {
    /// Fits the vectorizer on `texts` and the classifier on its matrix.
    pub fn fit<S: AsRef<str> + Sync>(
        texts: &[S],
        labels: &[i64],
        vectorize_params: &VectorizeParams,
        params: &LogisticParams,
    ) -> Result<Fitted, ModelError> {
        if texts.len() != labels.len() {
            return Err(LogisticError::LengthMismatch {
                rows: texts.len(),
                labels: labels.len(),
            }
            .into());
        }
        let (vectorizer, x) = TfidfVectorizer::fit_transform(texts, vectorize_params)?;
        let (classifier, info) = logistic::fit(&x, labels, params)?;
        Ok(Fitted {
            model: Model {
                vectorizer,
                classifier,
                params: params.clone(),
                n_iter: info.n_iter,
                converged: info.stop.converged(),
            },
            info,
            train_matrix: x,
        })
    }

    /// Joins a fitted vectorizer and a classifier fitted on its matrix
    /// (with `params`, ending as `info` says), without refitting.
    pub fn from_parts(
        vectorizer: TfidfVectorizer,
        classifier: LogisticModel,
        params: LogisticParams,
        info: &FitInfo,
    ) -> Result<Model, ModelError> {
        if classifier.n_features() != vectorizer.vocabulary().len() {
            return Err(LogisticError::FeatureMismatch {
                expected: vectorizer.vocabulary().len(),
                found: classifier.n_features(),
            }
            .into());
        }
        Ok(Model {
            vectorizer,
            classifier,
            params,
            n_iter: info.n_iter,
            converged: info.stop.converged(),
        })
    }

    pub fn vectorizer(&self) -> &TfidfVectorizer {
        &self.vectorizer
    }

    pub fn classifier(&self) -> &LogisticModel {
        &self.classifier
    }

    pub fn params(&self) -> &LogisticParams {
        &self.params
    }

    /// L-BFGS iterations of the fit.
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// False when the fit stopped at `max_iter` (sklearn's
    /// `ConvergenceWarning`).
    pub fn converged(&self) -> bool {
        self.converged
    }

    /// Class probabilities of raw texts, columns in [`Model::classes`] order.
    pub fn predict_proba<S: AsRef<str>>(&self, texts: &[S]) -> Probabilities {
        let x = self.vectorizer.transform(texts);
        self.classifier
            .predict_proba(&x)
            .expect("the vectorizer's columns are the classifier's features")
    }

    /// Predicted labels of raw texts.
    pub fn predict<S: AsRef<str>>(&self, texts: &[S]) -> Vec<i64> {
        let x = self.vectorizer.transform(texts);
        self.classifier
            .predict(&x)
            .expect("the vectorizer's columns are the classifier's features")
    }

    pub fn classes(&self) -> &[i64] {
        self.classifier.classes()
    }

    /// The prediction for each text, in order (see the module docs).
    pub fn predictions<S: AsRef<str>>(&self, texts: &[S]) -> Vec<Prediction> {
        let x = self.vectorizer.transform(texts);
        let classes = self.classifier.classes();
        let coef: Vec<&[f64]> = self.classifier.coef_rows().collect();
        let intercept = self.classifier.intercept();
        let mut z = vec![0.0; coef.len()];
        (0..x.nrows())
            .map(|i| {
                let (cols, vals) = x.row(i);
                for ((z, w), b) in z.iter_mut().zip(&coef).zip(intercept) {
                    // The sum of `Csr::mul_dense`, term for term.
                    let dot: f64 = if coef.len() == 1 {
                        cols.iter()
                            .zip(vals)
                            .map(|(&j, &v)| v * w[j as usize])
                            .sum()
                    } else {
                        let mut acc = 0.0;
                        for (&j, &v) in cols.iter().zip(vals) {
                            acc += v * w[j as usize];
                        }
                        acc
                    };
                    *z = dot + b;
                }
                let (class_index, score) = if classes.len() == 2 {
                    let s = np_round3(logistic::expit(z[0]) * 100.0);
                    if z[0] > 0.0 {
                        (1, s)
                    } else {
                        (0, ((100.0 - s) * 1000.0).round() / 1000.0)
                    }
                } else {
                    let best = (1..z.len()).fold(0, |b, c| if z[c] > z[b] { c } else { b });
                    let max = z[best];
                    let sum: f64 = z.iter().map(|&v| (v - max).exp()).sum();
                    (best, np_round3((1.0 / sum) * 100.0))
                };
                Prediction {
                    class: classes[class_index],
                    label: self.label(class_index),
                    score,
                    known_terms: cols.len(),
                }
            })
            .collect()
    }

    /// The name of the class at `index`: `negative` / `positive` for a
    /// model of classes `[0, 1]`, else the class number.
    pub fn label(&self, index: usize) -> String {
        match (self.classes(), index) {
            ([0, 1], 0) => "negative".into(),
            ([0, 1], 1) => "positive".into(),
            (classes, _) => classes
                .get(index)
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }

    /// Writes the model to `path` atomically (temporary file + rename),
    /// creating parent directories.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        save_json(path, &self.to_file())
    }

    /// Reads a model written by [`Model::save`].
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let value = load_json(path, &MODEL_FILE)?;
        Model::from_value(path, value)
    }

    /// Reads a model from the bytes of a file written by [`Model::save`];
    /// `path` names it in errors. (For a caller that needs the bytes too,
    /// e.g. to hash exactly the version it loaded.)
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Model, ModelError> {
        let value = parse_json(path, bytes, &MODEL_FILE)?;
        Model::from_value(path, value)
    }

    fn from_value(path: &Path, value: Value) -> Result<Model, ModelError> {
        let file: ModelFile =
            serde_json::from_value(value).map_err(|e| corrupt(path, &MODEL_FILE, e.to_string()))?;
        Model::from_file(file).map_err(|reason| corrupt(path, &MODEL_FILE, reason))
    }

    fn to_file(&self) -> ModelFile {
        ModelFile {
            format: FORMAT.to_string(),
            format_version: FORMAT_VERSION,
            vectorizer: VectorizerFile::of(&self.vectorizer),
            classifier: ClassifierFile {
                algorithm_version: logistic::VERSION,
                kind: "logistic_regression".to_string(),
                params: self.params.to_json(),
                classes: self.classifier.classes().to_vec(),
                coef: self.classifier.coef_rows().map(<[f64]>::to_vec).collect(),
                intercept: self.classifier.intercept().to_vec(),
                n_iter: self.n_iter,
                converged: self.converged,
            },
        }
    }

    fn from_file(file: ModelFile) -> Result<Model, String> {
        let v = file.vectorizer;
        let c = file.classifier;
        if c.kind != "logistic_regression" {
            return Err(format!("unknown classifier kind `{}`", c.kind));
        }
        let vectorizer = v.into_vectorizer()?;
        let params = LogisticParams::from_json(&c.params)?;
        let classifier = LogisticModel::from_parts(c.classes, c.coef, c.intercept)?;
        if classifier.n_features() != vectorizer.vocabulary().len() {
            return Err(format!(
                "the classifier has {} coefficients per class but the vocabulary {} terms",
                classifier.n_features(),
                vectorizer.vocabulary().len()
            ));
        }
        Ok(Model {
            vectorizer,
            classifier,
            params,
            n_iter: c.n_iter,
            converged: c.converged,
        })
    }
}

/// The answer for one text; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The predicted class, as in the training labels.
    pub class: i64,
    /// Its name: `negative` / `positive`, or the class number.
    pub label: String,
    /// The confidence in the class × 100, 3 decimals (0–100).
    pub score: f64,
    /// Terms of the text found in the vocabulary (with repeats counted
    /// once): 0 means the prediction is the model's prior alone.
    pub known_terms: usize,
}

/// numpy's `np.round(x, 3)`: scaled, rounded half to even, scaled back.
fn np_round3(x: f64) -> f64 {
    (x * 1000.0).round_ties_even() / 1000.0
}

/// The on-disk layout; see the module docs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: String,
    format_version: u32,
    vectorizer: VectorizerFile,
    classifier: ClassifierFile,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorizerFile {
    algorithm_version: u32,
    params: Map<String, Value>,
    vocabulary: Vec<String>,
    idf: Vec<f64>,
}

impl VectorizerFile {
    fn of(v: &TfidfVectorizer) -> VectorizerFile {
        VectorizerFile {
            algorithm_version: vectorize::VERSION,
            params: v.params().to_json(),
            vocabulary: v.vocabulary().terms().to_vec(),
            idf: v.idf().to_vec(),
        }
    }

    fn into_vectorizer(self) -> Result<TfidfVectorizer, String> {
        let params = VectorizeParams::from_json(&self.params)?;
        let vocabulary = Vocabulary::from_sorted_terms(self.vocabulary)?;
        TfidfVectorizer::from_parts(params, vocabulary, self.idf)
    }
}

/// The vectorizer file; see the module docs.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorizerOnlyFile {
    format: String,
    format_version: u32,
    vectorizer: VectorizerFile,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassifierFile {
    algorithm_version: u32,
    kind: String,
    params: Map<String, Value>,
    classes: Vec<i64>,
    coef: Vec<Vec<f64>>,
    intercept: Vec<f64>,
    n_iter: usize,
    converged: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXTS: [&str; 8] = [
        "a wonderful, moving film",
        "wonderful acting and a great story",
        "great fun from start to finish",
        "moving and great",
        "a dull and tedious mess",
        "tedious, boring story",
        "boring from start to finish",
        "a dull film",
    ];
    const LABELS: [i64; 8] = [1, 1, 1, 1, 0, 0, 0, 0];

    fn fitted() -> Model {
        let p = LogisticParams {
            c: 10.0,
            max_iter: 100,
            tol: 1e-6,
        };
        Model::fit(&TEXTS, &LABELS, &VectorizeParams::default(), &p)
            .unwrap()
            .model
    }

    #[test]
    fn fits_and_predicts_raw_text() {
        let m = fitted();
        assert!(m.converged());
        assert_eq!(m.predict(&TEXTS), LABELS);
        let p = m.predict_proba(&["a great and wonderful story", "dull boring mess", "zzz"]);
        assert!(p.row(0)[1] > 0.5 && p.row(1)[1] < 0.5);
        // No known word: the intercept alone decides.
        let b = m.classifier().intercept()[0];
        assert!((p.row(2)[1] - 1.0 / (1.0 + (-b).exp())).abs() < 1e-15);
    }

    #[test]
    fn predictions_are_predict_and_predict_proba_as_mlseries_rounds_them() {
        let m = fitted();
        let texts = [
            "a great and wonderful story",
            "dull boring mess",
            "zzz",
            "",
            "Great FUN",
        ];
        let got = m.predictions(&texts);
        let labels = m.predict(&texts);
        let proba = m.predict_proba(&texts);
        for (i, p) in got.iter().enumerate() {
            assert_eq!(p.class, labels[i], "{}", texts[i]);
            let p1 = proba.row(i)[1];
            let s = (p1 * 100.0 * 1000.0).round_ties_even() / 1000.0;
            let want = if p.class == 1 {
                s
            } else {
                ((100.0 - s) * 1000.0).round() / 1000.0
            };
            assert_eq!(p.score.to_bits(), want.to_bits(), "{}", texts[i]);
            assert_eq!(p.label, ["negative", "positive"][p.class as usize]);
        }
        assert_eq!(got[0].label, "positive");
        assert_eq!(got[1].label, "negative");
        assert_eq!((got[2].known_terms, got[3].known_terms), (0, 0));
        assert_eq!(got[4].known_terms, 2);
        // Three decimals, no more.
        for p in &got {
            assert_eq!(p.score, format!("{:.3}", p.score).parse::<f64>().unwrap());
        }
    }

    #[test]
    fn predictions_of_many_classes_name_the_class_and_its_probability() {
        let p = LogisticParams {
            c: 10.0,
            max_iter: 200,
            tol: 1e-6,
        };
        let texts = [
            "red apple",
            "red cherry",
            "green leaf",
            "green grass",
            "blue sky",
            "blue sea",
        ];
        let m = Model::fit(&texts, &[2, 2, 5, 5, 7, 7], &VectorizeParams::default(), &p)
            .unwrap()
            .model;
        let probe = ["red", "green grass", "blue", "nothing known"];
        let got = m.predictions(&probe);
        let proba = m.predict_proba(&probe);
        assert_eq!(
            got.iter().map(|p| p.class).collect::<Vec<_>>(),
            m.predict(&probe)
        );
        for (i, p) in got.iter().enumerate() {
            let k = m.classes().iter().position(|&c| c == p.class).unwrap();
            let want = (proba.row(i)[k] * 100.0 * 1000.0).round_ties_even() / 1000.0;
            assert_eq!(p.score.to_bits(), want.to_bits());
            assert_eq!(p.label, p.class.to_string());
        }
        assert_eq!(got[0].label, "2");
        assert_eq!(got[1].label, "5");
    }

    #[test]
    fn save_load_roundtrip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model").join("model.json");
        let m = fitted();
        m.save(&path).unwrap();
        let back = Model::load(&path).unwrap();
        assert_eq!(back, m);
        let texts = ["great story", "tedious film", "unknown words only"];
        assert_eq!(back.predict_proba(&texts), m.predict_proba(&texts));
        // No temporary file is left behind.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["format"], FORMAT);
        assert_eq!(json["classifier"]["classes"], serde_json::json!([0, 1]));
        assert_eq!(json["classifier"]["params"]["C"], 10.0);
        assert_eq!(json["vectorizer"]["params"]["max_df"], 1.0);
    }

    #[test]
    fn wrong_version_and_foreign_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        fitted().save(&path).unwrap();
        let mut json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();

        json["format_version"] = Value::from(99);
        std::fs::write(&path, json.to_string()).unwrap();
        let e = Model::load(&path).unwrap_err();
        assert!(matches!(
            e,
            ModelError::UnsupportedVersion {
                found: 99,
                supported: 1,
                ..
            }
        ));
        assert!(e.to_string().contains("format version 99"), "{e}");
        assert!(e.to_string().contains("Hint:"), "{e}");

        std::fs::write(&path, "PhraseId\tPhrase\n1\tgood\n").unwrap();
        let e = Model::load(&path).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not a pipe model file: it is not JSON"),
            "{e}"
        );

        std::fs::write(&path, r#"{"accuracy": 0.9}"#).unwrap();
        let e = Model::load(&path).unwrap_err();
        assert!(matches!(e, ModelError::NotAModel { .. }), "{e}");

        json["format_version"] = Value::from(FORMAT_VERSION);
        json["vectorizer"]["idf"] = serde_json::json!([1.0]);
        std::fs::write(&path, json.to_string()).unwrap();
        let e = Model::load(&path).unwrap_err();
        assert!(e.to_string().contains("is damaged"), "{e}");

        let e = Model::load(&dir.path().join("missing.json")).unwrap_err();
        assert!(matches!(e, ModelError::Read { .. }));
    }

    #[test]
    fn vectorizer_file_roundtrips_and_is_told_apart_from_a_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v").join("vectorizer.json");
        let m = fitted();
        save_vectorizer(m.vectorizer(), &path).unwrap();
        assert_eq!(&load_vectorizer(&path).unwrap(), m.vectorizer());
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["format"], VECTORIZER_FORMAT);
        assert_eq!(json["vectorizer"]["algorithm_version"], vectorize::VERSION);

        // A model is not a vectorizer file, and the other way round.
        let model_path = dir.path().join("model.json");
        m.save(&model_path).unwrap();
        let e = load_vectorizer(&model_path).unwrap_err().to_string();
        assert!(
            e.contains("is not a pipe vectorizer file: its format is `pipe-model`"),
            "{e}"
        );
        let e = Model::load(&path).unwrap_err().to_string();
        assert!(e.contains("is not a pipe model file"), "{e}");

        let mut json = json;
        json["vectorizer"]["idf"] = serde_json::json!([1.0]);
        std::fs::write(&path, json.to_string()).unwrap();
        let e = load_vectorizer(&path).unwrap_err().to_string();
        assert!(
            e.contains("the pipe vectorizer file") && e.contains("is damaged"),
            "{e}"
        );
    }

    #[test]
    fn from_parts_joins_without_refitting() {
        let m = fitted();
        let (classifier, info) = {
            let x = m.vectorizer().transform(&TEXTS);
            logistic::fit(&x, &LABELS, m.params()).unwrap()
        };
        let joined = Model::from_parts(
            m.vectorizer().clone(),
            classifier,
            m.params().clone(),
            &info,
        )
        .unwrap();
        assert_eq!(joined, m);
        // A classifier of another width is refused.
        let other = LogisticModel::from_parts(vec![0, 1], vec![vec![0.5; 3]], vec![0.0]).unwrap();
        let e = Model::from_parts(m.vectorizer().clone(), other, m.params().clone(), &info)
            .unwrap_err();
        assert!(matches!(
            e,
            ModelError::Logistic(LogisticError::FeatureMismatch { found: 3, .. })
        ));
    }

    #[test]
    fn fit_errors_pass_through() {
        let p = LogisticParams::default();
        let v = VectorizeParams::default();
        let e = Model::fit(&["a", "b"], &[0, 1], &v, &p).unwrap_err();
        assert!(matches!(e, ModelError::Vectorize(_)), "{e}");
        let e = Model::fit(&TEXTS, &[1; 8], &v, &p).unwrap_err();
        assert!(matches!(
            e,
            ModelError::Logistic(LogisticError::OneClass { .. })
        ));
        let e = Model::fit(&TEXTS, &[1; 3], &v, &p).unwrap_err();
        assert!(matches!(
            e,
            ModelError::Logistic(LogisticError::LengthMismatch { .. })
        ));
    }
}
