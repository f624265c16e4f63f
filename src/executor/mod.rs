//! Where a stage's work runs: on this machine, or as a job of a cluster
//! scheduler.
//!
//! `pipe` keeps deciding what is stale and in which order (see
//! [`crate::run`]); an executor only runs the work of one stage that must
//! run. The local executor is [`crate::run`]'s own child processes. A
//! cluster executor hands the stage to a batch scheduler as one job:
//!
//! 1. [`script`] writes a job script into the project's job directory
//!    (`.pipeline-cache/v1/jobs/`): it `cd`s to the stage's `wdir`, runs the
//!    commands one after the other as `sh -c` would locally (a built-in
//!    stage runs `pipe` itself, `pipe __builtin STAGE`), and writes which
//!    command ended how into an exit file;
//! 2. a [`Scheduler`] submits it ([`slurm`]: `sbatch --parsable` with the
//!    stage's [`Resources`] as options; [`generic`]: the user's `submit`
//!    template) and [`jobs`] records the job id before anything else
//!    happens, so that a `pipe` killed with `kill -9` leaves a job the next
//!    run follows instead of submitting the stage twice;
//! 3. [`follow`] polls the job's state, streams what it writes to its
//!    stdout and stderr files as the stage's output lines, cancels it when
//!    the run is interrupted, and turns the scheduler's verdict into words
//!    (exit code N, out of memory, time limit, cancelled, node failure).
//!
//! By default the project is on a filesystem the nodes share (as on every
//! HPC cluster): the job writes the outputs in place, and `pipe` hashes and
//! caches them after the job ends, exactly as after a local run. With
//! `files = "remote"`, nodes that share nothing with the project but the
//! remote get the stage's inputs from it and leave the outputs on it
//! ([`staged`]).
//!
//! Resources never enter the fingerprint (the same stage on another node is
//! the same result), nor does the executor.

pub mod follow;
pub mod generic;
pub mod jobs;
pub mod script;
pub mod slurm;
pub mod staged;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which executor runs a stage's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Child processes of `pipe` on this machine.
    #[default]
    Local,
    /// Jobs of a Slurm cluster (`sbatch`, `squeue`/`scontrol`, `scancel`).
    Slurm,
    /// Jobs of any scheduler, through the `submit`, `status` and `cancel`
    /// templates of `[executor.generic]`.
    Generic,
}

