//! The built-in ML stages (`synth`, `split`, `vectorize`, `fit`, `score`)
//! and `pipe predict`, through the real binary on real files: the demo
//! pipeline of the repository (its own pipeline.yaml and params.yaml, with
//! a smaller corpus), the files it writes, bad data and bad model files,
//! and the load-time checks of `with:` arguments.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value as Json;
use yaml_serde::Value as Yaml;

use crate::env::{Output, TestEnv};

/// The repository's demo pipeline and params, as users get them.
const DEMO_PIPELINE: &str = include_str!("../../pipeline.yaml");
const DEMO_PARAMS: &str = include_str!("../../params.yaml");

/// `synth.rows` for the tests: enough for a clearly better-than-chance
/// model, small enough to keep every test well under a second.
const DEMO_ROWS: u64 = 2000;

/// The demo project, with `synth.rows` set to [`DEMO_ROWS`].
fn demo() -> TestEnv {
    let env = TestEnv::new().file("pipeline.yaml", DEMO_PIPELINE);
    env.write("params.yaml", DEMO_PARAMS);
    set_param(&env, "synth", "rows", Yaml::from(DEMO_ROWS));
    env
}

/// The demo project after a successful `pipe repro`.
fn demo_run() -> TestEnv {
    let env = demo();
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "5 ran, 0 restored, 0 up to date, 0 failed");
    env
}

/// The path the demo pipeline gives to the `with:` argument `arg` of `stage`.
fn demo_arg(stage: &str, arg: &str) -> String {
    let pipeline: Yaml = yaml_serde::from_str(DEMO_PIPELINE).expect("pipeline.yaml is YAML");
    pipeline["stages"][stage]["with"][arg]
        .as_str()
        .unwrap_or_else(|| panic!("the demo has no `stages.{stage}.with.{arg}`"))
        .to_string()
}

fn params(env: &TestEnv) -> Yaml {
    yaml_serde::from_str(&env.read("params.yaml")).expect("params.yaml is YAML")
}

/// Sets `section.key` in params.yaml (comments are lost; values are kept).
fn set_param(env: &TestEnv, section: &str, key: &str, value: Yaml) {
    let mut p = params(env);
    let s = p
        .get_mut(section)
        .and_then(Yaml::as_mapping_mut)
        .unwrap_or_else(|| panic!("params.yaml has no section `{section}`"));
    s.insert(Yaml::from(key), value);
    env.write("params.yaml", &yaml_serde::to_string(&p).expect("params"));
}

fn json(env: &TestEnv, rel: &str) -> Json {
    let text = env.read(rel);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}\n{text}"))
}

fn number(v: &Json, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number: {v}"))
}

