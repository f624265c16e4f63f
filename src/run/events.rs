//! What `repro` tells its caller while it works.
//!
//! The engine does not print. It sends [`Event`]s to a [`Reporter`], which
//! the CLI implements with progress bars and prefixed output lines and tests
//! implement by collecting them.

use std::time::Duration;

use serde::Serialize;

use crate::fingerprint::StaleReason;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How one stage ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum Outcome {
    UpToDate,
    Frozen,
    Restored,
    Ran,
    Failed(String),
    /// Stopped by a request to stop the run (Ctrl-C): nothing recorded.
    Interrupted,
    /// Not attempted: an upstream stage failed, or the run stopped early.
    Skipped(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::UpToDate => "up to date",
            Outcome::Frozen => "frozen",
            Outcome::Restored => "restored",
            Outcome::Ran => "ran",
            Outcome::Failed(_) => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Skipped(_) => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// Another `pipe repro` holds the project; this one waits for it.
    WaitingForLock { holder: Option<String> },
    /// Another process sharing the cache is running this stage on the same
    /// inputs (a parallel experiment); this one waits to reuse its outputs.
    WaitingForRun { stage: &'a str },
    /// The stages this run will consider, in order.
    Planned { stages: &'a [String] },
    /// A stage starts running (or restoring) for these reasons.
    Started {
        stage: &'a str,
        restoring: bool,
        reasons: &'a [StaleReason],
    },
    /// A command of a `cmd` stage is about to start (as DVC prints
    /// `> python train.py`).
    Command { stage: &'a str, cmd: &'a str },
    /// A line a running stage printed.
    Output {
        stage: &'a str,
        stream: Stream,
        line: &'a str,
    },
    /// A stage's outputs were found in a remote's run cache and downloaded.
    Pulled { stage: &'a str, remote: &'a str },
    /// A stage's job in a cluster scheduler (see [`crate::executor`]).
    Job {
        stage: &'a str,
        /// How messages name the scheduler: `Slurm`, `the scheduler`.
        scheduler: &'a str,
        job: &'a str,
        phase: JobPhase<'a>,
    },
    /// Something the user should know about a stage that does not fail it
    /// (a damaged cache object was set aside and the stage runs instead).
    Warning { stage: &'a str, message: &'a str },
    Finished {
        stage: &'a str,
        outcome: &'a Outcome,
        elapsed: Duration,
    },
}

/// What happened to a stage's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPhase<'a> {
    /// Submitted by this run.
    Submitted,
    /// Submitted by an earlier run that was killed, and followed by this
    /// one instead of submitting the stage again.
    Adopted,
    /// Waiting in the queue (for the scheduler's `reason`).
    Queued {
        reason: Option<&'a str>,
    },
    Running,
    /// The run was interrupted: the job is being cancelled.
    Cancelling,
}

pub trait Reporter: Sync {
    fn event(&self, event: Event<'_>);
}

/// A reporter that drops everything.
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: Event<'_>) {}
}
