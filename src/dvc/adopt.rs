//! Taking over the stages DVC ran: `dvc.lock` checked, then recorded in
//! `pipeline.lock` (see the [module documentation](super)).

use std::collections::BTreeMap;

use super::lock::{DvcEntry, DvcLock, DvcLockError};
use super::md5::{dir_md5, file_md5};
use crate::error::Error;
use crate::fingerprint::lock_entry;
use crate::hash::Hasher;
use crate::lock::{LockFile, PathRecord};
use crate::paths::RelPath;
use crate::project::Project;
use crate::spec::params::{self, ParamValues, ParamsFiles};
use crate::spec::{Action, Format, Stage, DVC_LOCK_FILE};

/// What [`adopt`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adoption {
    /// Stages recorded from `dvc.lock`, in pipeline order.
    pub adopted: Vec<String>,
    /// Stages `dvc.lock` records that were left out (they run as stale),
    /// with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Records in `lock` every stage it lacks whose `dvc.lock` entry matches
/// the disk. With `store`, their cached outputs are stored in the cache
/// (as `pipe commit` stores them); without, nothing is written (for
/// `pipe status`). The caller writes `lock`.
pub fn adopt(
    project: &Project,
    lock: &mut LockFile,
    hasher: &Hasher,
    store: bool,
) -> Result<Adoption, Error> {
    let mut out = Adoption::default();
    let p = &project.pipeline;
    if p.format != Format::Dvc || p.stages.iter().all(|s| lock.stages.contains_key(&s.name)) {
        return Ok(out);
    }
    let mut locks: BTreeMap<usize, Option<DvcLock>> = BTreeMap::new();
    let mut files = ParamsFiles::new(&project.root);
    for stage in &p.stages {
        if lock.stages.contains_key(&stage.name) {
            continue;
        }
        let file = &p.files[stage.file];
        let dvc_lock = match locks.get(&stage.file) {
            Some(l) => l,
            None => {
                let read = read_lock(project, &file.dir().join(DVC_LOCK_FILE))?;
                locks.entry(stage.file).or_insert(read)
            }
        };
        let Some(dvc_lock) = dvc_lock else { continue };
        let local = stage.name.strip_prefix(&file.prefix).unwrap_or(&stage.name);
        let Some(entry) = dvc_lock.stages.get(local) else {
            continue;
        };
        if let Err(why) = check(project, stage, &entry.deps, &entry.outs) {
            out.skipped.push((stage.name.clone(), why));
            continue;
        }
        let mut outs = Vec::new();
        for o in &stage.outs {
            let hashed = hasher.hash_output(&o.path)?.ok_or_else(|| Error::Refused {
                message: format!(
                    "stage {}: output {} disappeared while it was being recorded",
                    stage.name, o.path
                ),
                hint: Some("make sure nothing else writes the stage's outputs".into()),
            })?;
            if store && o.cache {
                project.cache.store(&project.workspace, &o.path, &hashed)?;
            }
            outs.push(PathRecord::new(o.path.clone(), &hashed));
        }
        let mut deps = Vec::new();
        for d in &stage.deps {
            if let Some(hashed) = hasher.hash_dep(d)? {
                deps.push(PathRecord::new(d.clone(), &hashed));
            }
        }
        let values = param_values(stage, &entry.params, &mut files)?;
        // A dep named by URL is not taken over: without the version DVC
        // saw, the stage's first `pipe repro` runs it and records one.
        let mut record = lock_entry(stage, &values, &deps, &[], outs);
        if matches!(stage.action, Action::Cmd(_)) && !entry.cmd.is_empty() {
            record.cmd = Some(entry.cmd.clone());
        }
        lock.stages.insert(stage.name.clone(), record);
        out.adopted.push(stage.name.clone());
    }
    Ok(out)
}

fn read_lock(project: &Project, path: &RelPath) -> Result<Option<DvcLock>, Error> {
    let text = match std::fs::read_to_string(path.to_path(&project.root)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                message: format!("cannot read {path}"),
                source,
            })
        }
    };
    Ok(Some(DvcLock::from_text(path.as_str(), &text)?))
}