/// The shape of a JSON value: every leaf replaced by its type name
/// (`integer`, `number`, `string`, `boolean`, `null`), the elements of an
/// array merged into one (types that differ are joined, `null | number`).
#[derive(Debug, Clone, PartialEq)]
enum Schema {
    Types(Vec<&'static str>),
    Array(Option<Box<Schema>>),
    Object(BTreeMap<String, Schema>),
}

fn schema(v: &Json) -> Schema {
    match v {
        Json::Null => Schema::Types(vec!["null"]),
        Json::Bool(_) => Schema::Types(vec!["boolean"]),
        Json::Number(n) if n.is_f64() => Schema::Types(vec!["number"]),
        Json::Number(_) => Schema::Types(vec!["integer"]),
        Json::String(_) => Schema::Types(vec!["string"]),
        Json::Array(items) => Schema::Array(items.iter().map(schema).reduce(merge).map(Box::new)),
        Json::Object(map) => {
            Schema::Object(map.iter().map(|(k, v)| (k.clone(), schema(v))).collect())
        }
    }
}

fn merge(a: Schema, b: Schema) -> Schema {
    match (a, b) {
        (Schema::Types(mut a), Schema::Types(b)) => {
            a.extend(b);
            a.sort_unstable();
            a.dedup();
            Schema::Types(a)
        }
        (Schema::Array(a), Schema::Array(b)) => Schema::Array(match (a, b) {
            (Some(a), Some(b)) => Some(Box::new(merge(*a, *b))),
            (a, b) => a.or(b),
        }),
        (Schema::Object(mut a), Schema::Object(mut b)) => {
            let keys: BTreeSet<String> = a.keys().chain(b.keys()).cloned().collect();
            let absent = || Schema::Types(vec!["absent"]);
            Schema::Object(
                keys.into_iter()
                    .map(|k| {
                        let x = a.remove(&k).unwrap_or_else(absent);
                        let y = b.remove(&k).unwrap_or_else(absent);
                        (k, merge(x, y))
                    })
                    .collect(),
            )
        }
        (a, b) => panic!("array elements of different kinds: {a:?} and {b:?}"),
    }
}

/// The schema as indented text, keys sorted.
fn render(s: &Schema) -> String {
    fn go(s: &Schema, indent: usize, out: &mut String) {
        match s {
            Schema::Types(t) => out.push_str(&t.join(" | ")),
            Schema::Array(None) => out.push_str("[]"),
            Schema::Array(Some(item)) => {
                out.push_str("[\n");
                out.push_str(&"  ".repeat(indent + 1));
                go(item, indent + 1, out);
                out.push('\n');
                out.push_str(&"  ".repeat(indent));
                out.push_str("...]");
            }
            Schema::Object(map) => {
                out.push_str("{\n");
                for (k, v) in map {
                    out.push_str(&"  ".repeat(indent + 1));
                    out.push_str(k);
                    out.push_str(": ");
                    go(v, indent + 1, out);
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(indent));
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    go(s, 0, &mut out);
    out.push('\n');
    out
}

/// Rows of the demo corpus the split keeps (Sentiment is a key of
/// `split.classes`), and how many of them go to the test set.
fn expected_split(env: &TestEnv) -> (usize, usize) {
    let p = params(env);
    let classes: Vec<String> = p["split"]["classes"]
        .as_mapping()
        .expect("split.classes is a mapping")
        .keys()
        .map(|k| match k {
            Yaml::Number(n) => n.to_string(),
            Yaml::String(s) => s.clone(),
            other => panic!("class key {other:?}"),
        })
        .collect();
    let tsv = env.read(&demo_arg("synth", "out"));
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split('\t').collect();
    let label_column = p["split"]["label_column"].as_str().unwrap_or("Sentiment");
    let col = header
        .iter()
        .position(|h| *h == label_column)
        .expect("the label column");
    let kept = lines
        .filter(|l| classes.iter().any(|c| l.split('\t').nth(col) == Some(c)))
        .count();
    let test = match &p["split"]["test_size"] {
        Yaml::Number(n) if n.is_f64() => (n.as_f64().unwrap() * kept as f64).ceil() as usize,
        Yaml::Number(n) => n.as_u64().unwrap() as usize,
        Yaml::Null => (0.2 * kept as f64).ceil() as usize,
        other => panic!("test_size {other:?}"),
    };
    (kept, test)
}

// ---------------------------------------------------------------------
// 1. The demo pipeline
// ---------------------------------------------------------------------

#[test]
fn the_demo_pipeline_writes_sound_metrics() {
    let env = demo_run();
    let metrics = json(&env, &demo_arg("score", "metrics"));
    let keys: Vec<&str> = metrics
        .as_object()
        .expect("the metrics are an object")
        .keys()
        .map(String::as_str)
        .collect();
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
        "log_loss",
        "n_test",
    ] {
        assert!(keys.contains(&key), "no `{key}` in {metrics:#}");
    }
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
        let v = number(&metrics, key);
        assert!((0.0..=1.0).contains(&v), "{key} = {v} is not in [0, 1]");
    }
    // Chance is about 0.5 on the two balanced classes.
    let accuracy = number(&metrics, "accuracy");
    assert!(
        accuracy > 0.75,
        "accuracy {accuracy} is not clearly above chance"
    );
    assert!(number(&metrics, "roc_auc") > 0.75, "{metrics:#}");
    let log_loss = number(&metrics, "log_loss");
    assert!(
        log_loss.is_finite() && log_loss > 0.0,
        "log_loss {log_loss}"
    );
    // The confusion rates are normalised over the true classes.
    let tn = number(&metrics, "true_negative");
    let fp = number(&metrics, "false_positive");
    let fn_ = number(&metrics, "false_negative");
    let tp = number(&metrics, "true_positive");
    assert!((tn + fp - 1.0).abs() < 1e-9, "{metrics:#}");
    assert!((fn_ + tp - 1.0).abs() < 1e-9, "{metrics:#}");
    assert!(
        (number(&metrics, "recall") - tp).abs() < 1e-12,
        "{metrics:#}"
    );

    // n_test is the test share of the rows the split kept.
    let (_, n_test) = expected_split(&env);
    assert_eq!(
        metrics["n_test"].as_u64(),
        Some(n_test as u64),
        "{metrics:#}"
    );

    // The plots agree with the metrics.
    let plots = json(&env, &demo_arg("score", "plots"));
    let confusion = plots["confusion"].as_array().expect("confusion records");
    let count = |actual: i64, predicted: i64| {
        confusion
            .iter()
            .find(|c| c["actual"] == actual && c["predicted"] == predicted)
            .and_then(|c| c["count"].as_u64())
            .unwrap_or_else(|| panic!("no confusion cell ({actual}, {predicted}): {plots:#}"))
    };
    let (c00, c01, c10, c11) = (count(0, 0), count(0, 1), count(1, 0), count(1, 1));
    assert_eq!(confusion.len(), 4);
    assert_eq!((c00 + c01 + c10 + c11) as usize, n_test);
    assert!((accuracy - (c00 + c11) as f64 / n_test as f64).abs() < 1e-12);
    assert!((tp - c11 as f64 / (c10 + c11) as f64).abs() < 1e-12);
    let roc = plots["roc"].as_array().expect("roc points");
    let point = |p: &Json| (p["fpr"].as_f64(), p["tpr"].as_f64());
    assert_eq!(point(&roc[0]), (Some(0.0), Some(0.0)));
    assert_eq!(point(roc.last().unwrap()), (Some(1.0), Some(1.0)));
    assert!(
        roc.windows(2)
            .all(|w| point(&w[0]).0 <= point(&w[1]).0 && point(&w[0]).1 <= point(&w[1]).1),
        "the ROC curve only goes up and right: {plots:#}"
    );

    // Keys and value types, not values.
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!("metrics_schema", render(&schema(&metrics)));
    insta::assert_snapshot!("plots_schema", render(&schema(&plots)));
}

#[test]
fn the_demo_pipeline_reruns_only_what_a_param_touches_and_restores_on_revert() {
    let env = demo_run();
    let metrics_path = demo_arg("score", "metrics");
    let model_path = demo_arg("fit", "model");
    let metrics = env.read(&metrics_path);
    let model = env.read(&model_path);
    let lock = env.read("pipeline.lock");
    // Everything but the lock file of the run itself (it holds its pid).
    let tree = || {
        let mut t = env.tree();
        t.remove(".pipeline-cache/repro.lock");
        t
    };
    let before = tree();

    // A second repro is a no-op.
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "0 ran, 0 restored, 5 up to date, 0 failed");
    assert_eq!(out.stdout, "");
    assert_eq!(env.read("pipeline.lock"), lock);
    assert_eq!(tree(), before, "nothing was written");
    let out = env.pipe(&["status"]).ok();
    assert_eq!(out.stdout, "Everything is up to date.\n");

    // fit.C changes: fit and score rerun, nothing upstream.
    let c = params(&env)["fit"]["C"].clone();
    let new_c = if c.as_f64() == Some(1.0) { 0.5 } else { 1.0 };
    set_param(&env, "fit", "C", Yaml::from(new_c));
    let out = env.pipe(&["status"]).ok();
    assert!(
        out.stdout.contains("param fit.C changed:"),
        "status names the param:\n{}",
        out.stdout
    );
    assert!(out.stdout.contains("fit:") && out.stdout.contains("score:"));
    assert!(
        out.stdout.contains("up to date: synth, split, vectorize"),
        "{}",
        out.stdout
    );
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "2 ran, 0 restored, 3 up to date, 0 failed");
    assert!(
        out.stderr
            .contains("Running stage fit: param fit.C changed:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Running stage score:"),
        "{}",
        out.stderr
    );
    for stage in ["synth", "split", "vectorize"] {
        assert!(
            !out.stderr.contains(&format!("Running stage {stage}")),
            "{stage} reran:\n{}",
            out.stderr
        );
    }
    assert_ne!(env.read(&model_path), model, "a new model");
    assert_eq!(
        env.lock()["stages"]["fit"]["params"]["params.yaml"]["fit"]["C"].as_f64(),
        Some(new_c)
    );

