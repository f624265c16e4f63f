//! Stage fingerprints and the reasons a stage is stale.
//!
//! A stage's fingerprint is the BLAKE3 of a canonical JSON document (sorted
//! keys, schema version first) holding: what the stage does (its commands, or
//! the built-in's name, algorithm version and arguments), its working
//! directory, the values of its params, the path and content hash of every
//! dependency, and its declared outputs. Never `std::hash::Hash`, never an
//! mtime or an absolute path: the same inputs give the same fingerprint on
//! every machine, which is what lets the run cache restore outputs.
//!
//! Upstream stages enter through content, not through their fingerprints: a
//! dep produced by an upstream stage is hashed like any other file once that
//! stage has run. So an upstream rerun that produces identical bytes does not
//! rerun its downstream (early cut-off), which a fingerprint-of-fingerprints
//! design would.
//!
//! Freshness is decided by [`compare`]: the lock entry against what is on
//! disk now, field by field, into typed [`StaleReason`]s that one function
//! renders (like cargo's `DirtyReason`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{json, Value as Json};

use crate::hash::Digest;
use crate::lock::{LockStage, PathRecord, UrlDep};
use crate::paths::RelPath;
use crate::remote::url::masked;
use crate::spec::params::{display_value, flatten, ParamValues, DEFAULT_PARAMS_FILE};
use crate::spec::{Action, Stage};

/// Bump when the fingerprint document changes shape.
pub const FINGERPRINT_SCHEMA: u32 = 1;

/// Why a stage has to run (or be restored).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StaleReason {
    NeverRun,
    Forced,
    AlwaysChanged,
    CommandChanged {
        old: String,
        new: String,
    },
    ParamChanged {
        key: String,
        old: Option<Json>,
        new: Option<Json>,
    },
    DepModified {
        path: RelPath,
    },
    DepMissing {
        path: RelPath,
    },
    DepAdded {
        path: RelPath,
    },
    DepRemoved {
        path: RelPath,
    },
    /// A dep named by URL whose object has another version now.
    UrlDepModified {
        url: String,
    },
    UrlDepAdded {
        url: String,
    },
    UrlDepRemoved {
        url: String,
    },
    OutputMissing {
        path: RelPath,
    },
    OutputModified {
        path: RelPath,
    },
    OutputAdded {
        path: RelPath,
    },
    OutputRemoved {
        path: RelPath,
    },
    /// A declared output's `cache` or `persist` option changed.
    OutputOptionChanged {
        path: RelPath,
        option: String,
        old: bool,
        new: bool,
    },
    UpstreamStale {
        stage: String,
        /// The upstream stage will be restored from the run cache, not run.
        restored: bool,
    },
}

