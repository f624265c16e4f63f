//! The jobs a run has in a scheduler's queue, recorded in the project's
//! job directory (`.pipeline-cache/v1/jobs/`), one set of files per stage:
//!
//! - `KEY.json`: the [`JobRecord`] (stage, executor, job id, the stage's
//!   fingerprint when it was submitted), written before the job is
//!   submitted (with a token the scheduler keeps, and no id yet) and again
//!   right after the scheduler accepted it, so that a `pipe` killed in
//!   between leaves a record by which the job is found;
//! - `KEY.sh`: the job script; `KEY.out`, `KEY.err`: the job's stdout and
//!   stderr; `KEY.exit`: written by the script as it ends (see
//!   [`super::script`]).
//!
//! `KEY` is a hash of the stage's name (names hold `/`, `:` and `@`).
//! The files go once `pipe` has seen the job end. A `pipe` that was killed
//! leaves them, and the next run that must run the stage finds the record:
//! a job of the same fingerprint is followed (queued, running or ended
//! meanwhile) instead of submitted again; a job of other inputs is
//! cancelled. `pipe status` lists the recorded jobs that are still in the
//! queue.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Kind;

/// The files of one stage's job.
#[derive(Debug, Clone)]
pub struct JobFiles {
    pub record: PathBuf,
    pub script: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub exit: PathBuf,
}

/// What is known of a submitted job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub stage: String,
    pub executor: Kind,
    /// Empty while the job is being submitted: the record is written
    /// before the scheduler is asked, with the submission's `token`.
    pub job_id: String,
    /// The submission's token (see [`super::Job::token`]).
    #[serde(default)]
    pub token: String,
    /// The stage's fingerprint (hex) when the job was submitted.
    pub fingerprint: String,
    /// Seconds since the Unix epoch.
    pub submitted: u64,
    /// For a job whose files go through the remote: the remote's name (it
    /// leaves its result there under the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_remote: Option<String>,
}

/// The job directory of the project whose cache root (`.pipeline-cache`)
/// is `cache_root`.
pub fn dir(cache_root: &Path) -> PathBuf {
    cache_root.join(crate::cache::VERSION_DIR).join("jobs")
}

/// The files of `stage`'s job.
pub fn files(cache_root: &Path, stage: &str) -> JobFiles {
    let key = &blake3::hash(stage.as_bytes()).to_hex()[..16];
    let d = dir(cache_root);
    JobFiles {
        record: d.join(format!("{key}.json")),
        script: d.join(format!("{key}.sh")),
        stdout: d.join(format!("{key}.out")),
        stderr: d.join(format!("{key}.err")),
        exit: d.join(format!("{key}.exit")),
    }
}

impl JobFiles {
    /// Writes the record (whole or not at all).
    pub fn save(&self, record: &JobRecord) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(record).expect("a record serializes");
        crate::atomic_write::write(&self.record, &text, false)
    }

    /// The recorded job, if there is one (an unreadable record is none).
    pub fn load(&self) -> Option<JobRecord> {
        let text = std::fs::read(&self.record).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Removes the output and exit files of an earlier job, before a new
    /// one is submitted.
    pub fn clear_outputs(&self) -> std::io::Result<()> {
        for f in [&self.stdout, &self.stderr, &self.exit] {
            match std::fs::remove_file(f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes all the files (the job has ended and been seen to).
    pub fn remove(&self) {
        for f in [
            &self.record,
            &self.script,
            &self.stdout,
            &self.stderr,
            &self.exit,
        ] {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Every recorded job of the project, in stage name order.
pub fn all(cache_root: &Path) -> Vec<JobRecord> {
    let Ok(entries) = std::fs::read_dir(dir(cache_root)) else {
        return Vec::new();
    };
    let mut found: Vec<JobRecord> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    found.sort_by(|a: &JobRecord, b| a.stage.cmp(&b.stage));
    found
}

/// How the job's script ended, from its exit file: `(command, code)`,
/// command 0 being the `cd` into the stage's directory and 1… the
/// commands; `(0, 0)` when all ran.
pub fn read_exit(files: &JobFiles) -> Option<(usize, i32)> {
    let text = std::fs::read_to_string(&files.exit).ok()?;
    let mut words = text.split_whitespace();
    let n = words.next()?.parse().ok()?;
    let code = words.next()?.parse().ok()?;
    Some((n, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_and_are_listed_by_stage() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(super::dir(dir.path())).unwrap();
        for (stage, id) in [("train@b", "12"), ("prep/dvc.yaml:a", "11")] {
            let record = JobRecord {
                stage: stage.into(),
                executor: Kind::Slurm,
                job_id: id.into(),
                token: String::new(),
                fingerprint: "ab".into(),
                submitted: 1,
                staged_remote: None,
            };
            let f = files(dir.path(), stage);
            f.save(&record).unwrap();
            assert_eq!(f.load(), Some(record));
        }
        let stages: Vec<String> = all(dir.path()).into_iter().map(|r| r.stage).collect();
        assert_eq!(stages, ["prep/dvc.yaml:a", "train@b"]);
        files(dir.path(), "train@b").remove();
        assert_eq!(all(dir.path()).len(), 1);
    }
}
