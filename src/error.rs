//! The engine's error type: one variant per module error, each carrying the
//! path, stage or line it is about. The binary maps them to exit codes (2 for
//! a problem with the pipeline definition or usage, 1 otherwise) and adds
//! hints.

use crate::cache::CacheError;
use crate::config::ConfigError;
use crate::git::GitError;
use crate::hash::HashError;
use crate::lock::LockError;
use crate::remote::source::SourceError;
use crate::remote::RemoteError;
use crate::spec::{Diagnostic, PipelineError};
use crate::track::DvcFileError;
use crate::workspace::WorkspaceError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    DvcFile(#[from] DvcFileError),
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A request that cannot be carried out as asked, with what to do.
    #[error("{message}")]
    Refused {
        message: String,
        hint: Option<String>,
    },
    #[error("{message}: {source}")]
    Io {
        message: String,
        source: std::io::Error,
    },
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error::Pipeline(d.into())
    }
}

impl Error {
    /// Maps an I/O error to [`Error::Io`] with `message` (`cannot write x`).
    pub fn io(message: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let message = message.into();
        move |source| Error::Io { message, source }
    }

    /// True for errors in what the user wrote (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::Pipeline(_)
                | Error::Config(_)
                | Error::Lock(
                    LockError::Parse { .. } | LockError::Schema { .. } | LockError::Truncated
                )
                | Error::Refused { .. }
                | Error::DvcFile(_)
                | Error::Source(SourceError::Bad { .. })
                | Error::Remote(RemoteError::Pick(_))
                | Error::Git(
                    GitError::NotARepo { .. }
                        | GitError::NoCommits { .. }
                        | GitError::UnknownRev { .. }
                        | GitError::NotACommit { .. }
                        | GitError::AmbiguousExperiment { .. }
                )
        )
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Lock(e) => e.hint().map(str::to_string),
            Error::Git(e) => e.hint(),
            Error::Refused { hint, .. } => hint.clone(),
            Error::Cache(e) => e.hint(),
            Error::Workspace(e) => e.hint(),
            Error::Remote(e) => e.hint(),
            Error::Source(e) => e.hint(),
            Error::DvcFile(_) => Some(
                "fix the file, or restore it from git (`git checkout FILE`); it is DVC's format: `outs:` entries with `md5`, `size` and `path`".into(),
            ),
            _ => None,
        }
    }
}