impl StaleReason {
    /// True for reasons that concern only the outputs: the recorded inputs
    /// still hold, so the recorded outputs can be restored from the cache.
    pub fn is_output_only(&self) -> bool {
        matches!(
            self,
            StaleReason::OutputMissing { .. } | StaleReason::OutputModified { .. }
        )
    }
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<Json>| {
            v.as_ref()
                .map(display_value)
                .unwrap_or_else(|| "(none)".into())
        };
        match self {
            StaleReason::NeverRun => write!(f, "never run"),
            StaleReason::Forced => write!(f, "forced"),
            StaleReason::AlwaysChanged => write!(f, "always_changed is set"),
            StaleReason::CommandChanged { old, new } => {
                let (old, new) = compact_change(old, new);
                write!(f, "command changed: `{old}` → `{new}`")
            }
            StaleReason::ParamChanged {
                key,
                old: None,
                new,
            } => write!(f, "param {key} added: {}", shown(new)),
            StaleReason::ParamChanged {
                key,
                old,
                new: None,
            } => write!(f, "param {key} removed (was {})", shown(old)),
            StaleReason::ParamChanged { key, old, new } => {
                write!(f, "param {key} changed: {} → {}", shown(old), shown(new))
            }
            StaleReason::DepModified { path } => write!(f, "dep {path} modified"),
            StaleReason::DepMissing { path } => write!(f, "dep {path} missing"),
            StaleReason::DepAdded { path } => write!(f, "dep {path} added"),
            StaleReason::DepRemoved { path } => write!(f, "dep {path} removed"),
            StaleReason::UrlDepModified { url } => write!(f, "dep {} modified", masked(url)),
            StaleReason::UrlDepAdded { url } => write!(f, "dep {} added", masked(url)),
            StaleReason::UrlDepRemoved { url } => write!(f, "dep {} removed", masked(url)),
            StaleReason::OutputMissing { path } => write!(f, "output {path} missing"),
            StaleReason::OutputModified { path } => write!(f, "output {path} modified"),
            StaleReason::OutputAdded { path } => write!(f, "output {path} added"),
            StaleReason::OutputRemoved { path } => write!(f, "output {path} no longer declared"),
            StaleReason::OutputOptionChanged {
                path,
                option,
                old,
                new,
            } => write!(f, "output {path}: {option} changed: {old} → {new}"),
            StaleReason::UpstreamStale {
                stage,
                restored: false,
            } => write!(f, "upstream stage {stage} will rerun"),
            StaleReason::UpstreamStale {
                stage,
                restored: true,
            } => write!(f, "upstream stage {stage} will be restored"),
        }
    }
}

/// Two versions of a long command, cut to the part that differs with a little
/// context around it, on one line each.
fn compact_change(old: &str, new: &str) -> (String, String) {
    const CONTEXT: usize = 16;
    const SHORT: usize = 60;
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (old, new): (Vec<char>, Vec<char>) =
        (flat(old).chars().collect(), flat(new).chars().collect());
    if old.len() <= SHORT && new.len() <= SHORT {
        return (old.iter().collect(), new.iter().collect());
    }
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    let cut = |s: &[char]| {
        let start = prefix.saturating_sub(CONTEXT);
        let end = (s.len() - suffix + CONTEXT).min(s.len());
        let mut out = String::new();
        if start > 0 {
            out.push('…');
        }
        out.extend(&s[start..end]);
        if end < s.len() {
            out.push('…');
        }
        out
    };
    (cut(&old), cut(&new))
}

/// What a stage's result depends on. The same struct is hashed (its
/// [`Fingerprint::digest`] keys the run cache) and compared field by field
/// with the one its lock entry records ([`LockStage::fingerprint`]), so
/// whatever changes the key is also a reason `pipe status` gives.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fingerprint {
    pub cmd: Option<Vec<String>>,
    pub uses: Option<String>,
    pub version: Option<u32>,
    pub with: BTreeMap<String, Json>,
    pub wdir: RelPath,
    pub params: ParamValues,
    /// The deps that exist, with their content hashes.
    pub deps: Vec<DepHash>,
    /// The declared outputs and their options.
    pub outs: Vec<OutDecl>,
    /// The deps named by URL and their versions; left out of the hashed
    /// document when there are none, so that the fingerprints of stages
    /// without them keep their digests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub url_deps: Vec<UrlDep>,
}

/// A dep's path and content hash (`[path, blake3]` in the hashed document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DepHash(pub RelPath, pub Digest);

/// A declared output (`[path, cache, persist]` in the hashed document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutDecl(pub RelPath, pub bool, pub bool);

impl Fingerprint {
    /// The fingerprint of `stage` run with these param values on these deps.
    pub fn of(stage: &Stage, params: &ParamValues, deps: &[PathRecord]) -> Fingerprint {
        let (cmd, uses, version, with) = action_fields(&stage.action);
        Fingerprint {
            cmd,
            uses,
            version,
            with,
            wdir: stage.wdir.clone(),
            params: params.clone(),
            deps: deps
                .iter()
                .map(|d| DepHash(d.path.clone(), d.blake3))
                .collect(),
            outs: stage
                .outs
                .iter()
                .map(|o| OutDecl(o.path.clone(), o.cache, o.persist))
                .collect(),
            url_deps: Vec::new(),
        }
    }

