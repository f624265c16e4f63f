//! One stage through `repro`: observe, decide, then restore or run and
//! commit. Runs on a worker thread; returns the new lock entry (if any) for
//! the scheduler to write.

use std::panic::AssertUnwindSafe;
use std::path::Path;

use serde_json::Value as Json;

use super::command::{run_commands, Launch};
use super::events::{Event, Outcome, Reporter};
use super::kept;
use super::ReproOptions;
use crate::builtin::{self, BuiltinCall};
use crate::cache::runs::{self, RunRecord};
use crate::cache::CacheError;
use crate::error::Error;
use crate::fingerprint::lock_entry;
use crate::fingerprint::StaleReason;
use crate::hash::Hasher;
use crate::lock::{LockStage, PathRecord};
use crate::paths::RelPath;
use crate::plan::{
    decide, observe, run_cache_eligible, DecideOptions, Decision, Observed, Verdict,
};
use crate::project::Project;
use crate::spec::params::{ParamValues, ParamsFiles};
use crate::spec::{Action, Stage};

pub struct Done {
    pub outcome: Outcome,
    pub lock_entry: Option<LockStage>,
}

pub fn process(
    project: &Project,
    stage: &Stage,
    locked: Option<&LockStage>,
    hasher: &Hasher,
    opts: DecideOptions,
    run: &ReproOptions,
    reporter: &dyn Reporter,
) -> Result<Done, Error> {
    let mut files = ParamsFiles::new(&project.root);
    let seen = match observe(project, stage, hasher, &mut files) {
        Ok(seen) => seen,
        // A dep or output that cannot be read fails this stage, not the
        // whole run: with -k, independent stages go on.
        Err(Error::Hash(e)) => return Ok(unchanged(Outcome::Failed(unreadable(project, &e)))),
        Err(e) => return Err(e),
    };
    let decision = decide(stage, locked, &seen, &project.cache, opts);
    match decision.verdict {
        Verdict::UpToDate => Ok(unchanged(Outcome::UpToDate)),
        Verdict::Frozen => Ok(unchanged(Outcome::Frozen)),
        Verdict::Restore { ref record } => {
            reporter.event(Event::Started {
                stage: &stage.name,
                restoring: true,
                reasons: &decision.reasons,
            });
            if let Err(message) = keep(project, stage, locked, &seen, hasher, reporter) {
                return Ok(unchanged(Outcome::Failed(message)));
            }
            match restore(project, stage, &seen, record.clone())? {
                Restored::Done(done) => Ok(done),
                // A damaged object was moved aside: run the stage instead.
                Restored::Damaged(e) => {
                    reporter.event(Event::Warning {
                        stage: &stage.name,
                        message: &format!(
                            "{}; running the stage instead",
                            project_paths(&project.root, &e.to_string())
                        ),
                    });
                    run_stage(
                        project, stage, locked, &seen, &decision, hasher, opts, run, reporter,
                    )
                }
            }
        }
        Verdict::Run => run_stage(
            project, stage, locked, &seen, &decision, hasher, opts, run, reporter,
        ),
    }
}

fn unchanged(outcome: Outcome) -> Done {
    Done {
        outcome,
        lock_entry: None,
    }
}

