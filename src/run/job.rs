//! A stage's work as a job of a cluster scheduler (see [`crate::executor`]),
//! in place of the local commands of [`super::command`].
//!
//! The scheduler loop and the rest of a stage's life stay as they are:
//! the stage is decided on this machine (an up-to-date or restored stage
//! never reaches the cluster), its outputs are cleared before the job is
//! submitted, and they are hashed and cached here after the job ends. A
//! job recorded by an earlier run that was killed is followed instead of
//! submitting the stage again when it was submitted for the same
//! fingerprint, and cancelled when not.

use std::time::{SystemTime, UNIX_EPOCH};

use super::events::{Event, JobPhase, Reporter};
use super::ReproOptions;
use crate::cache::runs;
use crate::executor::follow::{Follow, Followed};
use crate::executor::jobs::{self, JobFiles, JobRecord};
use crate::executor::script::{self, ScriptSpec, Work};
use crate::executor::{self, JobState, Kind, Scheduler};
use crate::hash::Digest;
use crate::project::Project;
use crate::spec::{Action, Stage};

/// The executor that runs `stage`: its own `executor:`, else `--executor`,
/// else `[executor] kind` of `pipe.toml`.
pub fn executor_of(project: &Project, stage: &Stage, run: &ReproOptions) -> Kind {
    stage
        .executor
        .or(run.executor)
        .unwrap_or(project.config.executor.kind)
}

/// A job of an earlier run that is to be followed instead of submitting
/// the stage again.
pub struct Earlier {
    record: JobRecord,
    scheduler: Box<dyn Scheduler>,
}

/// The job an earlier, killed run left for `stage`: followed when it was
/// submitted for this `fingerprint`; otherwise cancelled (its inputs
/// changed since) and forgotten.
pub fn earlier_job(
    project: &Project,
    stage: &Stage,
    fingerprint: &Digest,
    reporter: &dyn Reporter,
) -> Option<Earlier> {
    let files = jobs::files(&project.cache_root(), &stage.name);
    let record = files.load()?;
    let warn = |message: String| {
        reporter.event(Event::Warning {
            stage: &stage.name,
            message: &message,
        })
    };
    let scheduler =
        match executor::scheduler(record.executor, &project.config.executor, &project.root) {
            Ok(Some(s)) => s,
            Ok(None) => {
                files.remove();
                return None;
            }
            Err(e) => {
                warn(format!(
                    "an earlier run left {} job {}, which pipe cannot follow or cancel: {e}",
                    record.executor, record.job_id
                ));
                files.remove();
                return None;
            }
        };
    if record.fingerprint == fingerprint.to_hex() && record.stage == stage.name {
        return Some(Earlier { record, scheduler });
    }
    let live = matches!(
        scheduler.state(&record.job_id),
        Ok(JobState::Queued { .. } | JobState::Running)
    );
    if live {
        match scheduler.cancel(&record.job_id) {
            Ok(()) => warn(format!(
                "cancelled {} job {} of an earlier run: the stage's inputs changed since it was submitted",
                scheduler.title(),
                record.job_id
            )),
            Err(e) => warn(format!(
                "cannot cancel {} job {} of an earlier run, submitted for other inputs: {e}",
                scheduler.title(),
                record.job_id
            )),
        }
    }
    files.remove();
    None
}

/// Follows the job of an earlier run to its end.
pub fn follow_earlier(
    project: &Project,
    stage: &Stage,
    earlier: Earlier,
    run: &ReproOptions,
    reporter: &dyn Reporter,
) -> Result<(), String> {
    let files = jobs::files(&project.cache_root(), &stage.name);
    reporter.event(Event::Job {
        stage: &stage.name,
        scheduler: earlier.scheduler.title(),
        job: &earlier.record.job_id,
        phase: JobPhase::Adopted,
    });
    follow(
        project,
        stage,
        &*earlier.scheduler,
        &earlier.record.job_id,
        &files,
        run,
        reporter,
    )
}