    /// With the versions of the stage's deps named by URL.
    pub fn with_urls(mut self, urls: &[UrlDep]) -> Fingerprint {
        self.url_deps = urls.to_vec();
        self
    }

    /// The BLAKE3 of the canonical JSON document: sorted keys (serde_json's
    /// map is a BTreeMap), the schema version among them.
    pub fn digest(&self) -> Digest {
        let mut doc = serde_json::to_value(self).expect("a fingerprint serializes");
        doc.as_object_mut()
            .expect("a struct is an object")
            .insert("schema".into(), json!(FINGERPRINT_SCHEMA));
        Digest::of(&serde_json::to_vec(&doc).expect("a fingerprint serializes"))
    }
}

impl LockStage {
    /// The fingerprint this entry was recorded with.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            cmd: self.cmd.clone(),
            uses: self.uses.clone(),
            version: self.version,
            with: self.with.clone(),
            wdir: self.wdir.clone(),
            params: self.params.clone(),
            deps: self
                .deps
                .iter()
                .map(|d| DepHash(d.path.clone(), d.blake3))
                .collect(),
            outs: self
                .outs
                .iter()
                .map(|o| OutDecl(o.path.clone(), o.cache, o.persist))
                .collect(),
            url_deps: self.url_deps.clone(),
        }
    }
}

/// The lock fields `cmd`, `uses`, `version` and `with`.
type ActionFields = (
    Option<Vec<String>>,
    Option<String>,
    Option<u32>,
    BTreeMap<String, Json>,
);

/// The lock fields that describe what a stage does.
fn action_fields(action: &Action) -> ActionFields {
    match action {
        Action::Cmd(cmds) => (Some(cmds.clone()), None, None, BTreeMap::new()),
        Action::Builtin {
            name,
            version,
            args,
        } => (None, Some(name.clone()), Some(*version), args.clone()),
    }
}

/// The lock entry of a stage that has just run with these inputs and
/// produced `outs` (recorded with the options the stage declares).
pub fn lock_entry(
    stage: &Stage,
    params: &ParamValues,
    deps: &[PathRecord],
    urls: &[UrlDep],
    outs: Vec<PathRecord>,
) -> LockStage {
    let fp = Fingerprint::of(stage, params, deps).with_urls(urls);
    let outs = outs
        .into_iter()
        .map(|mut record| {
            if let Some(o) = stage.outs.iter().find(|o| o.path == record.path) {
                (record.cache, record.persist) = (o.cache, o.persist);
            }
            record
        })
        .collect();
    LockStage {
        cmd: fp.cmd,
        uses: fp.uses,
        version: fp.version,
        with: fp.with,
        wdir: fp.wdir,
        params: fp.params,
        deps: deps.to_vec(),
        url_deps: fp.url_deps,
        outs,
    }
}

fn describe_action(fp: &Fingerprint) -> String {
    match (&fp.cmd, &fp.uses) {
        (Some(c), _) => c.join(" && "),
        (None, Some(u)) => format!("uses: {u} v{}", fp.version.unwrap_or(0)),
        (None, None) => String::new(),
    }
}

