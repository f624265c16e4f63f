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
use crate::lock::{LockStage, PathRecord};
use crate::paths::RelPath;
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
            StaleReason::OutputMissing { path } => write!(f, "output {path} missing"),
            StaleReason::OutputModified { path } => write!(f, "output {path} modified"),
            StaleReason::OutputAdded { path } => write!(f, "output {path} added"),
            StaleReason::OutputRemoved { path } => write!(f, "output {path} no longer declared"),
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

/// The lock fields `cmd`, `uses`, `version` and `with`.
pub type ActionFields = (
    Option<Vec<String>>,
    Option<String>,
    Option<u32>,
    BTreeMap<String, Json>,
);

/// The lock fields that describe what a stage does.
pub fn action_fields(action: &Action) -> ActionFields {
    match action {
        Action::Cmd(cmds) => (Some(cmds.clone()), None, None, BTreeMap::new()),
        Action::Builtin {
            name,
            version,
            args,
        } => (None, Some(name.clone()), Some(*version), args.clone()),
    }
}

/// The lock entry of a stage that has just run with these inputs and outputs.
pub fn lock_entry(
    stage: &Stage,
    params: &ParamValues,
    deps: &[PathRecord],
    outs: Vec<PathRecord>,
) -> LockStage {
    let (cmd, uses, version, with) = action_fields(&stage.action);
    LockStage {
        cmd,
        uses,
        version,
        with,
        wdir: stage.wdir.clone(),
        params: params.clone(),
        deps: deps.to_vec(),
        outs,
    }
}

/// The stage's fingerprint for these param values and dep hashes.
pub fn fingerprint(stage: &Stage, params: &ParamValues, deps: &[PathRecord]) -> Digest {
    let (cmd, uses, version, with) = action_fields(&stage.action);
    let doc = json!({
        "schema": FINGERPRINT_SCHEMA,
        "cmd": cmd,
        "uses": uses,
        "version": version,
        "with": with,
        "wdir": stage.wdir,
        "params": params,
        "deps": deps.iter().map(|d| json!([d.path, d.blake3])).collect::<Vec<_>>(),
        "outs": stage.outs.iter().map(|o| json!([o.path, o.cache, o.persist])).collect::<Vec<_>>(),
    });
    // serde_json's default map is a BTreeMap: keys are sorted, the encoding canonical.
    Digest::of(&serde_json::to_vec(&doc).expect("a fingerprint serializes"))
}

fn describe_action(
    cmd: &Option<Vec<String>>,
    uses: &Option<String>,
    version: &Option<u32>,
) -> String {
    match (cmd, uses) {
        (Some(c), _) => c.join(" && "),
        (None, Some(u)) => format!("uses: {u} v{}", version.unwrap_or(0)),
        (None, None) => String::new(),
    }
}

/// Everything that makes `stage` stale compared with its lock entry.
/// `deps` are the current dep hashes (`None` for a missing dep), `outs` the
/// current output hashes in declaration order.
pub fn compare(
    stage: &Stage,
    locked: Option<&LockStage>,
    params: &ParamValues,
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
    let (cmd, uses, version, with) = action_fields(&stage.action);
    if (cmd != locked.cmd && !explained_by_params(stage, locked))
        || uses != locked.uses
        || version != locked.version
        || with != locked.with
        || stage.wdir != locked.wdir
    {
        let mut old = describe_action(&locked.cmd, &locked.uses, &locked.version);
        let mut new = describe_action(&cmd, &uses, &version);
        if old == new {
            // Same command, other arguments or working directory.
            old = format!(
                "{old} with {} in {}",
                serde_json::to_string(&locked.with).unwrap_or_default(),
                locked.wdir
            );
            new = format!(
                "{new} with {} in {}",
                serde_json::to_string(&with).unwrap_or_default(),
                stage.wdir
            );
        }
        reasons.push(StaleReason::CommandChanged { old, new });
    }
    reasons.extend(param_changes(&locked.params, params));

    let recorded: BTreeMap<&RelPath, &PathRecord> =
        locked.deps.iter().map(|d| (&d.path, d)).collect();
    for (path, now) in deps {
        match (recorded.get(path), now) {
            (None, _) => reasons.push(StaleReason::DepAdded { path: path.clone() }),
            (Some(old), Some(now)) if old.blake3 != now.blake3 => {
                reasons.push(StaleReason::DepModified { path: path.clone() })
            }
            _ => {}
        }
    }
    for old in &locked.deps {
        if !deps.iter().any(|(p, _)| p == &old.path) {
            reasons.push(StaleReason::DepRemoved {
                path: old.path.clone(),
            });
        }
    }

    let recorded: BTreeMap<&RelPath, &PathRecord> =
        locked.outs.iter().map(|o| (&o.path, o)).collect();
    for (path, now) in outs {
        match (recorded.get(path), now) {
            (None, _) => reasons.push(StaleReason::OutputAdded { path: path.clone() }),
            (Some(_), None) => reasons.push(StaleReason::OutputMissing { path: path.clone() }),
            (Some(old), Some(now)) if old.blake3 != now.blake3 => {
                reasons.push(StaleReason::OutputModified { path: path.clone() })
            }
            _ => {}
        }
    }
    for old in &locked.outs {
        if !outs.iter().any(|(p, _)| p == &old.path) {
            reasons.push(StaleReason::OutputRemoved {
                path: old.path.clone(),
            });
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
    let old_value = |name: &str| -> Option<serde_yaml::Value> {
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
        serde_yaml::to_value(value).ok()
    };
    let rendered: Result<Vec<String>, _> = stage
        .cmd_template
        .iter()
        .map(|t| crate::spec::template::render_with(t, old_value))
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
            outs: vec![Output {
                path: rel("model.bin"),
                kind: OutKind::Out,
                cache: true,
                persist: false,
                dir: false,
            }],
            params: vec![],
            frozen: false,
            always_changed: false,
            cmd_template: vec![],
            cmd_vars: BTreeMap::new(),
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
        }
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
            vec![record("model.bin", b"m")],
        );
        let deps = vec![(rel("data.csv"), Some(record("data.csv", b"b")))];
        let outs = vec![(rel("model.bin"), None)];
        let reasons: Vec<String> = compare(&s, Some(&locked), &params(1.0), &deps, &outs)
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
        let mut locked = lock_entry(&s, &params(100000.0), &[], vec![]);
        locked.cmd = Some(vec!["train --c 100000.0 --n 5".into()]);
        let reasons: Vec<String> = compare(&s, Some(&locked), &params(1.0), &[], &[])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(reasons, ["param fit.C changed: 100000.0 → 1.0"]);
        // An edit of the command itself is still reported.
        locked.cmd = Some(vec!["train --c 100000.0 --n 5 --old-flag".into()]);
        let reasons = compare(&s, Some(&locked), &params(1.0), &[], &[]);
        assert!(
            matches!(reasons[0], StaleReason::CommandChanged { .. }),
            "{reasons:?}"
        );
    }

    #[test]
    fn nothing_changed_means_no_reasons() {
        let s = stage("train");
        let deps = [record("data.csv", b"a")];
        let locked = lock_entry(&s, &params(1.0), &deps, vec![record("model.bin", b"m")]);
        let now_deps = vec![(rel("data.csv"), Some(deps[0].clone()))];
        let now_outs = vec![(rel("model.bin"), Some(record("model.bin", b"m")))];
        assert!(compare(&s, Some(&locked), &params(1.0), &now_deps, &now_outs).is_empty());
        assert_eq!(
            compare(&s, None, &params(1.0), &now_deps, &now_outs),
            [StaleReason::NeverRun]
        );
    }
}
