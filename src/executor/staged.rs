//! Cluster jobs on nodes that share no filesystem with the project: the
//! files go through the remote (`[executor] files = "remote"`).
//!
//! Before the job is submitted, `pipe` stores the stage's inputs (its deps
//! and its params files) in the cache and pushes them to the remote, as
//! `pipe push` would (what the remote is known to hold is not sent again).
//! The job script carries a [`JobSpec`]: what the stage runs, its outputs,
//! the inputs by path and BLAKE3, the remote (its URL and options, never a
//! secret: those reach the job through the environment the scheduler
//! passes on, see [`secret_env`]) and a random token.
//!
//! On the node, `pipe __job` ([`run_on_node`]) makes a scratch directory
//! (under `$TMPDIR`), downloads the inputs into a cache of its own (each
//! checked against its BLAKE3, as every download is) and puts them in
//! place, runs the stage's commands (or built-in) there, hashes the
//! outputs, pushes them (and, for a stage the run cache serves, the
//! run-cache entry under the fingerprint `pipe` computed, so a teammate's
//! `repro --pull` finds it too), and leaves a [`JobResult`] (the outputs,
//! or why the stage failed, and what it printed) on the remote under its
//! token. The job script makes the scratch directory and removes it as it
//! ends, cancelled or not.
//!
//! Once the scheduler says the job ended, `pipe` reads the result
//! ([`bring_back`]): it shows the job's output with the stage's prefix,
//! downloads the outputs (verified) into the cache, puts them in the
//! workspace, and only then deletes the result: a run that fails to bring
//! it back keeps the job's record, and the next run reads the result again
//! instead of submitting the stage. From there the stage is committed as
//! after a local run. A result that names other outputs than the stage's,
//! or objects that do not match their names, changes nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::cache::runs::RunRecord;
use crate::cache::{Cache, LinkMode};
use crate::hash::{Digest, Hasher, StatCache};
use crate::lock::PathRecord;
use crate::paths::RelPath;
use crate::remote::{ObjectSet, Remote, RemoteConfig};
use crate::run::{Event, Interrupt, Reporter, Stream};
use crate::spec::params::ParamValues;

/// The hidden argument that makes `pipe` run the job of a [`JobSpec`]
/// read from stdin.
pub const JOB_ARG: &str = "__job";

/// The scratch directory the job script made (and removes as it ends).
pub const SCRATCH_VAR: &str = "PIPE_JOB_SCRATCH";

/// Environment variables that carry a remote's secret options to the job
/// (`PIPE_REMOTE_SECRET_ACCESS_KEY`, …).
const SECRET_PREFIX: &str = "PIPE_REMOTE_";

/// A `wdir` as text: the project root is the empty string, which a
/// [`RelPath`] does not parse from.
mod wdir_text {
    use super::RelPath;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(wdir: &RelPath, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(wdir.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RelPath, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(RelPath::root());
        }
        RelPath::normalized(&text).map_err(serde::de::Error::custom)
    }
}

/// What a job does, as its script carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub stage: String,
    /// Names this submission's result on the remote.
    pub token: String,
    /// The stage's `wdir`, in the project (empty: the project root).
    #[serde(with = "wdir_text")]
    pub wdir: RelPath,
    pub work: StagedWork,
    pub outs: Vec<StagedOut>,
    /// The stage's deps and params files.
    pub inputs: Vec<PathRecord>,
    /// The fingerprint to record the run under, for a stage the run cache
    /// serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_cache: Option<Digest>,
    pub remote: StagedRemote,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StagedWork {
    Commands(Vec<String>),
    Builtin {
        name: String,
        args: BTreeMap<String, Json>,
        params: ParamValues,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedOut {
    pub path: RelPath,
    pub dir: bool,
    pub cache: bool,
}

/// A remote without its secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedRemote {
    pub name: String,
    pub url: String,
    pub options: BTreeMap<String, String>,
}

/// What a job did, left on the remote for `pipe`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// Why the stage failed; `None` when it ran and its outputs are on the
    /// remote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub outs: Vec<PathRecord>,
    /// What the stage printed, a line each (the last [`LOG_LIMIT`] bytes).
    #[serde(default)]
    pub log: Vec<LogLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub err: bool,
    pub line: String,
}

/// The most output a result keeps (its end).
pub const LOG_LIMIT: usize = 1 << 20;