/// Runs a stale stage (unless another process sharing the cache ran it
/// meanwhile) and commits its outputs.
#[allow(clippy::too_many_arguments)]
fn run_stage(
    project: &Project,
    stage: &Stage,
    locked: Option<&LockStage>,
    seen: &Observed,
    decision: &Decision,
    hasher: &Hasher,
    opts: DecideOptions,
    run: &ReproOptions,
    reporter: &dyn Reporter,
) -> Result<Done, Error> {
    let (_claim, held_claims) = match claim(project, stage, decision, opts, reporter) {
        Claim::Recorded(record) => {
            reporter.event(Event::Started {
                stage: &stage.name,
                restoring: true,
                reasons: &decision.reasons,
            });
            if let Err(message) = keep(project, stage, locked, seen, hasher, reporter) {
                return Ok(unchanged(Outcome::Failed(message)));
            }
            match restore(project, stage, seen, record)? {
                Restored::Done(done) => return Ok(done),
                Restored::Damaged(e) => {
                    reporter.event(Event::Warning {
                        stage: &stage.name,
                        message: &format!(
                            "{}; running the stage instead",
                            project_paths(&project.root, &e.to_string())
                        ),
                    });
                    (None, runs::inherited_claims())
                }
            }
        }
        // The claim is held until the run is recorded, at the end of this
        // function.
        Claim::Run { claim, held } => (claim, held),
    };
    // A restore pulled from a remote replaces the outputs too.
    if run.pull.is_some() {
        if let Err(message) = keep(project, stage, locked, seen, hasher, reporter) {
            return Ok(unchanged(Outcome::Failed(message)));
        }
    }
    if let Some(done) = pull(project, stage, seen, decision, opts, run, reporter)? {
        return Ok(done);
    }
    reporter.event(Event::Started {
        stage: &stage.name,
        restoring: false,
        reasons: &decision.reasons,
    });
    if let Some(message) = missing_dep(project, &decision.reasons) {
        return Ok(unchanged(Outcome::Failed(message)));
    }
    // A job that a killed earlier run submitted for these very inputs is
    // followed, not submitted again; its outputs are being written.
    let executed = match super::job::earlier_job(project, stage, &decision.fingerprint, reporter) {
        Err(message) => Err(message),
        Ok(Some(earlier)) => super::job::follow_earlier(project, stage, earlier, run, reporter),
        Ok(None) => {
            // (After a keep above, what it stored is held: nothing more to do.)
            if let Err(message) = keep(project, stage, locked, seen, hasher, reporter) {
                return Ok(unchanged(Outcome::Failed(message)));
            }
            let deps = seen.dep_records();
            let work = Work {
                fingerprint: &decision.fingerprint,
                held_claims: &held_claims,
                deps: &deps,
                hasher,
            };
            execute(project, stage, &seen.params, run, &work, reporter)
        }
    };
    if let Err(message) = executed {
        kept::remember_failed(project, stage, hasher);
        return Ok(unchanged(Outcome::Failed(message)));
    }
    let outs = match commit(project, stage, hasher)? {
        Ok(outs) => outs,
        Err(message) => {
            kept::remember_failed(project, stage, hasher);
            return Ok(unchanged(Outcome::Failed(message)));
        }
    };
    kept::forget_failed(project, &stage.name);
    // The deps as they were when the stage started: that is what it ran on.
    let deps = seen.dep_records();
    if run_cache_eligible(stage) {
        let record = RunRecord {
            stage: stage.name.clone(),
            outs: outs.clone(),
        };
        project.cache.record_run(&decision.fingerprint, &record)?;
    }
    Ok(Done {
        outcome: Outcome::Ran,
        lock_entry: Some(lock_entry(stage, &seen.params, &deps, &seen.urls, outs)),
    })
}

/// With `--pull`, the outputs of this exact fingerprint from the remote's
/// run cache, downloaded (verified) and restored; `None` when the remote
/// does not have them (or cannot give them whole), so the stage runs.
fn pull(
    project: &Project,
    stage: &Stage,
    seen: &Observed,
    decision: &Decision,
    opts: DecideOptions,
    run: &ReproOptions,
    reporter: &dyn Reporter,
) -> Result<Option<Done>, Error> {
    let Some(remote) = &run.pull else {
        return Ok(None);
    };
    if opts.force || !opts.use_run_cache || !run_cache_eligible(stage) {
        return Ok(None);
    }
    let warn = |message: String| {
        reporter.event(Event::Warning {
            stage: &stage.name,
            message: &format!("{message}; running the stage instead"),
        })
    };
    let record = match remote.get_run(&decision.fingerprint) {
        Ok(Some(record)) if record.matches(stage) => record,
        Ok(Some(_)) => {
            warn(format!(
                "the run cache of remote {} names other outputs for this stage",
                remote.name
            ));
            return Ok(None);
        }
        Ok(None) => return Ok(None),
        // A remote that cannot answer costs the run, not the result.
        Err(e) => {
            warn(e.to_string());
            return Ok(None);
        }
    };
    let mut set = crate::remote::ObjectSet::default();
    for out in &record.outs {
        set.add(out);
    }
    let report = match remote.fetch(&project.cache, &set, &crate::remote::transfer::Quiet) {
        Ok(report) => report,
        Err(e) => {
            warn(e.to_string());
            return Ok(None);
        }
    };
    if !report.ok() {
        let why: Vec<String> = report
            .missing
            .iter()
            .chain(&report.failed)
            .cloned()
            .collect();
        warn(format!(
            "remote {} lacks outputs of its run: {}",
            remote.name,
            why.join("; ")
        ));
        return Ok(None);
    }
    project.cache.record_run(&decision.fingerprint, &record)?;
    reporter.event(Event::Pulled {
        stage: &stage.name,
        remote: &remote.name,
    });
    match restore(project, stage, seen, record)? {
        Restored::Done(done) => Ok(Some(done)),
        Restored::Damaged(e) => {
            warn(project_paths(&project.root, &e.to_string()));
            Ok(None)
        }
    }
}

/// What a process about to run a stage learns from its claim.
enum Claim {
    /// Another process ran the stage while this one waited for the claim:
    /// what it recorded.
    Recorded(RunRecord),
    /// This process runs the stage, holding the claim (when one was taken:
    /// see [`claim`]) until it is dropped. `held` is the value of
    /// [`runs::HELD_CLAIMS_ENV`] for the stage's commands.
    Run {
        claim: Option<runs::RunClaim>,
        held: String,
    },
}

