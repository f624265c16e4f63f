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
use crate::executor::staged::{self, Brought};
use crate::executor::{self, Files, JobState, Kind, Scheduler};
use crate::hash::Digest;
use crate::lock::PathRecord;
use crate::project::Project;
use crate::remote::Remote;
use crate::spec::params::ParamValues;
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
/// changed since) and forgotten. An error when the scheduler cannot say
/// whether a job whose id was never recorded exists (the stage must not be
/// submitted twice).
pub fn earlier_job(
    project: &Project,
    stage: &Stage,
    fingerprint: &Digest,
    reporter: &dyn Reporter,
) -> Result<Option<Earlier>, String> {
    let files = jobs::files(&project.cache_root(), &stage.name);
    let Some(mut record) = files.load() else {
        return Ok(None);
    };
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
                return Ok(None);
            }
            Err(e) => {
                warn(format!(
                    "an earlier run left {} job {}, which pipe cannot follow or cancel: {e}",
                    record.executor, record.job_id
                ));
                files.remove();
                return Ok(None);
            }
        };
    // Killed between writing the record and learning the job id: the
    // scheduler is asked for the job by its token.
    if record.job_id.is_empty() {
        match scheduler.find(&format!("pipe:{}", stage.name), &record.token) {
            Ok(Some(id)) => {
                record.job_id = id;
                let _ = files.save(&record);
            }
            Ok(None) => {
                if !scheduler.can_find() {
                    warn(format!(
                        "an earlier run was killed while it submitted this stage to {}; if that job is in the queue, cancel it",
                        scheduler.title()
                    ));
                }
                files.remove();
                return Ok(None);
            }
            // Not knowing is not "not there": the record stays, and the
            // stage is not submitted a second time.
            Err(e) => {
                return Err(format!(
                    "an earlier run was killed while it submitted this stage, and {} cannot be asked whether the job exists: {e}\nHint: run again once `squeue` answers; if the job is not in the queue, remove {}",
                    scheduler.title(),
                    files.record.display()
                ));
            }
        }
    }
    if record.fingerprint == fingerprint.to_hex() && record.stage == stage.name {
        return Ok(Some(Earlier { record, scheduler }));
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
    Ok(None)
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
    let remote = match &earlier.record.staged_remote {
        Some(name) => Some((
            staging_remote(project, Some(name))?.0,
            earlier.record.token.clone(),
        )),
        None => None,
    };
    follow(
        project,
        stage,
        &*earlier.scheduler,
        &earlier.record.job_id,
        &files,
        remote.as_ref().map(|(r, t)| (r, t.as_str())),
        run,
        reporter,
    )
}

