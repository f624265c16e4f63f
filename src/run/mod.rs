//! `pipe repro`: the scheduler.
//!
//! The main thread owns the plan and `pipeline.lock`; worker threads (at most
//! `jobs` at a time) each take one stage whose upstream stages are done and
//! carry it through: observe (hash deps and outputs), decide (fresh, restore,
//! run), then restore from the run cache or run the command and commit the
//! outputs to the cache. The worker hands back a new lock entry, and the main
//! thread writes `pipeline.lock` atomically right away, so a crash at any
//! point loses at most the stages that were still running.
//!
//! Deciding a stage after its upstream stages have finished, with the real
//! content of their outputs, gives early cut-off: an upstream rerun that
//! produces the same bytes leaves the downstream stages up to date.
//!
//! A failed stage marks everything downstream of it as skipped. Without
//! `keep_going` no new stage starts after a failure; running ones finish.

pub mod command;
pub mod events;
pub mod interrupt;
mod job;
pub mod kept;
pub mod leftovers;
mod lock_guard;
mod stage;
pub mod supervisor;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use events::{Event, JobPhase, Outcome, Reporter, Silent, Stream};
pub use interrupt::Interrupt;
pub use job::{builtin_in_job, recorded_jobs, RecordedJob};
pub use lock_guard::ReproLock;
pub(crate) use stage::{run_builtin, with_hint};

use crate::error::Error;
use crate::gitignore::{GitIgnorer, Ignored};
use crate::graph::Selection;
use crate::hash::Hasher;
use crate::lock::LockFile;
use crate::plan::DecideOptions;
use crate::project::Project;
use crate::spec::{Diagnostic, PipelineError};

#[derive(Debug, Clone)]
pub struct ReproOptions {
    pub targets: Vec<String>,
    pub selection: Selection,
    pub force: bool,
    pub keep_going: bool,
    pub jobs: usize,
    pub use_run_cache: bool,
    /// Tag for the stage processes (see [`leftovers`]).
    pub run_id: String,
    /// The `pipe` binary, to run commands under its supervisor (see
    /// [`supervisor`]); `None` runs `sh` directly.
    pub supervisor: Option<std::path::PathBuf>,
    /// `--pull`: a stale stage whose fingerprint this remote's run cache
    /// holds is downloaded and restored instead of run.
    pub pull: Option<std::sync::Arc<crate::remote::Remote>>,
    /// Set by the caller to stop the run (see [`interrupt`]).
    pub interrupt: Interrupt,
    /// `--executor`: where the stages that do not name an executor of
    /// their own run (`None`: `[executor] kind` of `pipe.toml`; see
    /// [`crate::executor`]).
    pub executor: Option<crate::executor::Kind>,
}