    // Reverting it restores both from the run cache, byte for byte.
    set_param(&env, "fit", "C", c);
    let out = env.pipe(&["status"]).ok();
    assert!(
        out.stdout
            .contains("fit: (will be restored from the run cache)"),
        "{}",
        out.stdout
    );
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "0 ran, 2 restored, 3 up to date, 0 failed");
    for stage in ["fit", "score"] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&format!("✓ {stage}")) && l.contains("restored")),
            "{stage} was not restored:\n{}",
            out.stderr
        );
    }
    assert_eq!(env.read(&model_path), model);
    assert_eq!(env.read(&metrics_path), metrics);
    assert_eq!(env.read("pipeline.lock"), lock);
    let out = env.pipe(&["status"]).ok();
    assert_eq!(out.stdout, "Everything is up to date.\n");
}

// ---------------------------------------------------------------------
// 2. The parquet files, read by another tool
// ---------------------------------------------------------------------

fn have_pandas() -> bool {
    Command::new("python3")
        .args(["-c", "import pandas, pyarrow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const READ_SPLIT: &str = r#"
import json, sys
import pandas as pd
out = {}
for name in sys.argv[1:]:
    df = pd.read_parquet(name)
    out[name] = {
        "rows": len(df),
        "columns": list(df.columns),
        "label_dtype": str(df["label"].dtype),
        "labels": sorted(int(v) for v in df["label"].unique()),
        "label_is_class": bool(((df["Sentiment"] == 4).astype("int64") == df["label"]).all()),
        "sentiments": sorted(int(v) for v in df["Sentiment"].unique()),
    }
print(json.dumps(out))
"#;

#[test]
fn pandas_reads_the_split_parquet_files() {
    if !have_pandas() {
        eprintln!("skipped: `python3 -c 'import pandas, pyarrow'` fails on this machine");
        return;
    }
    let env = demo_run();
    let train = demo_arg("split", "train");
    let test = demo_arg("split", "test");
    let out = Command::new("python3")
        .args(["-c", READ_SPLIT, &train, &test])
        .current_dir(env.root())
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "pandas cannot read the split:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Json = serde_json::from_slice(&out.stdout).expect("JSON from python");
    let (kept, n_test) = expected_split(&env);
    assert_eq!(
        read[&test]["rows"].as_u64(),
        Some(n_test as u64),
        "{read:#}"
    );
    assert_eq!(
        read[&train]["rows"].as_u64(),
        Some((kept - n_test) as u64),
        "{read:#}"
    );
    for side in [&train, &test] {
        let r = &read[side];
        assert_eq!(
            r["columns"],
            serde_json::json!(["PhraseId", "SentenceId", "Phrase", "Sentiment", "label"]),
            "{side}"
        );
        assert_eq!(r["label_dtype"], "int64", "{side}");
        assert_eq!(r["labels"], serde_json::json!([0, 1]), "{side}");
        assert_eq!(r["sentiments"], serde_json::json!([0, 4]), "{side}");
        assert_eq!(
            r["label_is_class"], true,
            "{side}: label is 1 for Sentiment 4"
        );
    }
}

// ---------------------------------------------------------------------
// 3. pipe predict
// ---------------------------------------------------------------------

/// Runs `pipe ARGS…` with `stdin` as its standard input.
fn pipe_with_stdin(env: &TestEnv, args: &[&str], stdin: &str) -> Output {
    let started = Instant::now();
    let mut child = env
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pipe");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    let out = child.wait_with_output().expect("wait for pipe");
    Output {
        args: args.join(" "),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code(),
        signal: std::os::unix::process::ExitStatusExt::signal(&out.status),
        elapsed: started.elapsed(),
    }
}

/// The (text, prediction, prediction_score) of each line of `pipe predict`,
/// checking the documented keys, their order and their values.
fn predictions(out: &Output) -> Vec<(String, String, f64)> {
    assert!(out.stdout.ends_with('\n') || out.stdout.is_empty());
    out.stdout
        .lines()
        .map(|line| {
            let v: Json = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line: {e}: {line}"));
            let obj = v.as_object().expect("an object");
            assert_eq!(obj.len(), 3, "{line}");
            let pos = |k: &str| {
                line.find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("no `{k}`: {line}"))
            };
            assert!(
                pos("text") < pos("prediction") && pos("prediction") < pos("prediction_score"),
                "keys out of order: {line}"
            );
            let text = v["text"].as_str().expect("text is a string").to_string();
            let prediction = v["prediction"].as_str().expect("prediction").to_string();
            assert!(
                prediction == "positive" || prediction == "negative",
                "{line}"
            );
            let score = v["prediction_score"].as_f64().expect("a number");
            // The probability of the predicted class of two: at least half.
            assert!((50.0..=100.0).contains(&score), "{line}");
            (text, prediction, score)
        })
        .collect()
}

const POSITIVE: &str = "a masterpiece , brilliant";
const NEGATIVE: &str = "the plot is dreadful and a waste of time .";

#[test]
fn predict_classifies_texts_given_as_arguments_in_order() {
    let env = demo_run();
    let model = demo_arg("fit", "model");
    let texts = [
        POSITIVE,
        NEGATIVE,
        "the film is superb and wonderful .",
        "he said \"unwatchable\" \\ twice — ✓",
    ];
    let mut args = vec!["predict", "--model", &model];
    args.extend(texts);
    let out = env.pipe(&args).ok();
    assert_eq!(out.stderr, "");
    let got = predictions(&out);
    let got_texts: Vec<&str> = got.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(got_texts, texts, "one line per text, in order");
    assert_eq!(got[0].1, "positive", "{}", out.stdout);
    assert_eq!(got[1].1, "negative", "{}", out.stdout);
    assert_eq!(got[2].1, "positive", "{}", out.stdout);
    assert_eq!(got[3].1, "negative", "{}", out.stdout);
    assert!(
        got[0].2 > 90.0,
        "an obvious phrase is confident: {}",
        out.stdout
    );
}

#[test]
fn predict_reads_one_text_per_line_from_stdin() {
    let env = demo_run();
    let model = demo_arg("fit", "model");
    let texts = [POSITIVE, NEGATIVE, "", "zzzz qqqq"];
    let out = pipe_with_stdin(
        &env,
        &["predict", "--model", &model],
        &format!("{}\r\n{}\n{}\n{}\n", texts[0], texts[1], texts[2], texts[3]),
    )
    .ok();
    let from_stdin = predictions(&out);
    let got_texts: Vec<&str> = from_stdin.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(got_texts, texts, "one line per text, in order");
    assert_eq!(from_stdin[0].1, "positive");
    assert_eq!(from_stdin[1].1, "negative");
    // The same texts as arguments give the same lines.
    let mut args = vec!["predict", "--model", &model];
    args.extend(texts);
    let from_args = env.pipe(&args).ok();
    assert_eq!(out.stdout, from_args.stdout);
    // An empty text and a text of unknown words are both the all-zero
    // vector: the intercept alone decides.
    assert_eq!(
        (&from_stdin[2].1, from_stdin[2].2),
        (&from_stdin[3].1, from_stdin[3].2)
    );
}

#[test]
fn predict_warns_once_per_text_the_model_knows_no_word_of() {
    let env = demo_run();
    let model = demo_arg("fit", "model");
    let texts = [POSITIVE, "zzzz qqqq", "", "zzzz qqqq"];
    let mut args = vec!["predict", "--model", &model];
    args.extend(texts);
    let out = env.pipe(&args).ok();
    insta::assert_snapshot!(out.stderr, @r#"
        warning: no word of "zzzz qqqq" is in the model's vocabulary: its prediction is the model's prior alone
        warning: no word of "" is in the model's vocabulary: its prediction is the model's prior alone
        warning: no word of "zzzz qqqq" is in the model's vocabulary: its prediction is the model's prior alone
        "#);
    let got = predictions(&out);
    assert_eq!(
        got.len(),
        4,
        "every text is still predicted: {}",
        out.stdout
    );
}

#[test]
fn predict_refuses_a_missing_model_file() {
    let env = demo_run();
    let out = env
        .pipe(&["predict", "--model", "model/nope.json", POSITIVE])
        .code(2);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("model/nope.json"),
        "{}",
        out.stderr
    );
}

#[test]
fn predict_refuses_a_file_that_is_not_a_model() {
    let env = demo_run();
    let _s = env.settings().bind_to_scope();
    // Not JSON at all.
    let out = env
        .pipe(&["predict", "--model", "params.yaml", POSITIVE])
        .code(2);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("params.yaml"), "{}", out.stderr);
    insta::assert_snapshot!("predict_not_json", out.stderr);
    // JSON, but another file of the pipeline.
    let metrics = demo_arg("score", "metrics");
    let out = env
        .pipe(&["predict", "--model", &metrics, POSITIVE])
        .code(2);
    assert!(out.stderr.contains(&metrics), "{}", out.stderr);
    assert!(out.stderr.contains("not a pipe model"), "{}", out.stderr);
    // The vectorizer is close, but not a model.
    let vectorizer = demo_arg("vectorize", "vectorizer");
    let out = env
        .pipe(&["predict", "--model", &vectorizer, POSITIVE])
        .code(2);
    assert!(out.stderr.contains(&vectorizer), "{}", out.stderr);
    insta::assert_snapshot!("predict_vectorizer_is_not_a_model", out.stderr);
}

#[test]
fn predict_refuses_a_model_from_a_future_format_version() {
    let env = demo_run();
    let model = demo_arg("fit", "model");
    let mut m = json(&env, &model);
    assert_eq!(m["format_version"], 1);
    m["format_version"] = Json::from(99);
    env.write("future.json", &serde_json::to_string(&m).unwrap());
    let out = env
        .pipe(&["predict", "--model", "future.json", POSITIVE])
        .code(2);
    assert_eq!(out.stdout, "");
    for needle in ["future.json", "version 99", "version 1"] {
        assert!(
            out.stderr.contains(needle),
            "no `{needle}`:\n{}",
            out.stderr
        );
    }
}

// ---------------------------------------------------------------------
// 4. Bad data through pipe repro
// ---------------------------------------------------------------------

/// The demo's chain after `synth`, on a corpus copied in by a `cmd` stage
/// (`ingest`, which succeeds and is recorded), with the given split params.
fn chain(raw: &[u8], split_params: &str) -> TestEnv {
    let env = TestEnv::new()
        .file(
            "params.yaml",
            &format!("split:\n{split_params}\nfit:\n  C: 10.0\n"),
        )
        .pipeline(
            "
            stages:
              ingest:
                cmd: mkdir -p data && cp raw.tsv data/reviews.tsv
                deps: [raw.tsv]
                outs: [data/reviews.tsv]
              split:
                uses: split
                with:
                  input: data/reviews.tsv
                  train: data/train.parquet
                  test: data/test.parquet
                params: [split]
              vectorize:
                uses: vectorize
                with:
                  train: data/train.parquet
                  test: data/test.parquet
                  vectorizer: model/vectorizer.json
                  train_features: data/train.features
                  test_features: data/test.features
              fit:
                uses: fit
                with:
                  features: data/train.features
                  vectorizer: model/vectorizer.json
                  model: model/model.json
                params: [fit]
              score:
                uses: score
                with:
                  model: model/model.json
                  features: data/test.features
                  metrics: metrics.json
                  plots: plots/score.json
            ",
        );
    std::fs::write(env.path("raw.tsv"), raw).expect("write raw.tsv");
    env
}

/// `pipe repro` on [`chain`] must fail in split: exit 1, split named as
/// failed, everything downstream skipped, only `ingest` in the lock and no
/// output of split left behind. Returns the message of the failure.
fn fails_in_split(env: &TestEnv) -> (Output, String) {
    let out = env.pipe(&["repro"]).code(1);
    let failed = out
        .stderr
        .find("✗ split")
        .unwrap_or_else(|| panic!("split is not named as failed:\n{}", out.stderr));
    let message = out.stderr[failed..]
        .split_once("failed: ")
        .unwrap_or_else(|| panic!("no `failed:` after `✗ split`:\n{}", out.stderr))
        .1;
    // The message runs up to the first line of the run's own report.
    let end = message
        .find("\n- ")
        .or_else(|| message.find("\n0 ran"))
        .unwrap_or(message.len());
    let message = message[..end].to_string();
    for stage in ["vectorize", "fit", "score"] {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&format!("- {stage}")) && l.contains("skipped")),
            "{stage} is not skipped:\n{}",
            out.stderr
        );
    }
    assert!(
        out.counts().ends_with(" 1 failed, 3 skipped"),
        "{}",
        out.stderr
    );
    assert_eq!(env.locked_stages(), ["ingest"], "split is not recorded");
    assert!(!env.exists("data/train.parquet") && !env.exists("data/test.parquet"));
    (out, message)
}

