//! Errors in the user's pipeline files, with their location.
//!
//! Every problem found while reading `pipeline.yaml` and `params.yaml`, or
//! while checking the graph they describe, becomes a [`Diagnostic`]: the file,
//! the line and column when known, the stage when there is one, what is wrong,
//! and a hint saying what to do. Checks collect all the diagnostics they find
//! so that the user fixes them in one pass; [`PipelineError`] carries the list.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub stage: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: file.into(),
            line: None,
            column: None,
            stage: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Diagnostic {
        let small = |n: Option<usize>| n.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        self.line = small(line);
        self.column = small(column);
        self
    }

    pub fn stage(mut self, stage: impl Into<String>) -> Diagnostic {
        self.stage = Some(stage.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(stage) = &self.stage {
            write!(f, "stage `{stage}`: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// One or more problems with the pipeline definition. Nothing has been run or
/// written when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError {
    pub diagnostics: Vec<Diagnostic>,
}

impl PipelineError {
    pub fn one(d: Diagnostic) -> PipelineError {
        PipelineError {
            diagnostics: vec![d],
        }
    }
}

impl From<Diagnostic> for PipelineError {
    fn from(d: Diagnostic) -> Self {
        PipelineError::one(d)
    }
}

impl fmt::Display for PipelineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PipelineError {}

/// The closest of `candidates` to `word`, if it is close enough to be a typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Close by edit distance (a typo) or by Jaro-Winkler (a shared prefix).
    let max_edits = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| {
            strsim::osa_distance(word, c) <= max_edits || strsim::jaro_winkler(word, c) > 0.85
        })
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_stage_and_hint() {
        let d = Diagnostic::new("pipeline.yaml", "unknown field `cmdd`")
            .at(Some(3), Some(5))
            .stage("train")
            .hint("did you mean `cmd`?");
        assert_eq!(
            d.to_string(),
            "pipeline.yaml:3:5: stage `train`: unknown field `cmdd`\n  hint: did you mean `cmd`?"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        let fields = ["cmd", "deps", "outs", "params", "always_changed"];
        assert_eq!(did_you_mean("cmdd", fields), Some("cmd"));
        assert_eq!(did_you_mean("dpes", fields), Some("deps"));
        assert_eq!(
            did_you_mean("always_change", fields),
            Some("always_changed")
        );
        assert_eq!(did_you_mean("zzzz", fields), None);
    }
}
