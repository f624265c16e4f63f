//! Following a submitted job to its end: its state, its output, a stop
//! request, and the verdict in words.
//!
//! The job's state is looked at quickly at first (a short stage ends in
//! well under a second on an idle cluster), then less and less often, up to
//! [`super::ExecutorConfig::max_poll`]. Between looks, what the job has
//! written to its stdout and stderr files is passed on line by line as the
//! stage's output, so a long job's progress shows as it runs. A stop
//! request (Ctrl-C) cancels the job, and `pipe` waits until the scheduler
//! says it ended, so that nothing of it writes any more once the stage is
//! reported as interrupted.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::jobs::{read_exit, JobFiles};
use super::{Ending, JobState, Resources, Scheduler};
use crate::run::command::short;
use crate::run::{Event, Interrupt, JobPhase, Reporter, Stream};

/// A job being followed.
pub struct Follow<'a> {
    pub scheduler: &'a dyn Scheduler,
    pub stage: &'a str,
    pub job_id: &'a str,
    pub files: &'a JobFiles,
    /// The stage's commands (for saying which failed); empty for a
    /// built-in.
    pub commands: &'a [String],
    pub resources: &'a Resources,
    pub interrupt: &'a Interrupt,
    pub reporter: &'a dyn Reporter,
    pub max_poll: Duration,
}

/// How following ended.
#[derive(Debug)]
pub enum Followed {
    /// The job did the stage's work.
    Done,
    /// The job ended without doing it: why, in words.
    Failed(String),
    /// The scheduler could not be asked about the job: why; the job may
    /// live on (its record stays).
    Lost(String),
}

/// After this many failed looks in a row (a controller restarting), the
/// job counts as lost.
const TRIES: u32 = 10;