impl Default for ReproOptions {
    fn default() -> Self {
        ReproOptions {
            targets: Vec::new(),
            selection: Selection::WithUpstream,
            force: false,
            keep_going: false,
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            use_run_cache: true,
            run_id: String::new(),
            supervisor: None,
            pull: None,
            interrupt: Interrupt::new(),
            executor: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    pub stage: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub stages: Vec<StageReport>,
    pub seconds: f64,
    /// The `.gitignore` files this run added outputs to (see
    /// [`crate::gitignore`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gitignores: Vec<crate::paths::RelPath>,
    /// The run was stopped by [`ReproOptions::interrupt`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

use serde::Serialize;

impl Summary {
    pub fn count(&self, label: &str) -> usize {
        self.stages
            .iter()
            .filter(|s| s.outcome.label() == label)
            .count()
    }

    pub fn failed(&self) -> bool {
        self.stages
            .iter()
            .any(|s| matches!(s.outcome, Outcome::Failed(_)))
    }
}

/// The stages a repro would act on, checked for deps that nothing provides.
pub fn select(project: &Project, opts: &ReproOptions) -> Result<Vec<usize>, Error> {
    let selected = project
        .dag
        .select(&project.pipeline, &opts.targets, opts.selection)?;
    let chosen: BTreeSet<usize> = selected.iter().copied().collect();
    let mut diags: Vec<Diagnostic> = Vec::new();
    for &i in &selected {
        let stage = &project.pipeline.stages[i];
        if stage.frozen {
            continue;
        }
        for dep in &stage.deps {
            if dep.to_path(&project.root).exists() {
                continue;
            }
            let producer = project
                .pipeline
                .stages
                .iter()
                .enumerate()
                .find(|(_, s)| s.outs.iter().any(|o| o.path.overlaps(dep)));
            match producer {
                None => diags.push(
                    project
                        .pipeline
                        .diagnostic_at(&stage.name, dep.as_str(), format!("dep `{dep}` does not exist and no stage produces it"))
                        .hint(format!("create {dep}, fix the path, or add a stage with `{dep}` in its outs")),
                ),
                Some((p, s)) if !chosen.contains(&p) => diags.push(
                    project
                        .pipeline
                        .diagnostic_at(&stage.name, dep.as_str(), format!("dep `{dep}` does not exist; stage `{}` produces it but is not selected", s.name))
                        .hint(format!("run `pipe repro {}` first, or drop -s/--single-item", s.name)),
                ),
                Some(_) => {}
            }
        }
    }
    if diags.is_empty() {
        Ok(selected)
    } else {
        Err(PipelineError { diagnostics: diags }.into())
    }
}

/// Reproduces the selected stages. The caller holds the [`ReproLock`].
pub fn repro(
    project: &Project,
    opts: &ReproOptions,
    reporter: &dyn Reporter,
) -> Result<Summary, Error> {
    let started = Instant::now();
    let selected = select(project, opts)?;
    // Staging areas of runs that were killed (or hit a full disk).
    project.cache.clean_staging();
    let mut lock = LockFile::read(&project.root)?;
    // Entries of stages that are gone from pipeline.yaml go, so that the
    // same pipeline and results always give the same lock.
    let recorded = lock.stages.len();
    lock.stages
        .retain(|n, _| project.pipeline.stage(n).is_some());
    if lock.stages.len() != recorded {
        lock.write(&project.root)?;
    }
    let hasher = project.hasher();
    let names: Vec<String> = selected
        .iter()
        .map(|&i| project.pipeline.stages[i].name.clone())
        .collect();
    reporter.event(Event::Planned { stages: &names });

    let decide = DecideOptions {
        force: opts.force,
        use_run_cache: opts.use_run_cache,
    };
    let chosen: BTreeSet<usize> = selected.iter().copied().collect();
    let position: BTreeMap<usize, usize> = selected
        .iter()
        .enumerate()
        .map(|(pos, &i)| (i, pos))
        .collect();
    let mut waiting: BTreeMap<usize, usize> = selected
        .iter()
        .map(|&i| {
            (
                i,
                project
                    .dag
                    .parents(i)
                    .into_iter()
                    .filter(|p| chosen.contains(p))
                    .count(),
            )
        })
        .collect();
    // Ready stages, keyed by topological position so that runs are stable.
    let mut ready: BTreeSet<(usize, usize)> = waiting
        .iter()
        .filter(|(_, &n)| n == 0)
        .map(|(&i, _)| (position[&i], i))
        .collect();
    let mut outcomes: BTreeMap<usize, (Outcome, Duration)> = BTreeMap::new();
    let mut stopping = false;
    let mut fatal: Option<Error> = None;
    let snapshot = lock.clone();
    let jobs = opts.jobs.max(1);
    let mut ignorer = GitIgnorer::new(&project.root);

    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Duration, Result<stage::Done, Error>)>();
        let mut running = 0usize;
        loop {
            // A stop request: stages running now finish (their commands
            // get the signal); none starts.
            stopping |= opts.interrupt.requested().is_some();
            while running < jobs && !stopping {
                let Some((_, i)) = ready.pop_first() else {
                    break;
                };
                let tx = tx.clone();
                let (hasher, snapshot): (&Hasher, &LockFile) = (&hasher, &snapshot);
                running += 1;
                scope.spawn(move || {
                    let t = Instant::now();
                    let stage = &project.pipeline.stages[i];
                    let result = stage::process(
                        project,
                        stage,
                        snapshot.stages.get(&stage.name),
                        hasher,
                        decide,
                        opts,
                        reporter,
                    );
                    let _ = tx.send((i, t.elapsed(), result));
                });
            }
            if running == 0 {
                break;
            }
            let (i, elapsed, result) = rx.recv().expect("a worker always reports");
            running -= 1;
            let name = &project.pipeline.stages[i].name;
            let outcome = match result {
                Err(e) => {
                    // An engine error (cache, hashing): stop everything.
                    let outcome = Outcome::Failed(e.to_string());
                    fatal.get_or_insert(e);
                    stopping = true;
                    outcome
                }
                Ok(done) => {
                    if let Some(entry) = done.lock_entry {
                        lock.stages.insert(name.clone(), entry);
                        if let Err(e) = lock.write(&project.root) {
                            fatal.get_or_insert(e.into());
                            stopping = true;
                        }
                        ignore_outputs(
                            project,
                            &project.pipeline.stages[i],
                            &mut ignorer,
                            reporter,
                        );
                    }
                    match done.outcome {
                        Outcome::Failed(_) if opts.interrupt.requested().is_some() => {
                            Outcome::Interrupted
                        }
                        outcome => outcome,
                    }
                }
            };
            reporter.event(Event::Finished {
                stage: name,
                outcome: &outcome,
                elapsed,
            });
            let failed = matches!(outcome, Outcome::Failed(_));
            outcomes.insert(i, (outcome, elapsed));
            if failed {
                if !opts.keep_going {
                    stopping = true;
                }
                skip_downstream(project, i, &chosen, &mut outcomes, reporter);
            }
            for c in project.dag.children(i) {
                if let Some(n) = waiting.get_mut(&c) {
                    *n -= 1;
                    if *n == 0 && !outcomes.contains_key(&c) {
                        ready.insert((position[&c], c));
                    }
                }
            }
        }
    });