/// Everything that makes `stage` stale compared with its lock entry:
/// the recorded fingerprint against `now`, field by field, then the
/// outputs on disk against the recorded ones. `deps` are the current dep
/// hashes (`None` for a missing dep), `outs` the current output hashes in
/// declaration order.
pub fn compare(
    stage: &Stage,
    locked: Option<&LockStage>,
    now: &Fingerprint,
    deps: &[(RelPath, Option<PathRecord>)],
    outs: &[(RelPath, Option<PathRecord>)],
) -> Vec<StaleReason> {
    let mut reasons = Vec::new();
    for (path, now) in deps {
        if now.is_none() {
            reasons.push(StaleReason::DepMissing { path: path.clone() });
        }
    }
    let Some(locked) = locked else {
        reasons.insert(0, StaleReason::NeverRun);
        return reasons;
    };
    if stage.always_changed {
        reasons.push(StaleReason::AlwaysChanged);
    }
    let old = locked.fingerprint();
    if (now.cmd != old.cmd && !explained_by_params(stage, locked))
        || now.uses != old.uses
        || now.version != old.version
        || now.with != old.with
        || now.wdir != old.wdir
    {
        let mut was = describe_action(&old);
        let mut is = describe_action(now);
        if was == is {
            // Same command, other arguments or working directory.
            was = format!(
                "{was} with {} in {}",
                serde_json::to_string(&old.with).unwrap_or_default(),
                old.wdir
            );
            is = format!(
                "{is} with {} in {}",
                serde_json::to_string(&now.with).unwrap_or_default(),
                now.wdir
            );
        }
        reasons.push(StaleReason::CommandChanged { old: was, new: is });
    }
    reasons.extend(param_changes(&old.params, &now.params));

    let recorded: BTreeMap<&RelPath, &Digest> = old.deps.iter().map(|d| (&d.0, &d.1)).collect();
    for (path, seen) in deps {
        match (recorded.get(path), seen) {
            (None, _) => reasons.push(StaleReason::DepAdded { path: path.clone() }),
            (Some(&old), Some(seen)) if *old != seen.blake3 => {
                reasons.push(StaleReason::DepModified { path: path.clone() })
            }
            _ => {}
        }
    }
    for DepHash(path, _) in &old.deps {
        if !deps.iter().any(|(p, _)| p == path) {
            reasons.push(StaleReason::DepRemoved { path: path.clone() });
        }
    }
    for dep in &now.url_deps {
        match old.url_deps.iter().find(|d| d.url == dep.url) {
            None => reasons.push(StaleReason::UrlDepAdded {
                url: dep.url.clone(),
            }),
            Some(was) if !dep.version.same_as(&was.version) => {
                reasons.push(StaleReason::UrlDepModified {
                    url: dep.url.clone(),
                })
            }
            Some(_) => {}
        }
    }
    for dep in &old.url_deps {
        if !now.url_deps.iter().any(|d| d.url == dep.url) {
            reasons.push(StaleReason::UrlDepRemoved {
                url: dep.url.clone(),
            });
        }
    }

    let declared: BTreeMap<&RelPath, &OutDecl> = old.outs.iter().map(|o| (&o.0, o)).collect();
    for out in &now.outs {
        let Some(was) = declared.get(&out.0) else {
            reasons.push(StaleReason::OutputAdded {
                path: out.0.clone(),
            });
            continue;
        };
        for (option, old, new) in [("cache", was.1, out.1), ("persist", was.2, out.2)] {
            if old != new {
                reasons.push(StaleReason::OutputOptionChanged {
                    path: out.0.clone(),
                    option: option.into(),
                    old,
                    new,
                });
            }
        }
    }
    for OutDecl(path, _, _) in &old.outs {
        if !now.outs.iter().any(|o| &o.0 == path) {
            reasons.push(StaleReason::OutputRemoved { path: path.clone() });
        }
    }
    let hashes: BTreeMap<&RelPath, &PathRecord> =
        locked.outs.iter().map(|o| (&o.path, o)).collect();
    for (path, seen) in outs {
        match (hashes.get(path), seen) {
            (None, _) => {} // reported as added above
            (Some(_), None) => reasons.push(StaleReason::OutputMissing { path: path.clone() }),
            (Some(old), Some(seen)) if old.blake3 != seen.blake3 => {
                reasons.push(StaleReason::OutputModified { path: path.clone() })
            }
            _ => {}
        }
    }
    reasons
}