/// Takes the claim on running `stage` (see [`crate::cache::runs`]): another
/// process sharing the cache may be running this very stage; wait for it,
/// then restore what it recorded. Stages the run cache does not serve, and
/// forced runs, take none; nor does a stage whose claim a `pipe` above this
/// one holds (it would wait for itself).
fn claim(
    project: &Project,
    stage: &Stage,
    decision: &Decision,
    opts: DecideOptions,
    reporter: &dyn Reporter,
) -> Claim {
    let inherited = runs::inherited_claims();
    let fingerprint = &decision.fingerprint;
    if !opts.use_run_cache
        || opts.force
        || !run_cache_eligible(stage)
        || runs::holds(&inherited, fingerprint)
    {
        return Claim::Run {
            claim: None,
            held: inherited,
        };
    }
    // A claim saves work; it is not needed to run. Where it cannot be
    // taken (a read-only cache, a filesystem without locks), the stage
    // runs without one.
    let claim = project
        .cache
        .claim_run(fingerprint, || {
            reporter.event(Event::WaitingForRun { stage: &stage.name })
        })
        .ok();
    if let Some(record) = project
        .cache
        .lookup_run(fingerprint)
        .filter(|r| r.matches(stage))
    {
        return Claim::Recorded(record);
    }
    let held = match claim {
        Some(_) => runs::with_claim(&inherited, fingerprint),
        None => inherited,
    };
    Claim::Run { claim, held }
}

/// [`kept::keep_unrecorded`]; what prevents it fails the stage (and
/// nothing of its outputs is replaced).
fn keep(
    project: &Project,
    stage: &Stage,
    locked: Option<&LockStage>,
    seen: &Observed,
    hasher: &Hasher,
    reporter: &dyn Reporter,
) -> Result<(), String> {
    kept::keep_unrecorded(project, stage, locked, seen, hasher, reporter).map_err(|e| {
        let message = format!(
            "cannot keep the current version of an output before replacing it, so nothing was replaced: {e}"
        );
        project_paths(&project.root, &with_hint(&message, e.hint()))
    })
}

/// A failure message with its hint on a line of its own (rendered as
/// `hint: …`).
/// A stage's failure with its hint, as the reporter shows it (one place
/// for the `Hint:` line of every stage failure).
pub(crate) fn with_hint(message: &str, hint: Option<String>) -> String {
    match hint {
        Some(h) => format!("{message}\nHint: {h}"),
        None => message.to_string(),
    }
}

/// A hash error as a stage failure.
fn unreadable(project: &Project, e: &crate::hash::HashError) -> String {
    project_paths(&project.root, &e.to_string())
}

/// `message` with the absolute paths under `root` written as the user
/// reads them: as project paths.
fn project_paths(root: &Path, message: &str) -> String {
    message.replace(&format!("{}/", root.display()), "")
}

/// How restoring a recorded run ended.
enum Restored {
    Done(Done),
    /// An object was damaged (and is now quarantined): the stage must run.
    Damaged(CacheError),
}

/// Links the outputs of a recorded run back into the workspace.
fn restore(
    project: &Project,
    stage: &Stage,
    seen: &Observed,
    record: RunRecord,
) -> Result<Restored, Error> {
    for out in &record.outs {
        match project.cache.restore(&project.workspace, out) {
            Ok(()) => {}
            Err(e) if e.is_damaged() => return Ok(Restored::Damaged(e)),
            Err(e) => return Err(e.into()),
        }
    }
    kept::forget_failed(project, &stage.name);
    Ok(Restored::Done(Done {
        outcome: Outcome::Restored,
        lock_entry: Some(lock_entry(
            stage,
            &seen.params,
            &seen.dep_records(),
            &seen.urls,
            record.outs,
        )),
    }))
}

/// Why a stage cannot run: a dep that is missing when it should start. (A
/// dep nothing writes is refused when the pipeline is loaded; this is an
/// output of a frozen stage that is not there, or one deleted meanwhile.)
fn missing_dep(project: &Project, reasons: &[StaleReason]) -> Option<String> {
    let path = reasons.iter().find_map(|r| match r {
        StaleReason::DepMissing { path } => Some(path),
        _ => None,
    })?;
    let producer = project
        .pipeline
        .stages
        .iter()
        .find(|s| s.outs.iter().any(|o| path.is_within(&o.path)));
    Some(match producer {
        Some(p) if p.frozen => format!(
            "dep {path} is missing, and the stage that writes it, {0}, is frozen: restore it with `pipe checkout {0}` or unfreeze {0}",
            p.name
        ),
        Some(p) => format!("dep {path} is missing: run `pipe repro {}` first", p.name),
        None => format!("dep {path} is missing: put it back, or remove it from the stage's deps"),
    })
}