impl Kind {
    pub const NAMES: &'static [&'static str] = &["local", "slurm", "generic"];

    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "local" => Some(Kind::Local),
            "slurm" => Some(Kind::Slurm),
            "generic" => Some(Kind::Generic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Slurm => "slurm",
            Kind::Generic => "generic",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a stage asks of the node that runs it (`resources:` in a stage,
/// defaults in `[executor.resources]`). Only cluster executors read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPUs for the job (`sbatch --cpus-per-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory, as the scheduler writes it: `8G`, `500M` (`sbatch --mem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// Wall-clock limit: `01:00:00`, `30` (minutes), `1-00:00:00`
    /// (`sbatch --time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// GPUs (`sbatch --gpus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// Partition (queue) (`sbatch --partition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Further scheduler options, passed as they are (`--account=ml`,
    /// `--qos=long`); a stage's come after the defaults'.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<String>,
}

impl Resources {
    /// These resources, with what they leave unsaid taken from `defaults`.
    pub fn over(&self, defaults: &Resources) -> Resources {
        Resources {
            cpus: self.cpus.or(defaults.cpus),
            mem: self.mem.clone().or_else(|| defaults.mem.clone()),
            time: self.time.clone().or_else(|| defaults.time.clone()),
            gpus: self.gpus.or(defaults.gpus),
            partition: self
                .partition
                .clone()
                .or_else(|| defaults.partition.clone()),
            extra_args: defaults
                .extra_args
                .iter()
                .chain(&self.extra_args)
                .cloned()
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}

/// `[executor]` in `pipe.toml`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    /// The executor of stages that do not name one (`--executor` overrides
    /// it).
    #[serde(default)]
    pub kind: Kind,
    /// How many stages a cluster executor keeps in the queue at once when
    /// `-j` is not given.
    #[serde(default)]
    pub jobs: Option<usize>,
    /// The longest wait between two looks at a job's state, in seconds
    /// (the first looks come quicker).
    #[serde(default)]
    pub poll_interval: Option<f64>,
    /// Default resources of every stage.
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub generic: Option<generic::Templates>,
    /// Where a job finds the stage's files: on a filesystem the nodes share
    /// (the default), or through the remote (see [`staged`]).
    #[serde(default)]
    pub files: Files,
    /// The remote of `files = "remote"` (default: the default remote).
    #[serde(default)]
    pub remote: Option<String>,
    /// The `pipe` binary as the nodes see it (default: the one running).
    #[serde(default)]
    pub pipe: Option<std::path::PathBuf>,
}

/// Where a cluster job finds the stage's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Files {
    /// The project is on a filesystem the nodes share: the job works in
    /// place.
    #[default]
    Shared,
    /// The nodes share nothing with this machine but the remote: the job
    /// downloads the stage's inputs into a scratch directory and uploads
    /// its outputs (see [`staged`]).
    Remote,
}

impl ExecutorConfig {
    /// How many jobs are in the queue at once by default.
    pub const DEFAULT_JOBS: usize = 100;

    pub fn max_poll(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval.unwrap_or(2.0).clamp(0.05, 600.0))
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for resources (or held); `reason` as the scheduler says it.
    Queued {
        reason: Option<String>,
    },
    Running,
    /// Ended (the scheduler's word for how).
    Ended(Ending),
    /// The scheduler no longer knows the job (it ended long ago, and its
    /// record was purged): the job's exit file tells how it ended.
    Unknown,
}

/// How a job ended, as the scheduler says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Completed,
    /// Its script exited non-zero (`exit_code` when the scheduler says it).
    Failed {
        exit_code: Option<i32>,
    },
    /// Its script was killed by this signal (Slurm's `ExitCode=0:9`).
    Killed {
        signal: i32,
    },
    OutOfMemory,
    TimeLimit,
    Cancelled,
    NodeFailure,
    Preempted,
    /// Anything else, in the scheduler's words.
    Other(String),
}

/// Something a scheduler's command line tool could not do.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ExecutorError {
    #[error("cannot run `{program}`: {error}")]
    Spawn { program: String, error: String },
    #[error("`{command}` failed: {said}")]
    Command { command: String, said: String },
    #[error("`{command}` printed no job id (it printed: {said})")]
    NoJobId { command: String, said: String },
    #[error("cannot write the job files in {dir}: {error}")]
    Files { dir: String, error: String },
    #[error("the generic executor needs `{field}` in [executor.generic] of pipe.toml")]
    NotConfigured { field: &'static str },
}

impl ExecutorError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ExecutorError::Spawn { program, .. } => Some(format!(
                "is {program} installed and on PATH? Run stages locally with `--executor local`"
            )),
            ExecutorError::NotConfigured { .. } => Some(
                "set submit, status and cancel templates, e.g. submit = \"qsub {script}\"; see the README".into(),
            ),
            _ => None,
        }
    }
}

/// A job to submit: its script and where its output goes.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name in the queue (`pipe:STAGE`).
    pub name: String,
    pub stage: String,
    pub script: std::path::PathBuf,
    pub stdout: std::path::PathBuf,
    pub stderr: std::path::PathBuf,
    /// The directory the job starts in (the project root).
    pub cwd: std::path::PathBuf,
    pub resources: Resources,
    /// A random word that tells this submission from any other, given to
    /// the scheduler where it keeps one (Slurm: `--comment=pipe:TOKEN`), so
    /// a job submitted by a `pipe` killed before it recorded the job id is
    /// found again (see [`Scheduler::find`]).
    pub token: String,
    /// Variables for the submitting command, which the scheduler passes on
    /// to the job (a remote's secrets, see [`staged::secret_env`]).
    pub env: Vec<(String, String)>,
}