const CLASSES: &str = "  classes: {0: 0, 4: 1}\n  test_size: 0.25";

/// Runs the chain on `input` (with [`CLASSES`]), expects the split to
/// fail with a message holding every one of `needles`, and snapshots it.
fn split_fails_with(input: &[u8], needles: &[&str], snapshot: &str) {
    let env = chain(input, CLASSES);
    let (out, message) = fails_in_split(&env);
    for needle in needles {
        assert!(message.contains(needle), "no `{needle}` in: {message}");
    }
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(snapshot, out.stderr);
}

#[test]
fn split_names_the_existing_columns_when_the_label_column_is_missing() {
    split_fails_with(
        b"Id\tPhrase\tScore\n1\tgood\t4\n2\tbad\t0\n",
        &[
            "data/reviews.tsv",
            "no column `Sentiment`",
            "`Id`, `Phrase`, `Score`",
        ],
        "split_missing_label_column",
    );
}

#[test]
fn split_names_the_line_that_is_not_utf8() {
    split_fails_with(
        b"Id\tPhrase\tSentiment\n1\tgood\t4\n2\tb\xffad\t0\n3\tfine\t4\n",
        &["data/reviews.tsv", "line 3", "UTF-8"],
        "split_not_utf8",
    );
}

#[test]
fn split_refuses_when_no_row_has_a_wanted_class() {
    split_fails_with(
        b"Id\tPhrase\tSentiment\n1\tgood\t3\n2\tbad\t1\n3\tmeh\t1\n",
        &["data/reviews.tsv", "`0`, `4`", "`1` (2 rows)", "`3`"],
        "split_no_rows_left",
    );
}

