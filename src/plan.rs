//! Deciding what each stage needs: nothing, a restore, or a run.
//!
//! [`observe`] looks at a stage as it is now (param values, dep and output
//! hashes through the stat cache; no file is read whose stat is unchanged).
//! [`decide`] compares that with the stage's lock entry:
//!
//! | verdict    | when |
//! |------------|------|
//! | up to date | no stale reasons |
//! | frozen     | `frozen: true` (never run by `repro`) |
//! | restore    | stale, but the run cache has outputs for this exact fingerprint |
//! | run        | stale otherwise |
//!
//! [`plan`] does this for a selection of stages in topological order without
//! running anything, for `pipe status` and `pipe repro --dry`: a stage below
//! one that will run is marked `UpstreamStale`, since its deps are not known
//! until then. `pipe repro` calls `observe`/`decide` itself, stage by stage,
//! after the upstream stages have finished.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::cache::runs::RunRecord;
use crate::cache::Cache;
use crate::error::Error;
use crate::fingerprint::{compare, Fingerprint, StaleReason};
use crate::hash::{Digest, Hasher};
use crate::lock::{LockFile, LockStage, PathRecord, UrlDep};
use crate::paths::RelPath;
use crate::project::Project;
use crate::remote::source::Source;
use crate::spec::params::{ParamValues, ParamsFiles};
use crate::spec::Stage;

/// A stage as it is on disk now.
#[derive(Debug, Clone)]
pub struct Observed {
    pub params: ParamValues,
    pub deps: Vec<(RelPath, Option<PathRecord>)>,
    pub outs: Vec<(RelPath, Option<PathRecord>)>,
    /// The deps named by URL, with their versions now.
    pub urls: Vec<UrlDep>,
}

impl Observed {
    /// The hashes of deps that exist (the fingerprint's input).
    pub fn dep_records(&self) -> Vec<PathRecord> {
        self.deps.iter().filter_map(|(_, r)| r.clone()).collect()
    }
}