/// Submits the stage's work as a job and follows it to its end. The
/// outputs are cleared already.
pub(super) fn run_job(
    project: &Project,
    stage: &Stage,
    kind: Kind,
    work: &super::stage::Work,
    params: &ParamValues,
    run: &ReproOptions,
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
    let pipe = match (&config.pipe, &run.supervisor) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => {
            std::env::current_exe().map_err(|e| format!("cannot find the pipe binary: {e}"))?
        }
    };
    let commands: &[String] = match &stage.action {
        Action::Cmd(commands) => commands,
        Action::Builtin { .. } => &[],
    };
    let wdir = stage.wdir.to_path(&project.root);
    let root = std::path::absolute(&project.root).unwrap_or_else(|_| project.root.clone());
    // With `files = "remote"`, the inputs go to the remote first, and the
    // job works in a scratch directory of its node.
    let staged = match config.files {
        Files::Shared => None,
        Files::Remote => Some(stage_inputs(project, stage, work, params, run)?),
    };
    let spec_json = staged
        .as_ref()
        .map(|s| serde_json::to_string(&s.spec).expect("a spec serializes"));
    let (script_work, stdout, stderr) = match (&stage.action, &spec_json) {
        (_, Some(spec)) => {
            let null = std::path::PathBuf::from("/dev/null");
            (Work::Staged { pipe: &pipe, spec }, null.clone(), null)
        }
        (Action::Cmd(commands), None) => (
            Work::Commands(commands),
            files.stdout.clone(),
            files.stderr.clone(),
        ),
        (Action::Builtin { .. }, None) => (
            Work::Builtin { pipe: &pipe },
            files.stdout.clone(),
            files.stderr.clone(),
        ),
    };
    let text = script::script(&ScriptSpec {
        stage: &stage.name,
        root: &root,
        wdir: &wdir,
        work: script_work,
        env: &[(runs::HELD_CLAIMS_ENV, work.held_claims)],
        exit_file: &files.exit,
        redirect: scheduler
            .script_redirects()
            .then_some((stdout.as_path(), stderr.as_path())),
    });
    crate::atomic_write::write(&files.script, text.as_bytes(), true).map_err(io)?;
    let job = executor::Job {
        name: format!("pipe:{}", stage.name),
        stage: stage.name.clone(),
        script: files.script.clone(),
        stdout,
        stderr,
        cwd: if staged.is_some() {
            std::env::temp_dir()
        } else {
            root
        },
        resources: stage.resources.over(&config.resources),
        // One token names the submission and, for a staged job, its
        // result on the remote.
        token: staged
            .as_ref()
            .map(|s| s.spec.token.clone())
            .unwrap_or_else(staged::new_token),
        env: staged
            .as_ref()
            .map(|s| staged::secret_env(&s.config))
            .unwrap_or_default(),
    };
    for cmd in commands {
        reporter.event(Event::Command {
            stage: &stage.name,
            cmd,
        });
    }
    // Recorded before the scheduler is asked, recorded again with the id:
    // a `pipe` killed in between leaves a token to find the job by.
    let mut record = JobRecord {
        stage: stage.name.clone(),
        executor: kind,
        job_id: String::new(),
        token: job.token.clone(),
        fingerprint: work.fingerprint.to_hex(),
        submitted: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        staged_remote: staged.as_ref().map(|s| s.config.name.clone()),
    };
    files.save(&record).map_err(io)?;
    let id = match scheduler.submit(&job) {
        Ok(id) => id,
        Err(e) => {
            files.remove();
            return Err(with_hint(&e));
        }
    };
    record.job_id = id.clone();
    if let Err(e) = files.save(&record) {
        let _ = scheduler.cancel(&id);
        files.remove();
        return Err(io(e));
    }
    reporter.event(Event::Job {
        stage: &stage.name,
        scheduler: scheduler.title(),
        job: &id,
        phase: JobPhase::Submitted,
    });
    let remote = staged.map(|s| (s.remote, s.spec.token));
    let staged = remote.as_ref().map(|(r, t)| (r, t.as_str()));
    follow(
        project,
        stage,
        &*scheduler,
        &id,
        &files,
        staged,
        run,
        reporter,
    )
}

/// A stage whose inputs are on the remote, ready for its job.
struct Staged {
    spec: staged::JobSpec,
    config: crate::remote::RemoteConfig,
    remote: Remote,
}

/// Opens the remote of `files = "remote"` (`[executor] remote`, else the
/// default one).
fn staging_remote(
    project: &Project,
    name: Option<&str>,
) -> Result<(Remote, crate::remote::RemoteConfig), String> {
    Remote::of_project(project, name)
        .map_err(|e| super::with_hint(&format!("files = \"remote\" in [executor]: {e}"), e.hint()))
}