#[test]
fn split_refuses_a_single_class() {
    split_fails_with(
        b"Id\tPhrase\tSentiment\n1\tgood\t4\n2\tgreat\t4\n3\tmeh\t1\n",
        &["data/reviews.tsv", "only one class (1)", "2 rows"],
        "split_single_class",
    );
}

#[test]
fn split_refuses_a_header_without_rows() {
    split_fails_with(
        b"Id\tPhrase\tSentiment\n",
        &["data/reviews.tsv", "no rows"],
        "split_header_only",
    );
}

#[test]
fn split_refuses_a_test_size_that_leaves_no_training_row() {
    let env = chain(
        b"Id\tPhrase\tSentiment\n1\tgood\t4\n2\tbad\t0\n3\tgreat\t4\n4\tawful\t0\n",
        "  classes: {0: 0, 4: 1}\n  test_size: 4",
    );
    let (_, message) = fails_in_split(&env);
    assert!(
        message.contains("0 rows for training"),
        "says what is wrong: {message}"
    );
    // ceil(0.9 · 4) = 4 too.
    set_param(&env, "split", "test_size", Yaml::from(0.9));
    let (_, message) = fails_in_split(&env);
    assert!(message.contains("0 rows for training"), "{message}");
    assert!(
        message.contains("data/reviews.tsv"),
        "the message should name the file whose rows are counted: {message}"
    );
}

