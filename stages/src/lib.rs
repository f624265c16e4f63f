//! Built-in ML stages of `pipe`.
//!
//! Each stage is a plain function from files to files with a typed params
//! struct and an algorithm version that enters the stage fingerprint. This
//! crate knows nothing of the engine: the engine's registry (`pipe::builtin`)
//! declares which `with:` arguments are inputs and outputs and calls in here.
//!
//! - [`synth`]: a deterministic synthetic review corpus for the demo.
//!
//! The stages of the sentiment pipeline, from files to files (see
//! [`stage`] for the chain and its file formats):
//!
//! - [`split`]: filter, map labels to classes, seeded train/test split.
//! - [`stage::vectorize`], [`stage::fit`], [`stage::score`].
//!
//! Their file I/O:
//!
//! - [`table`]: TSV, CSV and parquet tables through polars, with errors
//!   that name the file, line and column.
//! - [`features`]: a sparse design matrix and its labels as one versioned
//!   binary file.
//! - `atomic` (private): every output is written to a temporary file and
//!   renamed into place.
//!
//! The numerical core of the text classifier, over in-memory data (file
//! I/O lives elsewhere), equal to scikit-learn's `CountVectorizer` →
//! `TfidfTransformer` → `LogisticRegression(solver="lbfgs")`:
//!
//! - [`text`]: sklearn's word analyzer (lowercase, `(?u)\b\w\w+\b`, n-grams).
//! - [`sparse`]: a CSR matrix and the products a linear model needs.
//! - [`vectorize`]: vocabulary, idf and TF-IDF rows, fitted on train.
//! - [`line_search`] and [`lbfgs`]: the Moré–Thuente line search and an
//!   L-BFGS that stops where scipy's L-BFGS-B stops.
//! - [`logistic`]: L2-regularised binary and multinomial logistic
//!   regression on the sparse matrix.
//! - [`metrics`]: accuracy, confusion rates, precision/recall/F1, ROC curve
//!   and AUC, log loss.
//! - [`model`]: vectorizer + classifier as one versioned model file.
//! - [`estimator`]: the classifier behind linfa's `Fit` / `PredictInplace`
//!   traits over the sparse matrix (linfa-logistic needs dense records, so
//!   the solver is ours).

mod atomic;
pub mod estimator;
pub mod features;
pub mod lbfgs;
pub mod line_search;
pub mod logistic;
pub mod metrics;
pub mod model;
pub mod sparse;
pub mod split;
pub mod stage;
pub mod synth;
pub mod table;
pub mod text;
pub mod vectorize;
