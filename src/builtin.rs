//! The registry of built-in stages (`uses:` in pipeline.yaml), engine side.
//!
//! A built-in is described by a [`Builtin`]: its name, an algorithm version
//! that enters the stage fingerprint (bump it when outputs would change for
//! the same inputs), and its `with:` arguments, each declared as an input
//! path, an output path (with the kind of output) or a plain option. From
//! that the engine derives the stage's deps and outs exactly as if the user
//! had written them, so built-in and `cmd` stages share the DAG, the
//! fingerprints and the cache. The work itself is a plain function of the
//! `pipe-stages` crate, called in-process with resolved paths and params.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value as Json};

use crate::spec::OutKind;

/// What a `with:` argument of a built-in is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgRole {
    /// A path the stage reads: becomes a dep.
    Input,
    /// A path the stage writes: becomes an out of the given kind.
    Output(OutKind),
    /// A plain value passed to the stage.
    Option,
}

#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static str,
    pub role: ArgRole,
    pub required: bool,
    pub help: &'static str,
}

/// Everything a built-in receives when it runs.
#[derive(Debug)]
pub struct BuiltinCall<'a> {
    /// Absolute paths of the input and output arguments.
    pub paths: BTreeMap<&'a str, PathBuf>,
    /// Option arguments as written in `with:`.
    pub options: &'a BTreeMap<String, Json>,
    /// The stage's params, merged: a whole section (`params: [fit]`)
    /// contributes its keys, a leaf (`fit.C`) its last component.
    pub params: &'a Map<String, Json>,
}

pub type RunFn = fn(&BuiltinCall) -> Result<(), String>;

#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub version: u32,
    pub summary: &'static str,
    pub args: &'static [Arg],
    pub run: RunFn,
    /// Checks the stage's merged params without running it, so that a
    /// misspelt param is reported when the pipeline is loaded.
    pub check_params: fn(&Map<String, Json>) -> Result<(), String>,
}

impl Builtin {
    pub fn arg(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.name == name)
    }
}

/// Every built-in stage `pipe` ships.
pub fn registry() -> &'static [Builtin] {
    REGISTRY
}

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    REGISTRY.iter().find(|b| b.name == name)
}

/// The params a built-in receives: a section (`params: [fit]`) contributes
/// its keys, a leaf (`fit.C`) its last key component, a whole file its
/// top-level keys.
pub fn merge_params(params: &crate::spec::params::ParamValues) -> Map<String, Json> {
    let mut merged = Map::new();
    for keys in params.values() {
        for (key, value) in keys {
            match value {
                Json::Object(map) => merged.extend(map.clone()),
                other => {
                    let last = key.rsplit('.').next().unwrap_or(key);
                    merged.insert(last.to_string(), other.clone());
                }
            }
        }
    }
    merged
}

const fn input(name: &'static str, help: &'static str) -> Arg {
    Arg {
        name,
        role: ArgRole::Input,
        required: true,
        help,
    }
}

const fn output(name: &'static str, kind: OutKind, help: &'static str) -> Arg {
    Arg {
        name,
        role: ArgRole::Output(kind),
        required: true,
        help,
    }
}

const fn option(name: &'static str, help: &'static str) -> Arg {
    Arg {
        name,
        role: ArgRole::Option,
        required: false,
        help,
    }
}