#[test]
fn split_refuses_an_unknown_param() {
    let env = chain(
        b"Id\tPhrase\tSentiment\n1\tgood\t4\n2\tbad\t0\n3\tgreat\t4\n4\tawful\t0\n",
        "  classes: {0: 0, 4: 1}\n  tets_size: 0.25",
    );
    // Refused when the pipeline is loaded, before any stage runs.
    let out = env.pipe(&["repro"]).code(2);
    assert!(
        out.stderr.contains("`tets_size`") && out.stderr.contains("test_size"),
        "names the wrong key and the right one: {}",
        out.stderr
    );
    assert!(!env.exists("pipeline.lock"), "nothing ran");
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!("split_unknown_param", out.stderr);
}

/// A vectorize → fit → score chain on hand-written train and test tables.
fn tables(train: &str, test: &str) -> TestEnv {
    TestEnv::new()
        .file("data/train.tsv", train)
        .file("data/test.tsv", test)
        .params("fit:\n  C: 10.0\n")
        .pipeline(
            "
            stages:
              vectorize:
                uses: vectorize
                with:
                  train: data/train.tsv
                  test: data/test.tsv
                  vectorizer: model/vectorizer.json
                  train_features: data/train.features
                  test_features: data/test.features
              fit:
                uses: fit
                with:
                  features: data/train.features
                  vectorizer: model/vectorizer.json
                  model: model/model.json
                params: [fit]
              score:
                uses: score
                with:
                  model: model/model.json
                  features: data/test.features
                  metrics: metrics.json
                  plots: plots/score.json
            ",
        )
}

