//! Stage processes left behind by a `pipe repro` that was killed.
//!
//! The stage supervisor stops a stage's whole process group when pipe dies
//! (see [`super::supervisor`]). What gets past it: a process that left the
//! group (`setsid`, a daemon), and everything `sh` started when the
//! supervisor itself was killed with SIGKILL (`sh` gets its parent-death
//! signal, its children do not). Those would live on as orphans and could
//! keep writing outputs while the next `repro` reruns the stage. So every
//! run tags its stage processes with `PIPE_RUN_ID=<id>` in their environment
//! and writes the id to `.pipeline-cache/v1/running` while it works. A run
//! that ends normally removes the file. The next run finds it, looks for
//! processes still carrying that id (`/proc/*/environ`, Linux only), kills
//! them, and only then starts. The id is unique per run, so no unrelated
//! process can match, even after pid reuse.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const RUN_ID_VAR: &str = "PIPE_RUN_ID";

/// The marker of a run in progress; removed when dropped.
pub struct RunMarker {
    file: PathBuf,
    pub id: String,
}

impl RunMarker {
    /// Kills what an interrupted earlier run left (returns how many
    /// processes), then marks this run as in progress.
    pub fn start(cache_dir: &Path) -> std::io::Result<(RunMarker, usize)> {
        std::fs::create_dir_all(cache_dir)?;
        let file = cache_dir.join("running");
        let mut killed = 0;
        if let Ok(old) = std::fs::read_to_string(&file) {
            killed = kill_tagged(old.trim());
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let id = format!("{}-{nanos}", std::process::id());
        std::fs::write(&file, &id)?;
        Ok((RunMarker { file, id }, killed))
    }
}

impl Drop for RunMarker {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Kills every process whose environment holds `PIPE_RUN_ID=id`.
fn kill_tagged(id: &str) -> usize {
    if id.is_empty() {
        return 0;
    }
    let needle = format!("{RUN_ID_VAR}={id}");
    let found = tagged(&needle);
    for &pid in &found {
        // SAFETY: kill(2) with a pid read from /proc; no memory is touched.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    // Wait (briefly) until they are gone, so they cannot write any more.
    let mut alive = found.clone();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !alive.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        alive.retain(|pid| Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(*pid));
    }
    found.len()
}

fn tagged(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .collect()
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn kills_the_processes_of_an_interrupted_run_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("running"), "test-run-42").unwrap();
        let mut tagged_child = Command::new("sleep")
            .arg("30")
            .env(RUN_ID_VAR, "test-run-42")
            .spawn()
            .unwrap();
        let mut other = Command::new("sleep")
            .arg("30")
            .env(RUN_ID_VAR, "another-run")
            .spawn()
            .unwrap();
        // Wait until the child has exec'd with its environment (under load the
        // spawn can return before /proc shows it).
        let pid = tagged_child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !tagged("PIPE_RUN_ID=test-run-42").contains(&pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (marker, _) = RunMarker::start(dir.path()).unwrap();
        let status = tagged_child.wait().unwrap();
        assert!(!status.success(), "the leftover was killed");
        assert!(
            other.try_wait().unwrap().is_none(),
            "an unrelated process lives on"
        );
        other.kill().unwrap();
        let _ = other.wait();
        assert_ne!(marker.id, "test-run-42");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("running")).unwrap(),
            marker.id
        );
        drop(marker);
        assert!(!dir.path().join("running").exists());
    }
}