/// What a run of the stage is for.
pub(super) struct Work<'a> {
    pub fingerprint: &'a crate::hash::Digest,
    /// Goes to the commands as [`runs::HELD_CLAIMS_ENV`].
    pub held_claims: &'a str,
    /// The deps as they were observed (what a job on a node without the
    /// project's files downloads).
    pub deps: &'a [PathRecord],
    pub hasher: &'a Hasher,
}

/// Clears non-persistent outputs, then runs the command or built-in, here
/// or as a job of the stage's executor (see [`super::job`]).
fn execute(
    project: &Project,
    stage: &Stage,
    params: &ParamValues,
    run: &ReproOptions,
    work: &Work,
    reporter: &dyn Reporter,
) -> Result<(), String> {
    let held_claims = work.held_claims;
    let ws = &project.workspace;
    for out in &stage.outs {
        let prepared = if out.persist {
            ws.make_private(&out.path)
        } else {
            ws.remove(&out.path)
        };
        let created = if out.dir {
            ws.create_dir_all(&out.path)
        } else {
            ws.create_parent(&out.path)
        };
        prepared
            .and(created)
            .map_err(|e| with_hint(&e.to_string(), e.hint()))?;
    }
    let kind = super::job::executor_of(project, stage, run);
    if kind != crate::executor::Kind::Local {
        return super::job::run_job(project, stage, kind, work, params, run, reporter);
    }
    let cwd = stage.wdir.to_path(&project.root);
    match &stage.action {
        Action::Cmd(commands) => {
            let env = [
                (super::leftovers::RUN_ID_VAR, run.run_id.as_str()),
                (runs::HELD_CLAIMS_ENV, held_claims),
            ];
            let launch = Launch {
                stage: &stage.name,
                root: &project.root,
                cwd: &cwd,
                env: &env,
                supervisor: run.supervisor.as_deref(),
                interrupt: &run.interrupt,
            };
            run_commands(&launch, commands, reporter)
        }
        Action::Builtin { name, args, .. } => {
            run_builtin(&project.root, &stage.wdir, name, args, params)
        }
    }
}

pub(crate) fn run_builtin(
    root: &Path,
    wdir: &RelPath,
    name: &str,
    args: &std::collections::BTreeMap<String, Json>,
    params: &ParamValues,
) -> Result<(), String> {
    let b = builtin::find(name).ok_or_else(|| format!("unknown built-in stage `{name}`"))?;
    let mut paths = std::collections::BTreeMap::new();
    for arg in b.args {
        if let (Some(Json::String(text)), builtin::ArgRole::Input | builtin::ArgRole::Output(_)) =
            (args.get(arg.name), arg.role)
        {
            let rel = RelPath::parse(text, Some(wdir)).map_err(|e| e.to_string())?;
            paths.insert(arg.name, rel.to_path(root));
        }
    }
    let options = args.clone();
    let merged = builtin::merge_params(params);
    let call = BuiltinCall {
        paths,
        options: &options,
        params: &merged,
    };
    // Built-ins see absolute paths; the user reads project paths.
    match std::panic::catch_unwind(AssertUnwindSafe(|| (b.run)(&call))) {
        Ok(result) => result.map_err(|message| project_paths(root, &message)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!(
                "built-in `{name}` crashed: {what} (this is a bug in pipe; please report it)"
            ))
        }
    }
}

/// Hashes the outputs the stage produced and stores the cached ones.
/// `Ok(Err(message))` when an output is missing.
fn commit(
    project: &Project,
    stage: &Stage,
    hasher: &Hasher,
) -> Result<Result<Vec<PathRecord>, String>, Error> {
    let mut records = Vec::new();
    for out in &stage.outs {
        let hashed = match hasher.hash_output(&out.path) {
            Ok(hashed) => hashed,
            Err(e) => return Ok(Err(unreadable(project, &e))),
        };
        let Some(hashed) = hashed else {
            return Ok(Err(format!(
                "the stage did not produce its output `{}`",
                out.path
            )));
        };
        if out.cache {
            match project.cache.store(&project.workspace, &out.path, &hashed) {
                Ok(()) => {}
                // What the stage wrote cannot be stored as it is: the stage
                // fails; the run goes on (with -k).
                Err(
                    e @ (CacheError::Workspace(_)
                    | CacheError::Changed { .. }
                    | CacheError::NoSpace { .. }),
                ) => {
                    let message = with_hint(&e.to_string(), e.hint());
                    return Ok(Err(project_paths(&project.root, &message)));
                }
                Err(e) => return Err(e.into()),
            }
        }
        records.push(PathRecord::new(out.path.clone(), &hashed));
    }
    Ok(Ok(records))
}