/// Submits the stage's work as a job and follows it to its end. The
/// outputs are cleared already.
pub fn run_job(
    project: &Project,
    stage: &Stage,
    kind: Kind,
    fingerprint: &Digest,
    run: &ReproOptions,
    held_claims: &str,
    reporter: &dyn Reporter,
) -> Result<(), String> {
    let config = &project.config.executor;
    let scheduler = match executor::scheduler(kind, config, &project.root) {
        Ok(Some(s)) => s,
        Ok(None) => unreachable!("the local executor runs no jobs"),
        Err(e) => return Err(with_hint(&e)),
    };
    if run.interrupt.requested().is_some() {
        return Err("not submitted: the run was interrupted".into());
    }
    let files = jobs::files(&project.cache_root(), &stage.name);
    let io = |e: std::io::Error| {
        with_hint(&executor::ExecutorError::Files {
            dir: jobs::dir(&project.cache_root()).display().to_string(),
            error: e.to_string(),
        })
    };
    std::fs::create_dir_all(jobs::dir(&project.cache_root())).map_err(io)?;
    files.clear_outputs().map_err(io)?;
    let pipe = match &run.supervisor {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| format!("cannot find the pipe binary: {e}"))?,
    };
    let (work, commands): (Work, &[String]) = match &stage.action {
        Action::Cmd(commands) => (Work::Commands(commands), commands),
        Action::Builtin { .. } => (Work::Builtin { pipe: &pipe }, &[]),
    };
    let wdir = stage.wdir.to_path(&project.root);
    let root = std::path::absolute(&project.root).unwrap_or_else(|_| project.root.clone());
    let text = script::script(&ScriptSpec {
        stage: &stage.name,
        root: &root,
        wdir: &wdir,
        work,
        env: &[(runs::HELD_CLAIMS_ENV, held_claims)],
        exit_file: &files.exit,
        redirect: scheduler
            .script_redirects()
            .then_some((files.stdout.as_path(), files.stderr.as_path())),
    });
    crate::atomic_write::write(&files.script, text.as_bytes(), true).map_err(io)?;
    let job = executor::Job {
        name: format!("pipe:{}", stage.name),
        stage: stage.name.clone(),
        script: files.script.clone(),
        stdout: files.stdout.clone(),
        stderr: files.stderr.clone(),
        cwd: root,
        resources: stage.resources.over(&config.resources),
    };
    for cmd in commands {
        reporter.event(Event::Command {
            stage: &stage.name,
            cmd,
        });
    }
    let id = scheduler.submit(&job).map_err(|e| with_hint(&e))?;
    let record = JobRecord {
        stage: stage.name.clone(),
        executor: kind,
        job_id: id.clone(),
        fingerprint: fingerprint.to_hex(),
        submitted: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    if let Err(e) = files.save(&record) {
        let _ = scheduler.cancel(&id);
        return Err(io(e));
    }
    reporter.event(Event::Job {
        stage: &stage.name,
        scheduler: scheduler.title(),
        job: &id,
        phase: JobPhase::Submitted,
    });
    follow(project, stage, &*scheduler, &id, &files, run, reporter)
}

fn follow(
    project: &Project,
    stage: &Stage,
    scheduler: &dyn Scheduler,
    id: &str,
    files: &JobFiles,
    run: &ReproOptions,
    reporter: &dyn Reporter,
) -> Result<(), String> {
    let config = &project.config.executor;
    let commands: &[String] = match &stage.action {
        Action::Cmd(commands) => commands,
        Action::Builtin { .. } => &[],
    };
    let resources = stage.resources.over(&config.resources);
    let followed = Follow {
        scheduler,
        stage: &stage.name,
        job_id: id,
        files,
        commands,
        resources: &resources,
        interrupt: &run.interrupt,
        reporter,
        max_poll: config.max_poll(),
    }
    .run();
    match followed {
        Followed::Done => {
            files.remove();
            Ok(())
        }
        Followed::Failed(message) => {
            files.remove();
            Err(message)
        }
        // The record stays: the next run looks for the job again.
        Followed::Lost(message) => Err(message),
    }
}

fn with_hint(e: &executor::ExecutorError) -> String {
    match e.hint() {
        Some(h) => format!("{e}\nHint: {h}"),
        None => e.to_string(),
    }
}

/// `pipe __builtin STAGE` in a job: runs the built-in stage `name` of the
/// project in `root`, with the params as they are now.
pub fn builtin_in_job(root: &std::path::Path, name: &str) -> Result<(), String> {
    let project = Project::load(root).map_err(|e| e.to_string())?;
    let stage = project
        .pipeline
        .stage(name)
        .ok_or_else(|| format!("no stage named `{name}` in the pipeline"))?;
    let mut files = crate::spec::params::ParamsFiles::new(&project.root);
    let mut params = crate::spec::params::ParamValues::new();
    for r in &stage.params {
        if let Some(value) = files.value(&r.file, &r.key).map_err(|d| d.to_string())? {
            params
                .entry(r.file.as_str().to_string())
                .or_default()
                .insert(r.key.clone(), value);
        }
    }
    match &stage.action {
        Action::Builtin { name: b, args, .. } => {
            super::stage::run_builtin(&project.root, stage, b, args, &params)
        }
        Action::Cmd(_) => Err(format!("stage `{name}` is not a built-in stage")),
    }
}

/// A job recorded for a stage, and what its scheduler says of it now.
pub struct RecordedJob {
    pub record: JobRecord,
    /// How messages name the scheduler (`Slurm`, `the scheduler`).
    pub scheduler: &'static str,
    pub state: Result<JobState, executor::ExecutorError>,
}

/// The jobs recorded in the project's job directory: those of a `pipe
/// repro` running now, or left by one that was killed.
pub fn recorded_jobs(project: &Project) -> Vec<RecordedJob> {
    jobs::all(&project.cache_root())
        .into_iter()
        .filter_map(|record| {
            let scheduler =
                executor::scheduler(record.executor, &project.config.executor, &project.root);
            match scheduler {
                Ok(Some(s)) => Some(RecordedJob {
                    state: s.state(&record.job_id),
                    scheduler: s.title(),
                    record,
                }),
                Ok(None) => None,
                Err(e) => Some(RecordedJob {
                    record,
                    scheduler: "the scheduler",
                    state: Err(e),
                }),
            }
        })
        .collect()
}
