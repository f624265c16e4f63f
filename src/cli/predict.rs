//! `pipe predict`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use pipe_stages::model::Model;

use super::{print, CliError};

/// Classify texts with a fitted model (as written by the `fit` stage), one
/// JSON line per text: {"text", "prediction", "prediction_score" (0–100)}.
/// A text none of whose words the model knows gets a warning on stderr:
/// its prediction is the model's prior alone.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model file.
    #[arg(long, value_name = "PATH")]
    pub model: PathBuf,
    /// Texts to classify; without any, one text per line is read from stdin.
    pub texts: Vec<String>,
}

pub fn run(cwd: &Path, args: PredictArgs) -> Result<ExitCode, CliError> {
    let path = cwd.join(&args.model);
    let model = Model::load(&path).map_err(|e| CliError {
        message: pipe::builtin::error_chain(&e).replace(&format!("{}/", cwd.display()), ""),
        hints: vec![
            "`pipe repro` writes the model with the `fit` stage; pass its path with --model".into(),
        ],
        code: 2,
    })?;
    let texts = if args.texts.is_empty() {
        read_stdin()?
    } else {
        args.texts
    };
    // Transformed once: the features tell which texts the model knows
    // nothing of, and give the probabilities.
    let features = model.vectorizer().transform(&texts);
    let proba = model
        .classifier()
        .predict_proba(&features)
        .expect("the vectorizer's columns are the classifier's features");
    let classes = model.classes();
    let mut out = String::new();
    for (i, text) in texts.iter().enumerate() {
        if features.row(i).0.is_empty() {
            eprintln!(
                "warning: no word of {} is in the model's vocabulary: its prediction is the model's prior alone",
                json!(text)
            );
        }
        let row = proba.row(i);
        let best = (0..row.len())
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .unwrap_or(0);
        // Written by hand to keep the documented key order.
        out.push_str(&format!(
            "{{\"text\":{},\"prediction\":{},\"prediction_score\":{}}}",
            json!(text),
            json!(class_name(classes, best)),
            json!((row[best] * 10000.0).round() / 100.0),
        ));
        out.push('\n');
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Binary models over classes {0, 1} speak of negative and positive; other
/// models name the class by its label.
fn class_name(classes: &[i64], index: usize) -> String {
    match (classes, index) {
        ([0, 1], 0) => "negative".into(),
        ([0, 1], 1) => "positive".into(),
        _ => classes
            .get(index)
            .map(ToString::to_string)
            .unwrap_or_default(),
    }
}

fn read_stdin() -> Result<Vec<String>, CliError> {
    let stdin = std::io::stdin().lock();
    let mut texts = Vec::new();
    for (n, line) in stdin.lines().enumerate() {
        let line = line.map_err(|e| CliError {
            message: format!("stdin line {}: {e}", n + 1),
            hints: vec!["input must be UTF-8 text, one text per line".into()],
            code: 2,
        })?;
        texts.push(line);
    }
    Ok(texts)
}