/// Observes `stage`: its params, the hashes of its deps and outputs, and
/// the version of each dep named by URL (one `HEAD` request each, no
/// download).
pub fn observe(
    project: &Project,
    stage: &Stage,
    hasher: &Hasher,
    files: &mut ParamsFiles,
) -> Result<Observed, Error> {
    let mut params = ParamValues::new();
    for r in &stage.params {
        if let Some(value) = files.value(&r.file, &r.key)? {
            params
                .entry(r.file.as_str().to_string())
                .or_default()
                .insert(r.key.clone(), value);
        }
    }
    let record = |p: &RelPath, h: Option<crate::hash::Hashed>| {
        (p.clone(), h.map(|h| PathRecord::new(p.clone(), &h)))
    };
    let deps = stage
        .deps
        .iter()
        .map(|p| Ok(record(p, hasher.hash_dep(p)?)))
        .collect::<Result<_, Error>>()?;
    let outs = stage
        .outs
        .iter()
        .map(|o| Ok(record(&o.path, hasher.hash_output(&o.path)?)))
        .collect::<Result<_, Error>>()?;
    let urls = stage
        .url_deps
        .iter()
        .map(|url| {
            let source = Source::open(url, &project.root, &project.config.remotes)?;
            Ok(UrlDep {
                url: url.clone(),
                version: source.version()?,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Observed {
        params,
        deps,
        outs,
        urls,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    UpToDate,
    Frozen,
    Restore {
        #[serde(skip)]
        record: RunRecord,
    },
    Run,
}

impl Verdict {
    pub fn needs_work(&self) -> bool {
        matches!(self, Verdict::Restore { .. } | Verdict::Run)
    }
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub verdict: Verdict,
    pub reasons: Vec<StaleReason>,
    pub fingerprint: Digest,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct DecideOptions {
    pub force: bool,
    pub use_run_cache: bool,
}

/// Whether outputs of this stage can be restored from the run cache.
/// A stage with no outputs is run for its side effects, so it is not.
pub fn run_cache_eligible(stage: &Stage) -> bool {
    !stage.always_changed
        && !stage.outs.is_empty()
        && stage.outs.iter().all(|o| o.cache && !o.persist)
}

pub fn decide(
    stage: &Stage,
    locked: Option<&LockStage>,
    seen: &Observed,
    cache: &Cache,
    opts: DecideOptions,
) -> Decision {
    let now = Fingerprint::of(stage, &seen.params, &seen.dep_records()).with_urls(&seen.urls);
    let fp = now.digest();
    if stage.frozen {
        return Decision {
            verdict: Verdict::Frozen,
            reasons: Vec::new(),
            fingerprint: fp,
        };
    }
    let mut reasons = compare(stage, locked, &now, &seen.deps, &seen.outs);
    if opts.force {
        reasons.insert(0, StaleReason::Forced);
    }
    let verdict = if reasons.is_empty() {
        Verdict::UpToDate
    } else if opts.use_run_cache
        && !opts.force
        && run_cache_eligible(stage)
        && !has_missing_dep(&reasons)
    {
        match cache.lookup_run(&fp).filter(|r| r.matches(stage)) {
            Some(record) => Verdict::Restore { record },
            None => Verdict::Run,
        }
    } else {
        Verdict::Run
    };
    Decision {
        verdict,
        reasons,
        fingerprint: fp,
    }
}

fn has_missing_dep(reasons: &[StaleReason]) -> bool {
    reasons
        .iter()
        .any(|r| matches!(r, StaleReason::DepMissing { .. }))
}

/// One line of `pipe status` / `pipe repro --dry`.
#[derive(Debug, Clone, Serialize)]
pub struct StagePlan {
    pub stage: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub reasons: Vec<StaleReason>,
}

/// Decides every selected stage without running anything.
pub fn plan(
    project: &Project,
    lock: &LockFile,
    hasher: &Hasher,
    selected: &[usize],
    opts: DecideOptions,
) -> Result<Vec<StagePlan>, Error> {
    let mut files = ParamsFiles::new(&project.root);
    let chosen: BTreeSet<usize> = selected.iter().copied().collect();
    let mut will_change: BTreeMap<usize, bool> = BTreeMap::new();
    let mut restored: BTreeMap<RelPath, PathRecord> = BTreeMap::new();
    let mut out = Vec::new();
    for &i in selected {
        let stage = &project.pipeline.stages[i];
        let mut seen = observe(project, stage, hasher, &mut files)?;
        let upstream: Vec<usize> = project
            .dag
            .parents(i)
            .into_iter()
            .filter(|p| chosen.contains(p) && will_change.contains_key(p))
            .collect();
        // When every changing upstream stage will be restored, the deps it
        // restores are known exactly: decide on them.
        let all_restored = upstream.iter().all(|p| will_change[p]);
        let predictable = all_restored
            && seen.deps.iter().all(|(path, _)| {
                restored.contains_key(path) || !restored.keys().any(|o: &RelPath| o.overlaps(path))
            });
        if !upstream.is_empty() && predictable {
            for (path, record) in seen.deps.iter_mut() {
                if let Some(r) = restored.get(path) {
                    *record = Some(r.clone());
                }
            }
        }
        let mut d = decide(
            stage,
            lock.stages.get(&stage.name),
            &seen,
            &project.cache,
            opts,
        );
        if !upstream.is_empty() && predictable && d.verdict.needs_work() {
            for &p in &upstream {
                d.reasons.push(StaleReason::UpstreamStale {
                    stage: project.pipeline.stages[p].name.clone(),
                    restored: true,
                });
            }
        } else if !upstream.is_empty() && !predictable && d.verdict != Verdict::Frozen {
            // What an upstream stage will rewrite is not news about this one.
            let rewritten: Vec<&RelPath> = upstream
                .iter()
                .flat_map(|&p| project.pipeline.stages[p].outs.iter().map(|o| &o.path))
                .collect();
            d.reasons.retain(|r| match r {
                StaleReason::DepMissing { path } | StaleReason::DepModified { path } => {
                    !rewritten.iter().any(|o| o.overlaps(path))
                }
                _ => true,
            });
            for p in upstream {
                d.reasons.push(StaleReason::UpstreamStale {
                    stage: project.pipeline.stages[p].name.clone(),
                    restored: will_change[&p],
                });
            }
            // The deps will change under it: a run-cache hit cannot be known yet.
            d.verdict = Verdict::Run;
        }
        // Stages that will change, and whether by a restore (true) or a run.
        match &d.verdict {
            Verdict::Run => {
                will_change.insert(i, false);
            }
            Verdict::Restore { record } => {
                will_change.insert(i, true);
                for out in &record.outs {
                    restored.insert(out.path.clone(), out.clone());
                }
            }
            _ => {}
        }
        out.push(StagePlan {
            stage: stage.name.clone(),
            verdict: d.verdict,
            reasons: d.reasons,
        });
    }
    Ok(out)
}
