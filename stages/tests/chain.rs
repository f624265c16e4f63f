//! The whole chain through files: split → vectorize → fit → score.
//!
//! Runs on a corpus from `synth::write_corpus` (always), and on the real
//! movie-review phrases of `../shared/data/reviews.tsv` when that directory
//! exists (it is not in the repository; without it the test says so and
//! passes). `cargo test -p pipe-stages --release --test chain --
//! --nocapture` prints the time of every step.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pipe_stages::logistic::LogisticParams;
use pipe_stages::split::{run_split, SplitParams};
use pipe_stages::stage::score::ScoreReport;
use pipe_stages::stage::{run_fit, run_score, run_vectorize};
use pipe_stages::synth::{write_corpus, SynthParams};
use pipe_stages::vectorize::VectorizeParams;
use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

fn params<T>(json: &str, from: fn(&serde_json::Map<String, Value>) -> Result<T, String>) -> T {
    from(&serde_json::from_str(json).unwrap()).unwrap()
}

/// Runs the four stages on `input` into `dir`; returns the metrics JSON.
fn chain(input: &Path, dir: &Path, split: &SplitParams, fit: &LogisticParams) -> Value {
    let p = |name: &str| dir.join(name);
    let t = Instant::now();
    let report = run_split(
        input,
        None,
        &p("data/train.parquet"),
        &p("data/test.parquet"),
        split,
    )
    .unwrap();
    eprintln!("split: {:.3} s {report:?}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let report = run_vectorize(
        &p("data/train.parquet"),
        &p("data/test.parquet"),
        &p("features/vectorizer.json"),
        &p("features/train.features"),
        &p("features/test.features"),
        &split.text_column,
        &VectorizeParams::default(),
    )
    .unwrap();
    eprintln!("vectorize: {:.3} s {report:?}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let report = run_fit(
        &p("features/train.features"),
        &p("features/vectorizer.json"),
        &p("model/model.json"),
        fit,
    )
    .unwrap();
    eprintln!("fit: {:.3} s {report:?}", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let report = run_score(
        &p("model/model.json"),
        &p("features/test.features"),
        &p("metrics.json"),
        &p("plots.json"),
    )
    .unwrap();
    eprintln!("score: {:.3} s {report:?}", t.elapsed().as_secs_f64());
    assert!(matches!(report, ScoreReport::Binary(_)));
    serde_json::from_slice(&std::fs::read(p("metrics.json")).unwrap()).unwrap()
}

/// Every key of the binary metrics file, with a sane value.
fn check_metrics(m: &Value, min_accuracy: f64) {
    for key in [
        "accuracy",
        "true_negative",
        "false_positive",
        "false_negative",
        "true_positive",
        "precision",
        "recall",
        "f1",
        "roc_auc",
    ] {
        let v = m[key].as_f64().unwrap_or_else(|| panic!("{key} in {m}"));
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    let rate = |k: &str| m[k].as_f64().unwrap();
    assert!((rate("true_negative") + rate("false_positive") - 1.0).abs() < 1e-12);
    assert!((rate("false_negative") + rate("true_positive") - 1.0).abs() < 1e-12);
    let log_loss = m["log_loss"].as_f64().unwrap();
    assert!(log_loss.is_finite() && log_loss > 0.0, "{log_loss}");
    assert!(m["n_test"].as_u64().unwrap() > 0);
    assert!(rate("accuracy") > min_accuracy, "{m}");
    assert!(rate("roc_auc") > min_accuracy, "{m}");
}

#[test]
fn chain_on_a_synthetic_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("reviews.tsv");
    write_corpus(
        &input,
        &SynthParams {
            rows: 3_000,
            ..SynthParams::default()
        },
    )
    .unwrap();
    let split = params(
        r#"{"classes": {"0": 0, "4": 1}, "stratify": true}"#,
        SplitParams::from_json,
    );
    let m = chain(&input, dir.path(), &split, &LogisticParams::default());
    check_metrics(&m, 0.8);
    let plots: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("plots.json")).unwrap()).unwrap();
    assert!(plots["roc"].as_array().unwrap().len() > 2);
    assert_eq!(plots["confusion"].as_array().unwrap().len(), 4);
    // The model the chain wrote predicts raw text.
    let model = pipe_stages::model::Model::load(&dir.path().join("model/model.json")).unwrap();
    assert_eq!(
        model.predict(&["the film is a masterpiece .", "the plot is a disaster ."]),
        [1, 0]
    );
}

#[test]
fn chain_on_the_real_reviews() {
    let input = data_dir().join("reviews.tsv");
    if !input.is_file() {
        eprintln!("skipped: no data in {}", data_dir().display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let split = params(
        r#"{"classes": {"0": 0, "4": 1}, "test_size": 0.2, "seed": 42}"#,
        SplitParams::from_json,
    );
    let fit = params(r#"{"C": 1, "max_iter": 1000}"#, LogisticParams::from_json);
    let m = chain(&input, dir.path(), &split, &fit);
    eprintln!("{m}");
    check_metrics(&m, 0.9);
    // 16,278 rows, all of class 0 or 4: ceil(0.2 · 16278) = 3256 test rows.
    assert_eq!(m["n_test"], 3256);
}

#[test]
fn empty_texts_become_all_zero_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = d.join("in.tsv");
    std::fs::write(
        &input,
        "Phrase\tSentiment\ngood fun\t4\n\t0\ndull mess\t0\n\t4\ngreat film\t4\nbad film\t0\n",
    )
    .unwrap();
    // Everything but one row for training: both empty texts among them or
    // not, each side's empty texts must be all-zero rows.
    let split = params(r#"{"test_size": 2, "seed": 3}"#, SplitParams::from_json);
    let report = run_split(
        &input,
        None,
        &d.join("train.parquet"),
        &d.join("test.parquet"),
        &split,
    )
    .unwrap();
    assert_eq!(report.empty_texts, 2);
    run_vectorize(
        &d.join("train.parquet"),
        &d.join("test.parquet"),
        &d.join("vectorizer.json"),
        &d.join("train.features"),
        &d.join("test.features"),
        "Phrase",
        &VectorizeParams::default(),
    )
    .unwrap();
    let table = |name: &str| pipe_stages::table::Table::read(&d.join(name), None, &[]).unwrap();
    let mut zero_rows = 0;
    for side in ["train", "test"] {
        let t = table(&format!("{side}.parquet"));
        let texts = t.texts("Phrase").unwrap();
        let f = pipe_stages::features::read(&d.join(format!("{side}.features"))).unwrap();
        assert_eq!(f.x.nrows(), texts.len());
        for (i, text) in texts.iter().enumerate() {
            assert_eq!(text.is_empty(), f.x.row(i).0.is_empty(), "{side} row {i}");
            zero_rows += usize::from(text.is_empty());
        }
    }
    assert_eq!(zero_rows, 2);
}