/// Stores the stage's deps and params files in the cache, pushes them to
/// the remote, and describes the job.
fn stage_inputs(
    project: &Project,
    stage: &Stage,
    work: &super::stage::Work,
    params: &ParamValues,
    run: &ReproOptions,
) -> Result<Staged, String> {
    let (remote, config) = staging_remote(project, project.config.executor.remote.as_deref())?;
    remote
        .probe()
        .map_err(|e| super::with_hint(&e.to_string(), e.hint()))?;
    let mut inputs: Vec<PathRecord> = work.deps.to_vec();
    let mut params_files: Vec<&crate::paths::RelPath> =
        stage.params.iter().map(|r| &r.file).collect();
    params_files.sort();
    params_files.dedup();
    for file in params_files {
        if inputs.iter().any(|r| file.is_within(&r.path)) {
            continue;
        }
        if let Some(hashed) = work.hasher.hash_dep(file).map_err(|e| e.to_string())? {
            inputs.push(PathRecord::new(file.clone(), &hashed));
        }
    }
    // A persistent output starts from what it holds now, on the node too.
    for out in stage.outs.iter().filter(|o| o.persist) {
        if let Some(hashed) = work.hasher.hash_dep(&out.path).map_err(|e| e.to_string())? {
            inputs.push(PathRecord::new(out.path.clone(), &hashed));
        }
    }
    // Deps that are not outputs (raw data, code) enter the cache as copies:
    // the workspace files stay as they are.
    let cache = project.cache.with_link(crate::cache::LinkMode::Copy);
    for r in &inputs {
        if project.cache.contains(r) {
            continue;
        }
        let hashed = work
            .hasher
            .hash_dep(&r.path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("dep {} is missing", r.path))?;
        if hashed.hash != r.blake3 {
            return Err(format!(
                "dep {} changed while the stage was starting; run again",
                r.path
            ));
        }
        cache
            .store(&project.workspace, &r.path, &hashed)
            .map_err(|e| e.to_string())?;
    }
    staged::transfer(
        &remote,
        &project.cache,
        &inputs,
        Default::default(),
        staged::Way::Up,
        "the stage's inputs",
    )?;
    let work_spec = match &stage.action {
        Action::Cmd(commands) => staged::StagedWork::Commands(commands.clone()),
        Action::Builtin { name, args, .. } => staged::StagedWork::Builtin {
            name: name.clone(),
            args: args.clone(),
            params: params.clone(),
        },
    };
    let spec = staged::JobSpec {
        stage: stage.name.clone(),
        token: staged::new_token(),
        wdir: stage.wdir.clone(),
        work: work_spec,
        outs: stage
            .outs
            .iter()
            .map(|o| staged::StagedOut {
                path: o.path.clone(),
                dir: o.dir,
                cache: o.cache,
            })
            .collect(),
        inputs,
        run_cache: (run.use_run_cache && crate::plan::run_cache_eligible(stage))
            .then_some(*work.fingerprint),
        remote: staged::StagedRemote::of(&config, &project.root),
    };
    Ok(Staged {
        spec,
        config,
        remote,
    })
}

#[allow(clippy::too_many_arguments)]
fn follow(
    project: &Project,
    stage: &Stage,
    scheduler: &dyn Scheduler,
    id: &str,
    files: &JobFiles,
    staged: Option<(&Remote, &str)>,
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
    let ended = match followed {
        // The record stays: the next run looks for the job again.
        Followed::Lost(message) => return Err(message),
        Followed::Done => Ok(()),
        Followed::Failed(message) => Err(message),
    };
    let Some((remote, token)) = staged else {
        files.remove();
        return ended;
    };
    // A result that cannot be brought back keeps the record: the next run
    // reads it again instead of submitting the stage.
    let brought = staged::bring_back(
        &project.cache,
        &project.workspace,
        stage,
        remote,
        token,
        reporter,
    )?;
    files.remove();
    let job = format!("{} job {id}", scheduler.title());
    match (brought, ended) {
        (Brought::Done, _) => Ok(()),
        // A command of the stage failed: perhaps for a file it reads that
        // is not a dep.
        (Brought::Failed(message), _) if message.starts_with('`') => Err(format!(
            "{message} ({job}, on its node)\nHint: with files = \"remote\" the job has only the stage's deps and params files: a file its commands read must be a dep"
        )),
        (Brought::Failed(message), _) => Err(format!("{message} ({job}, on its node)")),
        // Cancelled, out of time or memory: the verdict says it all.
        (Brought::Missing, Err(message))
            if run.interrupt.requested().is_some() || !message.contains("exit code") =>
        {
            Err(message)
        }
        (Brought::Missing, Err(message)) => Err(format!(
            "{message}\nHint: the job left no result on remote {}: could it reach the remote, and is pipe at {} on the nodes (`pipe` in [executor] names it)?",
            remote.name,
            config.pipe.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "the same path".into())
        )),
        (Brought::Missing, Ok(())) => Err(format!(
            "{job} ended but left no result on remote {} ({})",
            remote.name,
            remote.shown_job_key(token)
        )),
    }
}

fn with_hint(e: &executor::ExecutorError) -> String {
    super::with_hint(&e.to_string(), e.hint())
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
            super::stage::run_builtin(&project.root, &stage.wdir, b, args, &params)
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
        .filter_map(|mut record| {
            let scheduler =
                executor::scheduler(record.executor, &project.config.executor, &project.root);
            match scheduler {
                // Being submitted (or left so by a killed run): the job is
                // looked for by its token; not found, there is none to show.
                Ok(Some(s)) if record.job_id.is_empty() => {
                    let name = format!("pipe:{}", record.stage);
                    record.job_id = s.find(&name, &record.token).ok()??;
                    Some(RecordedJob {
                        state: s.state(&record.job_id),
                        scheduler: s.title(),
                        record,
                    })
                }
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