/// True when the recorded command is the stage's command template rendered
/// with the recorded param values: only params changed, and those are
/// reported on their own.
fn explained_by_params(stage: &Stage, locked: &LockStage) -> bool {
    let Some(old_cmd) = &locked.cmd else {
        return false;
    };
    if stage.cmd_template.is_empty() {
        return false;
    }
    let recorded = locked.params.get(DEFAULT_PARAMS_FILE);
    let old_value = |name: &str| -> Option<yaml_serde::Value> {
        let from_lock = recorded.and_then(|keys| {
            keys.iter().find_map(|(key, value)| {
                if key == name {
                    return Some(value);
                }
                let rest = name.strip_prefix(key.as_str())?.strip_prefix('.')?;
                rest.split('.').try_fold(value, |v, part| v.get(part))
            })
        });
        let value = from_lock.or_else(|| stage.cmd_vars.get(name))?;
        yaml_serde::to_value(value).ok()
    };
    let rendered: Result<Vec<String>, _> = stage
        .cmd_template
        .iter()
        .map(|t| {
            crate::spec::template::render_with(
                t,
                crate::spec::template::Field::Cmd,
                crate::spec::template::Parsing::default(),
                old_value,
            )
        })
        .collect();
    rendered.as_ref() == Ok(old_cmd)
}