/// The stage's deps and outputs are those `dvc.lock` records, each with
/// the md5 it records; else why not.
fn check(
    project: &Project,
    stage: &Stage,
    deps: &[DvcEntry],
    outs: &[DvcEntry],
) -> Result<(), String> {
    for (what, declared, recorded) in [
        ("dep", stage.deps.iter().collect::<Vec<_>>(), deps),
        ("output", stage.outs.iter().map(|o| &o.path).collect(), outs),
    ] {
        let mut by_path: BTreeMap<RelPath, &DvcEntry> = BTreeMap::new();
        for e in recorded {
            if let Ok(p) = RelPath::parse(&e.path, Some(&stage.wdir)) {
                by_path.insert(p, e);
            }
        }
        if by_path.len() != declared.len() || declared.iter().any(|p| !by_path.contains_key(*p)) {
            return Err(format!(
                "its {what}s in dvc.yaml are not those dvc.lock records (the stage changed since DVC ran it)"
            ));
        }
        for path in declared {
            verify(project, path, by_path[path]).map_err(|why| format!("{what} {why}"))?;
        }
    }
    Ok(())
}

/// `path` on disk has the md5 `entry` records; else why not.
fn verify(project: &Project, path: &RelPath, entry: &DvcEntry) -> Result<(), String> {
    let Some(md5) = entry.md5.as_deref() else {
        return Err(format!("{path} has no md5 in dvc.lock"));
    };
    let abs = path.to_path(&project.root);
    let Ok(meta) = std::fs::metadata(&abs) else {
        return Err(format!("{path} is missing"));
    };
    let changed = || {
        format!("{path} changed since DVC ran the stage (its md5 is not the one dvc.lock records)")
    };
    let found = if meta.is_dir() {
        if !entry.is_dir() {
            return Err(changed());
        }
        let (found, size, nfiles) =
            dir_md5(&project.root, path, entry.kind()).map_err(|e| format!("{path}: {e}"))?;
        if entry.size.is_some_and(|s| s != size) || entry.nfiles.is_some_and(|n| n != nfiles) {
            return Err(changed());
        }
        found
    } else {
        if entry.is_dir() || entry.size.is_some_and(|s| s != meta.len()) {
            return Err(changed());
        }
        file_md5(&abs, entry.kind())
            .map_err(|e| format!("{path}: {e}"))?
            .0
    };
    if found.eq_ignore_ascii_case(md5) {
        Ok(())
    } else {
        Err(changed())
    }
}

/// The stage's param values as DVC recorded them; a value DVC did not
/// record (a param pipe tracks because the command names it) is read from
/// the params file as it is.
fn param_values(
    stage: &Stage,
    recorded: &BTreeMap<String, BTreeMap<String, yaml_serde::Value>>,
    files: &mut ParamsFiles,
) -> Result<ParamValues, Error> {
    let mut by_file: BTreeMap<RelPath, &BTreeMap<String, yaml_serde::Value>> = BTreeMap::new();
    for (file, values) in recorded {
        if let Ok(p) = RelPath::parse(file, Some(&stage.wdir)) {
            by_file.insert(p, values);
        }
    }
    let mut out = ParamValues::new();
    for r in &stage.params {
        let value = match by_file.get(&r.file) {
            Some(values) if r.key.is_empty() => Some(serde_json::Value::Object(
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), params::to_json(v)))
                    .collect(),
            )),
            Some(values) => match values.get(&r.key) {
                Some(v) => Some(params::to_json(v)),
                None => files.value(&r.file, &r.key)?,
            },
            None => files.value(&r.file, &r.key)?,
        };
        if let Some(value) = value {
            out.entry(r.file.as_str().to_string())
                .or_default()
                .insert(r.key.clone(), value);
        }
    }
    Ok(out)
}

impl From<DvcLockError> for Error {
    fn from(e: DvcLockError) -> Error {
        Error::Refused {
            hint: Some(e.hint().to_string()),
            message: e.to_string(),
        }
    }
}
