//! `pipe predict`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use pipe_stages::model::Model;

use super::{print, CliError};

/// Classify texts with a fitted model (as written by the `fit` stage), one
/// JSON line per text: {"text", "prediction", "prediction_score" (0–100)},
/// as `pipe serve` answers.
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
    // The prediction path of `pipe serve` too: the same answer, score and all.
    let predictions = model.predictions(&texts);
    let mut out = String::new();
    for (text, p) in texts.iter().zip(&predictions) {
        if p.known_terms == 0 {
            eprintln!(
                "warning: no word of {} is in the model's vocabulary: its prediction is the model's prior alone",
                json!(text)
            );
        }
        // Written by hand to keep the documented key order.
        out.push_str(&format!(
            "{{\"text\":{},\"prediction\":{},\"prediction_score\":{}}}",
            json!(text),
            json!(p.label),
            json!(p.score),
        ));
        out.push('\n');
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
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