impl StagedRemote {
    /// `config` without its secret options; a local path made absolute
    /// (the job does not start in the project).
    pub fn of(config: &RemoteConfig, root: &Path) -> StagedRemote {
        let url = match crate::remote::url::Location::parse(&config.url, root) {
            Ok(crate::remote::url::Location::Local { dir }) => dir.display().to_string(),
            _ => config.url.clone(),
        };
        StagedRemote {
            name: config.name.clone(),
            url,
            options: config
                .options
                .iter()
                .filter(|(k, _)| !crate::remote::config::is_secret(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The remote's config on the node: its options, and the secrets the
    /// environment carries, which are taken out of it (the stage's
    /// commands must not see them, nor print them into the log). Called
    /// before any thread starts.
    fn config(&self) -> RemoteConfig {
        let mut options = self.options.clone();
        for (var, value) in std::env::vars() {
            if let Some(key) = var.strip_prefix(SECRET_PREFIX) {
                let key = key.to_ascii_lowercase();
                if crate::remote::config::is_secret(&key) {
                    options.insert(key, value);
                    std::env::remove_var(&var);
                }
            }
        }
        RemoteConfig {
            name: self.name.clone(),
            url: self.url.clone(),
            options,
        }
    }
}

/// The environment that carries `config`'s secret options to a job (the
/// scheduler passes the submitting process's environment on, as Slurm's
/// `--export=ALL` does), so they are never written in a job script.
pub fn secret_env(config: &RemoteConfig) -> Vec<(String, String)> {
    config
        .options
        .iter()
        .filter(|(k, _)| crate::remote::config::is_secret(k))
        .map(|(k, v)| {
            (
                format!("{SECRET_PREFIX}{}", k.to_ascii_uppercase()),
                v.clone(),
            )
        })
        .collect()
}

/// A fresh token for one submission: 128 random bits, so that no two
/// machines sharing a remote ever pick the same.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness source: the time, the pid and a counter, hashed.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = format!(
            "{:?} {} {}",
            std::time::SystemTime::now(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        bytes.copy_from_slice(&blake3::hash(seed.as_bytes()).as_bytes()[..16]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends a job's output to its stdout and stderr (the scheduler's files)
/// and keeps it for the result.
struct Collect {
    log: Mutex<(std::collections::VecDeque<LogLine>, usize)>,
}

impl Collect {
    fn push(&self, err: bool, line: String) {
        if err {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.1 += line.len() + 1;
        log.0.push_back(LogLine { err, line });
        while log.1 > LOG_LIMIT && log.0.len() > 1 {
            if let Some(first) = log.0.pop_front() {
                log.1 -= first.line.len() + 1;
            }
        }
    }

    fn take(&self) -> Vec<LogLine> {
        std::mem::take(&mut self.log.lock().unwrap_or_else(|e| e.into_inner()).0).into()
    }
}

impl Reporter for Collect {
    fn event(&self, event: Event<'_>) {
        if let Event::Output { stream, line, .. } = event {
            self.push(stream == Stream::Stderr, line.to_string())
        }
    }
}

/// Which way [`transfer`] moves objects.
#[derive(Clone, Copy)]
pub enum Way {
    Up,
    Down,
}

/// Moves the objects of `records` (and, up, the run-cache entries `runs`)
/// between `cache` and `remote`; what could not be moved is an error
/// naming `what` and the remote.
pub fn transfer(
    remote: &Remote,
    cache: &Cache,
    records: &[PathRecord],
    runs: BTreeMap<Digest, RunRecord>,
    way: Way,
    what: &str,
) -> Result<(), String> {
    let mut set = ObjectSet {
        records: Vec::new(),
        runs,
    };
    for r in records {
        set.add(r);
    }
    let quiet = crate::remote::transfer::Quiet;
    let (verb, side) = match way {
        Way::Up => ("upload", "to"),
        Way::Down => ("download", "from"),
    };
    let report = match way {
        Way::Up => remote.push(cache, &set, false, &quiet),
        Way::Down => remote.fetch(cache, &set, &quiet),
    }
    .map_err(|e| crate::run::with_hint(&format!("cannot {verb} {what}: {e}"), e.hint()))?;
    if !report.ok() {
        let why: Vec<String> = report.missing.into_iter().chain(report.failed).collect();
        return Err(format!(
            "cannot {verb} {what} {side} remote {}: {}",
            remote.name,
            why.join("; ")
        ));
    }
    Ok(())
}

/// `pipe __job` on a node: reads the spec from stdin, runs the stage in a
/// scratch directory, leaves the result on the remote. The exit code: 0
/// when the stage ran, 1 when it failed, 2 when no result could be left.
pub fn run_on_node() -> i32 {
    let mut text = String::new();
    if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
        eprintln!("pipe: cannot read the job's description: {e}");
        return 2;
    }
    let spec: JobSpec = match serde_json::from_str(&text) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("pipe: the job's description is not valid ({e}); was it written by another version of pipe?");
            return 2;
        }
    };
    // Taken out of the environment before anything else runs.
    let config = spec.remote.config();
    // The script's scratch directory, else one of this process's own.
    let own;
    let root = match std::env::var_os(SCRATCH_VAR) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => match tempfile::Builder::new().prefix("pipe-job-").tempdir() {
            Ok(dir) => {
                own = dir;
                own.path().to_path_buf()
            }
            Err(e) => {
                eprintln!(
                    "pipe: cannot make a scratch directory in {}: {e}",
                    std::env::temp_dir().display()
                );
                return 2;
            }
        },
    };
    let root = root.as_path();
    let cache = Cache::new(root, LinkMode::Copy);
    let remote = match Remote::open(root, &config, cache.dir()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pipe: {e}");
            return 2;
        }
    };
    let collect = Collect {
        log: Mutex::new((Default::default(), 0)),
    };
    let result = match run_in(root, &cache, &remote, &spec, &collect) {
        Ok(outs) => JobResult {
            error: None,
            outs,
            log: collect.take(),
        },
        Err(message) => {
            // For the scheduler's log; `pipe` shows it from the result.
            eprintln!("pipe: stage {}: {message}", spec.stage);
            JobResult {
                error: Some(message),
                outs: Vec::new(),
                log: collect.take(),
            }
        }
    };
    let _ = std::io::stdout().flush();
    let bytes = serde_json::to_vec(&result).expect("a result serializes");
    if let Err(e) = remote.put_job_result(&spec.token, bytes) {
        eprintln!("pipe: cannot leave the job's result on the remote: {e}");
        return 2;
    }
    if result.error.is_some() {
        1
    } else {
        0
    }
}

/// Fetches the inputs, runs the stage, pushes the outputs: the outputs'
/// records, or why the stage failed.
fn run_in(
    root: &Path,
    cache: &Cache,
    remote: &Remote,
    spec: &JobSpec,
    reporter: &Collect,
) -> Result<Vec<PathRecord>, String> {
    let ws = crate::workspace::Workspace::open(root)
        .map_err(|e| format!("cannot open {}: {e}", root.display()))?;
    transfer(
        remote,
        cache,
        &spec.inputs,
        BTreeMap::new(),
        Way::Down,
        "the stage's inputs",
    )?;
    for r in &spec.inputs {
        cache
            .restore(&ws, r)
            .map_err(|e| format!("cannot put input {} in place: {e}", r.path))?;
    }
    for out in &spec.outs {
        let made = if out.dir {
            ws.create_dir_all(&out.path)
        } else {
            ws.create_parent(&out.path)
        };
        made.map_err(|e| e.to_string())?;
    }
    let cwd = spec.wdir.to_path(root);
    match &spec.work {
        StagedWork::Commands(commands) => {
            std::fs::create_dir_all(&cwd)
                .map_err(|e| format!("cannot make {}: {e}", cwd.display()))?;
            let pipe = std::env::current_exe().ok();
            let interrupt = Interrupt::new();
            let launch = crate::run::command::Launch {
                stage: &spec.stage,
                root,
                cwd: &cwd,
                env: &[],
                supervisor: pipe.as_deref(),
                interrupt: &interrupt,
            };
            crate::run::command::run_commands(&launch, commands, reporter)?;
        }
        StagedWork::Builtin { name, args, params } => {
            crate::run::run_builtin(root, &spec.wdir, name, args, params)?;
        }
    }
    let hasher = Hasher::new(root, StatCache::in_memory());
    let mut outs = Vec::new();
    for out in &spec.outs {
        let hashed = hasher
            .hash_output(&out.path)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the stage did not produce its output `{}`", out.path))?;
        cache
            .store(&ws, &out.path, &hashed)
            .map_err(|e| e.to_string())?;
        let mut record = PathRecord::new(out.path.clone(), &hashed);
        record.cache = out.cache;
        outs.push(record);
    }
    let mut runs = BTreeMap::new();
    if let Some(fingerprint) = spec.run_cache {
        let outs = outs
            .iter()
            .map(|r| PathRecord {
                cache: true,
                ..r.clone()
            })
            .collect();
        runs.insert(
            fingerprint,
            RunRecord {
                stage: spec.stage.clone(),
                outs,
            },
        );
    }
    transfer(remote, cache, &outs, runs, Way::Up, "the outputs")?;
    Ok(outs)
}

/// What `pipe` makes of a job's result.
pub enum Brought {
    /// The outputs are in the workspace.
    Done,
    /// The stage failed on the node: why.
    Failed(String),
    /// The job left no result.
    Missing,
}

/// Reads the result of the job with `token`: passes its output on as the
/// stage's, and on success puts the outputs (verified) in the cache and
/// the workspace. The result is deleted once read.
pub fn bring_back(
    cache: &Cache,
    ws: &crate::workspace::Workspace,
    stage: &crate::spec::Stage,
    remote: &Remote,
    token: &str,
    reporter: &dyn Reporter,
) -> Result<Brought, String> {
    let Some(bytes) = remote.get_job_result(token).map_err(|e| e.to_string())? else {
        return Ok(Brought::Missing);
    };
    let key = remote.shown_job_key(token);
    let result: JobResult = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "remote {}: {key} is not a job result ({e}); nothing of it was used",
            remote.name
        )
    })?;
    for l in &result.log {
        reporter.event(Event::Output {
            stage: &stage.name,
            stream: if l.err {
                Stream::Stderr
            } else {
                Stream::Stdout
            },
            line: &l.line,
        });
    }
    if let Some(error) = result.error {
        let _ = remote.delete_job_result(token);
        return Ok(Brought::Failed(error));
    }
    let same = result.outs.len() == stage.outs.len()
        && result
            .outs
            .iter()
            .zip(&stage.outs)
            .all(|(r, o)| r.path == o.path);
    if !same {
        return Err(format!(
            "remote {}: {key} names other outputs than the stage's; nothing of it was used",
            remote.name
        ));
    }
    transfer(
        remote,
        cache,
        &result.outs,
        BTreeMap::new(),
        Way::Down,
        "the job's outputs",
    )?;
    for r in &result.outs {
        cache.restore(ws, r).map_err(|e| e.to_string())?;
    }
    // Only now: until the outputs are in place, the next run can read the
    // result again.
    let _ = remote.delete_job_result(token);
    Ok(Brought::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_keeps_no_secret_and_reads_them_from_the_environment() {
        let config = RemoteConfig {
            name: "team".into(),
            url: "s3://bucket/prefix".into(),
            options: [
                ("endpoint_url".to_string(), "http://127.0.0.1:9".to_string()),
                ("secret_access_key".to_string(), "hush-hush".to_string()),
            ]
            .into(),
        };
        let staged = StagedRemote::of(&config, Path::new("/p"));
        assert_eq!(
            staged.options,
            BTreeMap::from([("endpoint_url".to_string(), "http://127.0.0.1:9".to_string())])
        );
        assert_eq!(
            secret_env(&config),
            [(
                "PIPE_REMOTE_SECRET_ACCESS_KEY".to_string(),
                "hush-hush".to_string()
            )]
        );
        let spec = JobSpec {
            stage: "train".into(),
            token: new_token(),
            wdir: RelPath::root(),
            work: StagedWork::Commands(vec!["echo hi".into()]),
            outs: vec![],
            inputs: vec![],
            run_cache: None,
            remote: staged,
        };
        let text = serde_json::to_string(&spec).unwrap();
        assert!(!text.contains("hush"), "{text}");
        assert!(!text.contains('\n'));
        assert_eq!(serde_json::from_str::<JobSpec>(&text).unwrap(), spec);
        assert_ne!(new_token(), new_token());
    }

    /// A result that names a file outside the stage's outputs, or outside
    /// the project, changes nothing in the workspace.
    #[test]
    fn a_lying_result_touches_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(
            root.join("pipeline.yaml"),
            "stages:\n  s:\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n",
        )
        .unwrap();
        std::fs::write(
            root.join("pipe.toml"),
            format!(
                "[remote.disk]\nurl = \"{}\"\n",
                dir.path().join("remote").display()
            ),
        )
        .unwrap();
        std::fs::write(root.join("keep.txt"), "mine\n").unwrap();
        let project = crate::project::Project::load(&root).unwrap();
        let (remote, _) = Remote::of_project(&project, None).unwrap();
        let stage = project.pipeline.stage("s").unwrap();
        let record = |path: &str| {
            format!(
                "{{\"path\": \"{path}\", \"blake3\": \"{}\", \"size\": 5}}",
                Digest::of(b"evil\n").to_hex()
            )
        };
        for (token, outs) in [
            ("other", record("keep.txt")),
            ("escape", record("../outside.txt")),
        ] {
            let result = format!("{{\"outs\": [{outs}], \"log\": []}}");
            remote.put_job_result(token, result.into_bytes()).unwrap();
            let brought = bring_back(
                &project.cache,
                &project.workspace,
                stage,
                &remote,
                token,
                &crate::run::Silent,
            );
            assert!(brought.is_err(), "{token}");
        }
        assert_eq!(
            std::fs::read_to_string(root.join("keep.txt")).unwrap(),
            "mine\n"
        );
        assert!(!dir.path().join("outside.txt").exists());
        assert!(!root.join("out.txt").exists());
    }
}
