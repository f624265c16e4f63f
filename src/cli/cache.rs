//! `pipe cache verify`: rehash the whole cache.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Subcommand};
use serde::Serialize;

use pipe::cache::{human_bytes, DamagedObject};
use pipe::hash::Digest;
use pipe::lock::LockFile;
use pipe::run::{Event, Reporter, ReproLock};

use super::progress::{secs, Progress};
use super::{load_project, print, CliError};

/// Inspect the content-addressed cache in .pipeline-cache/.
#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    Verify(VerifyArgs),
}

/// Rehash every object in the cache and set aside the damaged ones, naming
/// the outputs of pipeline.lock they belong to. Exits 1 when damage was
/// found. (Objects are also checked each time one is restored.)
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Damaged {
    hash: Digest,
    manifest: bool,
    moved_to: String,
    /// The outputs of pipeline.lock it is (part of), as `stage: path`.
    outputs: Vec<String>,
}

#[derive(Serialize)]
struct Report {
    objects: usize,
    manifests: usize,
    bytes: u64,
    damaged: Vec<Damaged>,
    strays: Vec<String>,
}

pub fn run(cwd: &Path, args: CacheArgs) -> Result<ExitCode, CliError> {
    let CacheCommand::Verify(args) = args.command;
    let project = load_project(cwd)?;
    let progress = Progress::new();
    let _guard = ReproLock::acquire(&project.cache_root(), |holder| {
        progress.event(Event::WaitingForLock { holder });
    })?;
    progress.finish();
    let started = Instant::now();
    project.cache.clean_staging();
    let lock = LockFile::read(&project.root).map_err(pipe::Error::from)?;
    // Which outputs use which object, before damaged ones are moved away.
    let mut users: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for (stage, entry) in &lock.stages {
        for out in &entry.outs {
            let name = format!("{stage}: {}", out.path);
            users.entry(out.blake3).or_default().push(name.clone());
            if out.is_dir() {
                if let Ok(manifest) = project.cache.manifest(&out.blake3) {
                    for e in manifest.files() {
                        users
                            .entry(e.hash)
                            .or_default()
                            .push(format!("{stage}: {}", out.path.join(&e.path)));
                    }
                }
            }
        }
    }
    let found = project.cache.verify_all().map_err(pipe::Error::from)?;
    let shown = |p: &Path| {
        p.strip_prefix(&project.root)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let damaged: Vec<Damaged> = found
        .damaged
        .iter()
        .map(|d: &DamagedObject| Damaged {
            hash: d.hash,
            manifest: d.manifest,
            moved_to: shown(&d.moved_to),
            outputs: users.get(&d.hash).cloned().unwrap_or_default(),
        })
        .collect();
    let report = Report {
        objects: found.objects,
        manifests: found.manifests,
        bytes: found.bytes,
        damaged,
        strays: found.strays.iter().map(|p| shown(p)).collect(),
    };
    let bad = !report.damaged.is_empty();
    if args.json {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("a report serializes")
        ))?;
    } else {
        let mut out = format!(
            "Checked {} objects ({}) and {} directory manifests in {}: {}.\n",
            report.objects,
            human_bytes(report.bytes),
            report.manifests,
            secs(started.elapsed()),
            if bad {
                format!("{} damaged", report.damaged.len())
            } else {
                "all intact".into()
            }
        );
        for d in &report.damaged {
            let what = if d.manifest {
                "directory manifest"
            } else {
                "object"
            };
            let whose = if d.outputs.is_empty() {
                "not used by pipeline.lock (an experiment's or the run cache's)".to_string()
            } else {
                d.outputs.join(", ")
            };
            out.push_str(&format!(
                "damaged {what} {}… ({whose}): moved aside to {}\n",
                &d.hash.to_hex()[..12],
                d.moved_to
            ));
        }
        for s in &report.strays {
            out.push_str(&format!("not an object (left alone): {s}\n"));
        }
        print(&out)?;
    }
    if bad {
        return Err(CliError {
            message: "the cache held damaged objects; they were moved aside and will not be used"
                .into(),
            hints: vec![
                "run `pipe repro` to compute the damaged outputs again (`pipe repro -f STAGE` for one that is up to date in the workspace)".into(),
            ],
            code: 1,
        });
    }
    Ok(ExitCode::SUCCESS)
}