#[test]
fn test_words_never_seen_in_training_are_scored() {
    let env = tables(
        "Phrase\tlabel\ngreat fun\t1\nwonderful film\t1\ngreat film\t1\n\
         dull mess\t0\nboring film\t0\ndull film\t0\n",
        "Phrase\tlabel\ngreat zebra\t1\ndull quokka\t0\nxylophone marmalade\t1\n",
    );
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "3 ran, 0 restored, 0 up to date, 0 failed");
    let metrics = json(&env, "metrics.json");
    assert_eq!(metrics["n_test"], 3);
    // The known words decide the first two rows; the third has none.
    let plots = json(&env, "plots/score.json");
    let total: u64 = plots["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 3);
    for key in ["accuracy", "roc_auc", "log_loss"] {
        assert!(number(&metrics, key).is_finite(), "{metrics:#}");
    }
    assert!(number(&metrics, "accuracy") >= 2.0 / 3.0, "{metrics:#}");
    let out = env
        .pipe(&[
            "predict",
            "--model",
            "model/model.json",
            "great zebra",
            "dull quokka",
        ])
        .ok();
    let got: Vec<String> = predictions(&out).into_iter().map(|p| p.1).collect();
    assert_eq!(got, ["positive", "negative"]);
}

#[test]
fn empty_texts_are_kept_as_empty_documents() {
    let mut raw = String::from("PhraseId\tPhrase\tSentiment\n");
    for i in 0..10 {
        raw.push_str(&format!("{i}\tbrilliant film {i}\t4\n"));
        raw.push_str(&format!("1{i}\tawful film {i}\t0\n"));
        raw.push_str(&format!("2{i}\t\t{}\n", if i % 2 == 0 { 0 } else { 4 }));
    }
    let env = chain(raw.as_bytes(), CLASSES);
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "5 ran, 0 restored, 0 up to date, 0 failed");
    // ceil(0.25 · 30) rows, the empty ones included.
    assert_eq!(json(&env, "metrics.json")["n_test"], 8);
    // An empty text is the zero vector, as is a text of unknown words.
    let out = env
        .pipe(&["predict", "--model", "model/model.json", "", "zzzz qqqq"])
        .ok();
    let got = predictions(&out);
    assert_eq!(
        (&got[0].1, got[0].2),
        (&got[1].1, got[1].2),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------------
// 5. with: arguments are checked when the pipeline is loaded
// ---------------------------------------------------------------------

/// A `fit` stage with the `with:` arguments given (one per line).
fn fit_with(args: &[&str]) -> TestEnv {
    let mut yaml = String::from("stages:\n  fit:\n    uses: fit\n    with:\n");
    for arg in args {
        yaml.push_str(&format!("      {arg}\n"));
    }
    yaml.push_str("    params: [fit]\n");
    TestEnv::new()
        .params("fit:\n  C: 1.0\n")
        .file("pipeline.yaml", &yaml)
}

#[test]
fn a_missing_required_argument_of_fit_is_refused_at_load_time() {
    let env = fit_with(&[
        "features: data/train.features",
        "vectorizer: model/vectorizer.json",
    ]);
    for cmd in ["repro", "status"] {
        let out = env.pipe(&[cmd]).code(2);
        assert!(
            out.stderr.contains("pipeline.yaml:2:") && out.stderr.contains("model:"),
            "{}",
            out.stderr
        );
    }
    assert!(!env.exists("pipeline.lock"));
    let out = env.pipe(&["repro"]).code(2);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!("fit_missing_model", out.stderr);
}

#[test]
fn a_misspelt_argument_of_fit_gets_a_suggestion() {
    let env = fit_with(&[
        "features: data/train.features",
        "vectorizer: model/vectorizer.json",
        "modle: model/model.json",
    ]);
    let out = env.pipe(&["repro"]).code(2);
    assert!(
        out.stderr.contains("pipeline.yaml:7:")
            && out.stderr.contains("`modle`")
            && out.stderr.contains("did you mean `model`?"),
        "{}",
        out.stderr
    );
    assert!(!env.exists("pipeline.lock"));
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!("fit_misspelt_model", out.stderr);
}
