//! Parity with scikit-learn on the real movie-review split.
//!
//! Fits TF-IDF + logistic regression on `../shared/data/train-split.tsv`
//! (Phrase → labels), scores `test-split.tsv`, and compares with the
//! reference table of `../shared/data/README.md` (scikit-learn 1.8,
//! `CountVectorizer()` → `TfidfTransformer()` → `LogisticRegression(C,
//! max_iter=1000)`). The data is not in the repository: when the directory
//! is absent the test says so and passes.
//!
//! Run it in release mode for speed: `cargo test -p pipe-stages --release
//! --test parity -- --nocapture` prints the figures and fit times.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pipe_stages::logistic::{self, LogisticParams};
use pipe_stages::metrics::BinaryReport;
use pipe_stages::vectorize::{TfidfVectorizer, VectorizeParams};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// (phrases, labels) of a split file: tab-separated, a header naming the
/// columns, no quoting.
fn read_split(path: &Path) -> (Vec<String>, Vec<i64>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (phrase, label) = (col("Phrase"), col("labels"));
    let mut phrases = Vec::new();
    let mut labels = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        phrases.push(fields[phrase].to_string());
        labels.push(fields[label].parse().unwrap());
    }
    (phrases, labels)
}

struct Reference {
    c: f64,
    accuracy: f64,
    roc_auc: f64,
}

#[test]
fn matches_scikit_learn_on_the_review_split() {
    let dir = data_dir();
    if !dir.join("train-split.tsv").is_file() || !dir.join("test-split.tsv").is_file() {
        eprintln!("skipped: no reference data in {}", dir.display());
        return;
    }
    let (train_text, train_y) = read_split(&dir.join("train-split.tsv"));
    let (test_text, test_y) = read_split(&dir.join("test-split.tsv"));
    assert_eq!((train_text.len(), test_text.len()), (13_022, 3_256));

    let started = Instant::now();
    let (vectorizer, x_train) =
        TfidfVectorizer::fit_transform(&train_text, &VectorizeParams::default()).unwrap();
    let x_test = vectorizer.transform(&test_text);
    eprintln!(
        "vectorize: {:.3} s; vocabulary {}, train nnz {}, Σ idf {}, Σ X {}",
        started.elapsed().as_secs_f64(),
        vectorizer.vocabulary().len(),
        x_train.nnz(),
        vectorizer.idf().iter().sum::<f64>(),
        x_train.data().iter().sum::<f64>(),
    );
    assert_eq!(vectorizer.vocabulary().len(), 9_976);
    assert_eq!(x_train.nnz(), 123_018);

    // From the reference table of shared/data/README.md.
    let references = [
        Reference {
            c: 100_000.0,
            accuracy: 0.9407,
            roc_auc: 0.9843,
        },
        Reference {
            c: 1.0,
            accuracy: 0.9260,
            roc_auc: 0.9785,
        },
    ];
    for r in references {
        let params = LogisticParams {
            c: r.c,
            max_iter: 1000,
            tol: 1e-4,
        };
        let started = Instant::now();
        let (model, info) = logistic::fit(&x_train, &train_y, &params).unwrap();
        let fit_s = started.elapsed().as_secs_f64();
        let pred = model.predict(&x_test).unwrap();
        let proba = model.predict_proba(&x_test).unwrap().column(1);
        let report = BinaryReport::compute(&test_y, &pred, &proba).unwrap();
        let auc = report.roc_auc.unwrap();
        let norm: f64 = model
            .coef_rows()
            .flatten()
            .map(|w| w * w)
            .sum::<f64>()
            .sqrt();
        eprintln!(
            "C={}: accuracy {:.4} tn {:.4} fp {:.4} fn {:.4} tp {:.4} precision {:.4} recall {:.4} \
             F1 {:.4} ROC AUC {:.6} log loss {:.6} | n_iter {} ({:?}), n_eval {}, objective {:.12}, |w| {:.4}, b {:.6}, fit {:.3} s",
            r.c,
            report.accuracy,
            report.confusion.true_negative,
            report.confusion.false_positive,
            report.confusion.false_negative,
            report.confusion.true_positive,
            report.precision,
            report.recall,
            report.f1,
            auc,
            report.log_loss,
            info.n_iter,
            info.stop,
            info.n_eval,
            info.objective,
            norm,
            model.intercept()[0],
            fit_s,
        );
        assert!(
            (report.accuracy - r.accuracy).abs() <= 0.005,
            "C={}: accuracy {} vs {}",
            r.c,
            report.accuracy,
            r.accuracy
        );
        assert!(
            (auc - r.roc_auc).abs() <= 0.005,
            "C={}: ROC AUC {} vs {}",
            r.c,
            auc,
            r.roc_auc
        );
    }
}