/// Leaf-by-leaf differences between recorded and current param values.
fn param_changes(old: &ParamValues, new: &ParamValues) -> Vec<StaleReason> {
    let leaves = |values: &ParamValues| {
        let mut out = BTreeMap::new();
        for (file, keys) in values {
            for (key, value) in keys {
                let mut flat = BTreeMap::new();
                flatten(key, value, &mut flat);
                for (k, v) in flat {
                    let name = match (file.as_str() == DEFAULT_PARAMS_FILE, k.is_empty()) {
                        (_, true) => file.clone(),
                        (true, false) => k,
                        (false, false) => format!("{file}:{k}"),
                    };
                    out.insert(name, v);
                }
            }
        }
        out
    };
    let (old, new) = (leaves(old), leaves(new));
    let mut reasons = Vec::new();
    for (key, value) in &new {
        match old.get(key) {
            Some(o) if o == value => {}
            o => reasons.push(StaleReason::ParamChanged {
                key: key.clone(),
                old: o.cloned(),
                new: Some(value.clone()),
            }),
        }
    }
    for (key, value) in &old {
        if !new.contains_key(key) {
            reasons.push(StaleReason::ParamChanged {
                key: key.clone(),
                old: Some(value.clone()),
                new: None,
            });
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{OutKind, Output};

    fn stage(cmd: &str) -> Stage {
        Stage {
            name: "train".into(),
            desc: None,
            action: Action::Cmd(vec![cmd.into()]),
            wdir: RelPath::root(),
            deps: vec![rel("data.csv")],
            url_deps: vec![],
            outs: vec![Output {
                path: rel("model.bin"),
                kind: OutKind::Out,
                cache: true,
                persist: false,
                dir: false,
                plot: None,
            }],
            inner: vec![],
            params: vec![],
            frozen: false,
            always_changed: false,
            cmd_template: vec![],
            cmd_vars: BTreeMap::new(),
            file: 0,
            executor: None,
            resources: Default::default(),
        }
    }

    fn rel(s: &str) -> RelPath {
        RelPath::parse(s, None).unwrap()
    }

    fn record(path: &str, bytes: &[u8]) -> PathRecord {
        PathRecord {
            path: rel(path),
            blake3: Digest::of(bytes),
            size: bytes.len() as u64,
            nfiles: None,
            cache: true,
            persist: false,
        }
    }

    fn fingerprint(stage: &Stage, params: &ParamValues, deps: &[PathRecord]) -> Digest {
        Fingerprint::of(stage, params, deps).digest()
    }

    fn now(
        stage: &Stage,
        params: &ParamValues,
        deps: &[(RelPath, Option<PathRecord>)],
    ) -> Fingerprint {
        let existing: Vec<PathRecord> = deps.iter().filter_map(|(_, r)| r.clone()).collect();
        Fingerprint::of(stage, params, &existing)
    }

    #[test]
    fn the_digest_is_the_one_earlier_versions_computed() {
        // Run-cache entries written before the fingerprint was a struct
        // keep their keys: the hashed document did not change.
        let mut s = stage("python train.py");
        s.wdir = rel("sub");
        s.outs.push(Output {
            path: rel("log.txt"),
            kind: OutKind::Out,
            cache: false,
            persist: true,
            dir: false,
            plot: None,
        });
        let mut p = ParamValues::new();
        p.entry("params.yaml".into())
            .or_default()
            .insert("fit".into(), json!({"C": 1.5, "n": 3}));
        let deps = [record("data.csv", b"a")];
        assert_eq!(
            fingerprint(&s, &p, &deps).to_hex(),
            "5b99e135b7730663ef0f0cbeb29945f9231227d5819ceb82f29ed95f223b8bbd"
        );
        s.action = Action::Builtin {
            name: "fit".into(),
            version: 3,
            args: [("model".to_string(), json!("m.json"))].into(),
        };
        assert_eq!(
            fingerprint(&s, &p, &deps).to_hex(),
            "827a910934401dd589ffc7ac9338da8a6fb5d8189c6636d40026a95c519778a5"
        );
    }

    #[test]
    fn a_url_dep_version_changes_the_digest_and_is_a_reason() {
        let s = stage("train");
        let deps = [record("data.csv", b"a")];
        let url = |etag: &str| UrlDep {
            url: "s3://b/k.tsv".into(),
            version: crate::remote::source::ObjectVersion {
                etag: Some(etag.into()),
                ..Default::default()
            },
        };
        let plain = Fingerprint::of(&s, &params(1.0), &deps);
        let v1 = plain.clone().with_urls(&[url("\"1\"")]);
        let v2 = plain.clone().with_urls(&[url("\"2\"")]);
        assert_ne!(plain.digest(), v1.digest());
        assert_ne!(v1.digest(), v2.digest());
        let out = record("model.bin", b"m");
        let locked = lock_entry(&s, &params(1.0), &deps, &[url("\"1\"")], vec![out.clone()]);
        let seen = vec![(rel("data.csv"), Some(record("data.csv", b"a")))];
        let outs = vec![(rel("model.bin"), Some(out))];
        assert!(compare(&s, Some(&locked), &v1, &seen, &outs).is_empty());
        let reasons: Vec<String> = compare(&s, Some(&locked), &v2, &seen, &outs)
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(reasons, ["dep s3://b/k.tsv modified"]);
        let reasons: Vec<String> = compare(&s, Some(&locked), &plain, &seen, &outs)
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(reasons, ["dep s3://b/k.tsv removed"]);
    }

    #[test]
    fn whatever_changes_the_digest_is_a_stale_reason() {
        // The recorded fingerprint and the current one are the same struct:
        // an output option that changes the key is reported too.
        let s = stage("train");
        let deps = [record("data.csv", b"a")];
        let outs = vec![(rel("model.bin"), Some(record("model.bin", b"m")))];
        let locked = lock_entry(
            &s,
            &params(1.0),
            &deps,
            &[],
            vec![record("model.bin", b"m")],
        );
        let dep_seen = vec![(rel("data.csv"), Some(deps[0].clone()))];
        let mut changed = s.clone();
        changed.outs[0].cache = false;
        changed.outs[0].persist = true;
        let fp = now(&changed, &params(1.0), &dep_seen);
        assert_ne!(fp.digest(), locked.fingerprint().digest());
        let reasons: Vec<String> = compare(&changed, Some(&locked), &fp, &dep_seen, &outs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            reasons,
            [
                "output model.bin: cache changed: true → false",
                "output model.bin: persist changed: false → true",
            ]
        );
        assert_eq!(
            locked.fingerprint(),
            now(&s, &params(1.0), &dep_seen),
            "an unchanged stage has the fingerprint its lock records"
        );
    }

    fn params(c: f64) -> ParamValues {
        let mut p = ParamValues::new();
        p.entry("params.yaml".into())
            .or_default()
            .insert("fit".into(), json!({"C": c, "tol": 0.001}));
        p
    }

    #[test]
    fn fingerprint_depends_on_command_params_and_dep_content_only() {
        let s = stage("train");
        let deps = [record("data.csv", b"a")];
        let base = fingerprint(&s, &params(1.0), &deps);
        assert_eq!(base, fingerprint(&s, &params(1.0), &deps));
        assert_ne!(base, fingerprint(&stage("train2"), &params(1.0), &deps));
        assert_ne!(base, fingerprint(&s, &params(2.0), &deps));
        assert_ne!(
            base,
            fingerprint(&s, &params(1.0), &[record("data.csv", b"b")])
        );
    }

    #[test]
    fn compare_names_every_change_in_words() {
        let s = stage("train --fast");
        let locked = lock_entry(
            &stage("train"),
            &params(100000.0),
            &[record("data.csv", b"a")],
            &[],
            vec![record("model.bin", b"m")],
        );
        let deps = vec![(rel("data.csv"), Some(record("data.csv", b"b")))];
        let outs = vec![(rel("model.bin"), None)];
        let reasons: Vec<String> = compare(
            &s,
            Some(&locked),
            &now(&s, &params(1.0), &deps),
            &deps,
            &outs,
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            reasons,
            [
                "command changed: `train` → `train --fast`",
                "param fit.C changed: 100000.0 → 1.0",
                "dep data.csv modified",
                "output model.bin missing",
            ]
        );
    }

    #[test]
    fn a_long_command_change_shows_the_part_that_differs() {
        let old = format!("awk -v a=1 '{}' data.tsv", "x".repeat(100));
        let new = format!("awk -v a=2 '{}' data.tsv", "x".repeat(100));
        let reason = StaleReason::CommandChanged { old, new };
        assert_eq!(
            reason.to_string(),
            "command changed: `awk -v a=1 'xxxxxxxxxxxxxx…` → `awk -v a=2 'xxxxxxxxxxxxxx…`"
        );
    }

    #[test]
    fn a_command_changed_only_by_its_params_is_reported_as_the_params() {
        let mut s = stage("train --c 1");
        s.cmd_template = vec!["train --c ${fit.C} --n ${n}".into()];
        s.cmd_vars = [
            ("fit.C".to_string(), json!(1.0)),
            ("n".to_string(), json!(5)),
        ]
        .into();
        s.action = Action::Cmd(vec!["train --c 1.0 --n 5".into()]);
        let mut locked = lock_entry(
            &s,
            &params(100000.0),
            &[],
            &[],
            vec![record("model.bin", b"m")],
        );
        locked.cmd = Some(vec!["train --c 100000.0 --n 5".into()]);
        let reasons: Vec<String> =
            compare(&s, Some(&locked), &now(&s, &params(1.0), &[]), &[], &[])
                .iter()
                .map(ToString::to_string)
                .collect();
        assert_eq!(reasons, ["param fit.C changed: 100000.0 → 1.0"]);
        // An edit of the command itself is still reported.
        locked.cmd = Some(vec!["train --c 100000.0 --n 5 --old-flag".into()]);
        let reasons = compare(&s, Some(&locked), &now(&s, &params(1.0), &[]), &[], &[]);
        assert!(
            matches!(reasons[0], StaleReason::CommandChanged { .. }),
            "{reasons:?}"
        );
    }

    #[test]
    fn nothing_changed_means_no_reasons() {
        let s = stage("train");
        let deps = [record("data.csv", b"a")];
        let locked = lock_entry(
            &s,
            &params(1.0),
            &deps,
            &[],
            vec![record("model.bin", b"m")],
        );
        let now_deps = vec![(rel("data.csv"), Some(deps[0].clone()))];
        let now_outs = vec![(rel("model.bin"), Some(record("model.bin", b"m")))];
        let fp = now(&s, &params(1.0), &now_deps);
        assert!(compare(&s, Some(&locked), &fp, &now_deps, &now_outs).is_empty());
        assert_eq!(
            compare(&s, None, &fp, &now_deps, &now_outs),
            [StaleReason::NeverRun]
        );
    }
}