/// A batch scheduler: submits jobs, tells their state, cancels them.
pub trait Scheduler: Send + Sync {
    /// How messages name it: `Slurm`, `the scheduler`.
    fn title(&self) -> &'static str;
    fn kind(&self) -> Kind;
    /// Whether the job's script must send its own output to the job's
    /// stdout and stderr files (the scheduler does not).
    fn script_redirects(&self) -> bool;
    /// Submits the job; returns its id.
    fn submit(&self, job: &Job) -> Result<String, ExecutorError>;
    fn state(&self, id: &str) -> Result<JobState, ExecutorError>;
    /// The states of several jobs at once (one call to the scheduler where
    /// it can); jobs it does not list are [`JobState::Unknown`].
    fn states(&self, ids: &[String]) -> Result<BTreeMap<String, JobState>, ExecutorError> {
        ids.iter()
            .map(|id| Ok((id.clone(), self.state(id)?)))
            .collect()
    }
    fn cancel(&self, id: &str) -> Result<(), ExecutorError>;
    /// The id of the job named `name` that was submitted with `token`, if
    /// the scheduler still knows it; `None` also where the scheduler
    /// cannot be asked (the generic executor).
    fn find(&self, _name: &str, _token: &str) -> Result<Option<String>, ExecutorError> {
        Ok(None)
    }
    /// Whether `line`, written into a job's output, is the scheduler
    /// saying that it killed the job over its memory (whatever state it
    /// then gives the job).
    fn says_over_memory(&self, _line: &str) -> bool {
        false
    }
    /// Whether [`Scheduler::find`] can find anything.
    fn can_find(&self) -> bool {
        false
    }
}

/// The scheduler of a cluster executor; `None` for the local one.
/// The generic executor's templates run in `root` (the project root).
pub fn scheduler(
    kind: Kind,
    config: &ExecutorConfig,
    root: &std::path::Path,
) -> Result<Option<Box<dyn Scheduler>>, ExecutorError> {
    Ok(match kind {
        Kind::Local => None,
        Kind::Slurm => Some(Box::new(slurm::Slurm)),
        Kind::Generic => {
            let templates = config.generic.clone().unwrap_or_default();
            templates.check()?;
            Some(Box::new(generic::Generic {
                templates,
                root: root.to_path_buf(),
            }))
        }
    })
}

/// Runs `program args…` and returns its stdout, or its words on failure.
pub(crate) fn run_tool(program: &str, args: &[String]) -> Result<String, ExecutorError> {
    run_tool_env(program, args, &[])
}

/// [`run_tool`] with `env` added to the tool's environment.
pub(crate) fn run_tool_env(
    program: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<String, ExecutorError> {
    let out = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| ExecutorError::Spawn {
            program: program.to_string(),
            error: e.to_string(),
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(ExecutorError::Command {
        command: std::iter::once(program)
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        said: said(&stderr, &stdout, out.status),
    })
}

/// What a failed tool said: its stderr (or stdout), or its exit status.
pub(crate) fn said(stderr: &str, stdout: &str, status: std::process::ExitStatus) -> String {
    let text = if stderr.trim().is_empty() {
        stdout.trim()
    } else {
        stderr.trim()
    };
    if text.is_empty() {
        status.to_string()
    } else {
        text.lines().collect::<Vec<_>>().join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_s_resources_override_the_defaults_and_add_extra_args() {
        let defaults = Resources {
            cpus: Some(1),
            mem: Some("1G".into()),
            partition: Some("cpu".into()),
            extra_args: vec!["--account=ml".into()],
            ..Resources::default()
        };
        let stage = Resources {
            cpus: Some(4),
            gpus: Some(1),
            extra_args: vec!["--qos=long".into()],
            ..Resources::default()
        };
        assert_eq!(
            stage.over(&defaults),
            Resources {
                cpus: Some(4),
                mem: Some("1G".into()),
                time: None,
                gpus: Some(1),
                partition: Some("cpu".into()),
                extra_args: vec!["--account=ml".into(), "--qos=long".into()],
            }
        );
    }

    #[test]
    fn reads_the_executor_section() {
        let config: ExecutorConfig = toml::from_str(
            "kind = \"slurm\"\njobs = 8\n[resources]\nmem = \"2G\"\ntime = \"00:10:00\"\n",
        )
        .unwrap();
        assert_eq!(config.kind, Kind::Slurm);
        assert_eq!(config.jobs, Some(8));
        assert_eq!(config.resources.mem.as_deref(), Some("2G"));
        let err = toml::from_str::<ExecutorConfig>("kind = \"pbs\"\n").unwrap_err();
        assert!(err.to_string().contains("local"), "{err}");
    }
}