static REGISTRY: &[Builtin] = &[
    Builtin {
        name: "synth",
        version: pipe_stages::synth::VERSION,
        summary: "write a deterministic synthetic labelled review corpus (PhraseId SentenceId Phrase Sentiment)",
        args: &[output("out", OutKind::Out, "the TSV file to write")],
        run: run_synth,
        check_params: |p| pipe_stages::synth::SynthParams::from_json(p).map(|_| ()),
    },
    Builtin {
        name: "split",
        version: pipe_stages::split::VERSION,
        summary: "keep the chosen classes of a TSV/CSV/parquet table and split it into train and test parquet files",
        args: &[
            input("input", "the table to split (.tsv, .csv or .parquet)"),
            output("train", OutKind::Out, "the train parquet file to write"),
            output("test", OutKind::Out, "the test parquet file to write"),
            option("format", "tsv, csv or parquet, when the extension does not say"),
        ],
        run: run_split,
        check_params: |p| pipe_stages::split::SplitParams::from_json(p).map(|_| ()),
    },
    Builtin {
        name: "vectorize",
        version: pipe_stages::stage::vectorize::VERSION,
        summary: "fit a bag-of-words TF-IDF vectorizer on train; write it and the train/test feature matrices",
        args: &[
            input("train", "the train parquet file (from split)"),
            input("test", "the test parquet file (from split)"),
            output("vectorizer", OutKind::Out, "the fitted vectorizer file to write"),
            output("train_features", OutKind::Out, "the train feature matrix to write"),
            output("test_features", OutKind::Out, "the test feature matrix to write"),
            option("text_column", "the column holding the text (default Phrase)"),
        ],
        run: run_vectorize,
        check_params: |p| pipe_stages::vectorize::VectorizeParams::from_json(p).map(|_| ()),
    },
    Builtin {
        name: "fit",
        version: pipe_stages::stage::fit::VERSION,
        summary: "fit an L2-regularised logistic regression; write the model file",
        args: &[
            input("features", "the train feature matrix (from vectorize)"),
            input("vectorizer", "the vectorizer file (from vectorize)"),
            output("model", OutKind::Out, "the model file to write"),
        ],
        run: run_fit,
        check_params: |p| pipe_stages::logistic::LogisticParams::from_json(p).map(|_| ()),
    },
    Builtin {
        name: "score",
        version: pipe_stages::stage::score::VERSION,
        summary: "score a model on the test features: metrics JSON and plot data",
        args: &[
            input("model", "the model file (from fit)"),
            input("features", "the test feature matrix (from vectorize)"),
            output("metrics", OutKind::Metric, "the metrics JSON to write"),
            output("plots", OutKind::Plot, "the plot data JSON to write (ROC points, confusion counts)"),
        ],
        run: run_score,
        check_params: |p| pipe_stages::stage::score::ScoreParams::from_json(p).map(|_| ()),
    },
];

/// An error with its causes, `outer: inner: …`, skipping causes the outer
/// message already spells out.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

fn option_text<'a>(call: &'a BuiltinCall, name: &str) -> Result<Option<&'a str>, String> {
    match call.options.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("with.{name} must be a string, not {other}")),
    }
}

fn run_synth(call: &BuiltinCall) -> Result<(), String> {
    let params = pipe_stages::synth::SynthParams::from_json(call.params)?;
    pipe_stages::synth::write_corpus(&call.paths["out"], &params).map_err(|e| error_chain(&e))
}

fn run_split(call: &BuiltinCall) -> Result<(), String> {
    let params = pipe_stages::split::SplitParams::from_json(call.params)?;
    let format = option_text(call, "format")?;
    pipe_stages::split::run_split(
        &call.paths["input"],
        format,
        &call.paths["train"],
        &call.paths["test"],
        &params,
    )
    .map(|_| ())
    .map_err(|e| error_chain(&e))
}

fn run_vectorize(call: &BuiltinCall) -> Result<(), String> {
    let params = pipe_stages::vectorize::VectorizeParams::from_json(call.params)?;
    let text_column = option_text(call, "text_column")?.unwrap_or("Phrase");
    pipe_stages::stage::vectorize::run_vectorize(
        &call.paths["train"],
        &call.paths["test"],
        &call.paths["vectorizer"],
        &call.paths["train_features"],
        &call.paths["test_features"],
        text_column,
        &params,
    )
    .map(|_| ())
    .map_err(|e| error_chain(&e))
}

fn run_fit(call: &BuiltinCall) -> Result<(), String> {
    let params = pipe_stages::logistic::LogisticParams::from_json(call.params)?;
    pipe_stages::stage::fit::run_fit(
        &call.paths["features"],
        &call.paths["vectorizer"],
        &call.paths["model"],
        &params,
    )
    .map(|_| ())
    .map_err(|e| error_chain(&e))
}

fn run_score(call: &BuiltinCall) -> Result<(), String> {
    pipe_stages::stage::score::ScoreParams::from_json(call.params)?;
    pipe_stages::stage::score::run_score(
        &call.paths["model"],
        &call.paths["features"],
        &call.paths["metrics"],
        &call.paths["plots"],
    )
    .map(|_| ())
    .map_err(|e| error_chain(&e))
}