    // The stat cache and the verified-objects index are only caches:
    // losing them costs time, not data.
    let _ = hasher.save();
    project.cache.save_verified();
    if let Some(e) = fatal {
        return Err(e);
    }
    let mut summary = Summary {
        stages: Vec::new(),
        seconds: started.elapsed().as_secs_f64(),
        gitignores: ignorer.written(),
        interrupted: opts.interrupt.requested().is_some(),
    };
    let not_started = if summary.interrupted {
        "not started: the run was interrupted"
    } else {
        "not started: the run stopped after a failure"
    };
    for &i in &selected {
        let name = project.pipeline.stages[i].name.clone();
        let (outcome, elapsed) = outcomes.remove(&i).unwrap_or_else(|| {
            let outcome = Outcome::Skipped(not_started.into());
            reporter.event(Event::Finished {
                stage: &name,
                outcome: &outcome,
                elapsed: Duration::ZERO,
            });
            (outcome, Duration::ZERO)
        });
        summary.stages.push(StageReport {
            stage: name,
            outcome,
            seconds: elapsed.as_secs_f64(),
        });
    }
    Ok(summary)
}

/// Keeps the recorded stage's cached outputs out of git (see
/// [`crate::gitignore`]); what cannot be done is a warning, not a failure:
/// the result is recorded already.
pub fn ignore_outputs(
    project: &Project,
    stage: &crate::spec::Stage,
    ignorer: &mut GitIgnorer,
    reporter: &dyn Reporter,
) {
    for out in &stage.outs {
        let message = match ignorer.ignore(&project.workspace, out) {
            Ok(Ignored::Added { .. } | Ignored::Nothing) => continue,
            Ok(Ignored::Tracked) => format!(
                "output {0} is tracked by git as well as cached by pipe; to leave it to the cache: git rm -r --cached {0}",
                out.path
            ),
            Err(e) => format!("cannot keep output {} out of git: {e}", out.path),
        };
        reporter.event(Event::Warning {
            stage: &stage.name,
            message: &message,
        });
    }
}

fn skip_downstream(
    project: &Project,
    failed: usize,
    chosen: &BTreeSet<usize>,
    outcomes: &mut BTreeMap<usize, (Outcome, Duration)>,
    reporter: &dyn Reporter,
) {
    let name = &project.pipeline.stages[failed].name;
    let mut below = BTreeSet::new();
    let mut stack = project.dag.children(failed);
    while let Some(c) = stack.pop() {
        if chosen.contains(&c) && !outcomes.contains_key(&c) && below.insert(c) {
            stack.extend(project.dag.children(c));
        }
    }
    // Report them in pipeline order.
    for &c in project.dag.order().iter().filter(|c| below.contains(c)) {
        let outcome = Outcome::Skipped(format!("upstream stage {name} failed"));
        reporter.event(Event::Finished {
            stage: &project.pipeline.stages[c].name,
            outcome: &outcome,
            elapsed: Duration::ZERO,
        });
        outcomes.insert(c, (outcome, Duration::ZERO));
    }
}