impl Follow<'_> {
    pub fn run(&self) -> Followed {
        let mut out = Tail::new(self.files.stdout.clone(), Stream::Stdout);
        let mut err = Tail::new(self.files.stderr.clone(), Stream::Stderr);
        let mut wait = Duration::from_millis(100);
        let mut cancelled = false;
        let mut failures = 0;
        let mut last: Option<JobState> = None;
        let mut over_memory = false;
        let ending = loop {
            if self.interrupt.requested().is_some() && !cancelled {
                cancelled = true;
                self.event(JobPhase::Cancelling);
                if let Err(e) = self.scheduler.cancel(self.job_id) {
                    self.warn(&format!("cannot cancel job {}: {e}", self.job_id));
                }
            }
            let state = match self.scheduler.state(self.job_id) {
                Ok(state) => {
                    failures = 0;
                    state
                }
                Err(e) => {
                    failures += 1;
                    if failures >= TRIES {
                        let _ = self.pump(&mut out, &mut err, true);
                        return Followed::Lost(format!(
                            "lost track of {} job {}: {e}",
                            self.scheduler.title(),
                            self.job_id
                        ));
                    }
                    last.clone().unwrap_or(JobState::Queued { reason: None })
                }
            };
            over_memory |= self.pump(&mut out, &mut err, false);
            if last.as_ref() != Some(&state) {
                match &state {
                    JobState::Queued { reason } => self.event(JobPhase::Queued {
                        reason: reason.as_deref(),
                    }),
                    JobState::Running => self.event(JobPhase::Running),
                    _ => {}
                }
            }
            match &state {
                JobState::Ended(ending) => break Some(ending.clone()),
                JobState::Unknown => break None,
                _ => {}
            }
            last = Some(state);
            self.sleep(wait, cancelled);
            wait = (wait.mul_f64(1.5)).min(self.max_poll);
        };
        over_memory |= self.pump(&mut out, &mut err, true);
        self.verdict(ending, cancelled, over_memory)
    }

    /// Sleeps `wait`, waking early for a stop request not yet acted on.
    fn sleep(&self, wait: Duration, cancelled: bool) {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if !cancelled && self.interrupt.requested().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50).min(wait));
        }
    }

    /// Passes on the new output lines; true when one is the scheduler
    /// saying it killed the job over its memory (see
    /// [`Scheduler::says_over_memory`]).
    fn pump(&self, out: &mut Tail, err: &mut Tail, end: bool) -> bool {
        let mut over_memory = false;
        for tail in [out, err] {
            tail.pump(end, |stream, line| {
                over_memory |= self.scheduler.says_over_memory(line);
                self.reporter.event(Event::Output {
                    stage: self.stage,
                    stream,
                    line,
                })
            });
        }
        over_memory
    }

    fn event(&self, phase: JobPhase<'_>) {
        self.reporter.event(Event::Job {
            stage: self.stage,
            scheduler: self.scheduler.title(),
            job: self.job_id,
            phase,
        });
    }

    fn warn(&self, message: &str) {
        self.reporter.event(Event::Warning {
            stage: self.stage,
            message,
        });
    }

    /// The job's end in words, from the scheduler's verdict and the exit
    /// file.
    fn verdict(&self, ending: Option<Ending>, cancelled: bool, over_memory: bool) -> Followed {
        let job = format!("{} job {}", self.scheduler.title(), self.job_id);
        let job = match job.strip_prefix("the scheduler ") {
            Some(rest) => rest.to_string(),
            None => job,
        };
        let exit = read_exit(self.files);
        let command_failed = |n: usize, code: i32| {
            match n {
            0 => format!("{job} could not enter the stage's directory (exit code {code}); is the project on a filesystem the nodes share?"),
            n => match self.commands.get(n - 1) {
                Some(cmd) => format!("`{}` exited with code {code} ({job})", short(cmd)),
                None => format!("the built-in stage failed ({job}, exit code {code})"),
            },
        }
        };
        let failed = |message: String| Followed::Failed(message);
        // Killed over its memory, whatever state the scheduler gives it
        // (`OverMemoryKill` ends it as FAILED with signal 9).
        let ending = match ending {
            Some(e) if over_memory && !cancelled && e != Ending::Completed => {
                Some(Ending::OutOfMemory)
            }
            e => e,
        };
        match (ending, exit) {
            (Some(Ending::Completed), Some((0, 0)) | None) | (None, Some((0, 0))) => Followed::Done,
            (Some(Ending::Cancelled), _) if cancelled => {
                failed(format!("{job} was cancelled: the run was interrupted"))
            }
            (Some(Ending::Cancelled), _) => failed(format!(
                "{job} was cancelled (scancel, an administrator or the scheduler)"
            )),
            (Some(Ending::TimeLimit), _) => failed(format!(
                "{job} hit its time limit{}\nHint: ask for more time with `resources: {{time: …}}` in the stage, or a default in [executor.resources] of pipe.toml",
                self.resources.time.as_ref().map(|t| format!(" (time: {t})")).unwrap_or_default()
            )),
            (Some(Ending::OutOfMemory), _) => failed(format!(
                "{job} ran out of memory{}\nHint: ask for more with `resources: {{mem: …}}` in the stage",
                self.resources.mem.as_ref().map(|m| format!(" (mem: {m})")).unwrap_or_default()
            )),
            (Some(Ending::NodeFailure), _) => failed(format!(
                "{job} failed: its node failed\nHint: nothing of the stage is recorded; `pipe repro` submits it again"
            )),
            (Some(Ending::Preempted), _) => failed(format!(
                "{job} was preempted by a job of higher priority\nHint: nothing of the stage is recorded; `pipe repro` submits it again"
            )),
            (Some(Ending::Other(what)), _) => failed(format!("{job} failed: {what}")),
            (_, Some((n, code))) if (n, code) != (0, 0) => failed(command_failed(n, code)),
            (Some(Ending::Failed { exit_code: Some(code) }), _) => {
                failed(format!("{job} failed with exit code {code}"))
            }
            (Some(Ending::Failed { .. }), _) => failed(format!("{job} failed")),
            (Some(Ending::Killed { signal }), _) => {
                failed(format!("{job} was killed by signal {signal}"))
            }
            (Some(Ending::Completed), _) | (None, _) => failed(format!(
                "{job} ended without finishing its script (the scheduler no longer knows it, and it left no exit file): it was killed, or its node failed"
            )),
        }
    }
}

/// Reads what a job appends to one of its output files, line by line.
struct Tail {
    path: PathBuf,
    stream: Stream,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf, stream: Stream) -> Tail {
        Tail {
            path,
            stream,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// Passes on each new complete line (and, at the `end`, the last one
    /// without its newline).
    fn pump(&mut self, end: bool, mut line: impl FnMut(Stream, &str)) {
        if let Ok(mut file) = std::fs::File::open(&self.path) {
            if file.seek(SeekFrom::Start(self.offset)).is_ok() {
                let mut buf = Vec::new();
                if let Ok(n) = file.read_to_end(&mut buf) {
                    self.offset += n as u64;
                    self.partial.extend_from_slice(&buf);
                }
            }
        }
        while let Some(nl) = self.partial.iter().position(|&b| b == b'\n') {
            let rest = self.partial.split_off(nl + 1);
            let text = String::from_utf8_lossy(&self.partial);
            line(self.stream, text.trim_end_matches(['\n', '\r']));
            self.partial = rest;
        }
        if end && !self.partial.is_empty() {
            let text = String::from_utf8_lossy(&self.partial).into_owned();
            self.partial.clear();
            line(self.stream, text.trim_end_matches('\r'));
        }
    }
}
