//! A stage's processes never outlive the `pipe repro` that started them,
//! however pipe ends: `kill -9` of its process group or of pipe alone,
//! SIGTERM, Ctrl-C. `pipe` runs in a session of its own (as under `setsid`),
//! and the stage's processes are found by the run id they carry in their
//! environment (`PIPE_RUN_ID`, in `/proc/*/environ`).

use std::time::Duration;

use crate::env::{wait_until, Running, TestEnv};

const STARTUP: Duration = Duration::from_secs(10);

/// How long the stage's processes may take to go; generous, the
/// supervisor's grace period for processes that ignore SIGTERM is 2 s.
const GONE: Duration = Duration::from_secs(10);

/// `spawn` starts two background children and waits for them (unless the
/// file `fast` exists); `prefix` comes first in its command.
fn spawning(prefix: &str) -> TestEnv {
    TestEnv::new().pipeline(&format!(
        "
        stages:
          spawn:
            cmd: >-
              {prefix}[ -e fast ] || {{ sleep 300 & sleep 300 & touch started; wait; }};
              echo done > out.txt
            outs: [out.txt]
        "
    ))
}

/// The live processes whose environment holds `PIPE_RUN_ID=run_id`: pid
/// and command name, by name. A zombie's environment cannot be read, so
/// only processes that still run are listed.
fn stage_processes(run_id: &str) -> Vec<(i32, String)> {
    let needle = format!("PIPE_RUN_ID={run_id}");
    let mut found: Vec<(i32, String)> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == needle.as_bytes()))
        })
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some((pid, comm.trim().to_string()))
        })
        .collect();
    found.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    found
}

fn names(processes: &[(i32, String)]) -> Vec<&str> {
    processes.iter().map(|(_, n)| n.as_str()).collect()
}

/// Kills what is left of a run when the test ends, pass or fail.
struct Reaper(String);

impl Drop for Reaper {
    fn drop(&mut self) {
        for (pid, _) in stage_processes(&self.0) {
            // SAFETY: kill(2) of a process of this test's own run.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Starts `pipe repro` in a session of its own and waits until the
/// stage's processes run: the supervisor, `sh` and both `sleep`s. Returns
/// pipe, the run id, and what kills the run's processes at the end.
fn start(env: &TestEnv) -> (Running, String, Reaper) {
    let repro = env.spawn_in_session(&["repro"]);
    assert!(
        wait_until(STARTUP, || env.exists("started")),
        "the stage never started"
    );
    let run_id = env.read(".pipeline-cache/v1/running");
    let reaper = Reaper(run_id.clone());
    let mut running = Vec::new();
    let all_there = wait_until(STARTUP, || {
        running = stage_processes(&run_id);
        names(&running) == ["pipe", "sh", "sleep", "sleep"]
    });
    assert!(
        all_there,
        "the supervisor, sh and both sleeps run: {running:?}"
    );
    (repro, run_id, reaper)
}

/// Starts `pipe repro` in a session of its own, waits until the stage's
/// processes run, then calls `stop` with pipe's pid (also its process
/// group's id). Asserts that pipe died by the signal, that every process
/// of the stage is gone soon after, and that the next `pipe repro` runs
/// the stage cleanly (no leftovers to stop).
fn stage_dies_with_pipe(env: TestEnv, stop: impl FnOnce(i32)) {
    let (repro, run_id, _reaper) = start(&env);
    stop(repro.pid());
    let killed = repro.wait(STARTUP);
    assert_eq!(
        killed.code, None,
        "pipe died by the signal:\n{}",
        killed.stderr
    );
    let mut left = Vec::new();
    let gone = wait_until(GONE, || {
        left = stage_processes(&run_id);
        left.is_empty()
    });
    assert!(gone, "still running {GONE:?} after pipe died: {left:?}");

    env.write("fast", "");
    let out = env.pipe(&["repro"]).ok();
    // One snapshot for every way of stopping pipe.
    env.settings().bind(|| {
        insta::allow_duplicates! {
            insta::assert_snapshot!(out.stderr, @r"
            Running stage spawn: never run
            ✓ spawn  ran  [ELAPSED]
            1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
            ");
        }
    });
    assert_eq!(env.read("out.txt"), "done\n");
}

fn signal(target: i32, sig: libc::c_int) {
    // SAFETY: kill(2) of the test's own child or of its process group.
    let rc = unsafe { libc::kill(target, sig) };
    assert_eq!(rc, 0, "kill({target}, {sig})");
}

#[test]
fn kill_9_of_pipes_process_group_stops_the_stage() {
    stage_dies_with_pipe(spawning(""), |pid| signal(-pid, libc::SIGKILL));
}

#[test]
fn kill_9_of_pipe_alone_stops_the_stage() {
    stage_dies_with_pipe(spawning(""), |pid| signal(pid, libc::SIGKILL));
}

#[test]
fn sigterm_to_pipe_stops_the_stage() {
    stage_dies_with_pipe(spawning(""), |pid| signal(pid, libc::SIGTERM));
}

#[test]
fn ctrl_c_stops_the_stage() {
    // The terminal sends SIGINT to its foreground process group: pipe's.
    stage_dies_with_pipe(spawning(""), |pid| signal(-pid, libc::SIGINT));
}

#[test]
fn a_stage_that_ignores_sigterm_is_killed_after_the_grace_period() {
    // The shell and its children (which inherit it) ignore the supervisor's
    // SIGTERM; the SIGKILL after the grace period ends them.
    stage_dies_with_pipe(spawning("trap '' TERM INT HUP; "), |pid| {
        signal(-pid, libc::SIGKILL)
    });
}

#[test]
fn what_outlives_a_killed_supervisor_is_stopped_by_the_next_run() {
    // Only a SIGKILL of the supervisor itself gets past it: `sh` then gets
    // its own parent-death signal, but its children live on. The next run
    // finds them by the run id and stops them before it starts.
    let env = spawning("");
    let (mut repro, run_id, _reaper) = start(&env);
    let supervisor = stage_processes(&run_id)
        .into_iter()
        .find(|(_, name)| name == "pipe")
        .expect("the supervisor")
        .0;
    signal(supervisor, libc::SIGKILL);
    repro.kill();
    repro.wait(STARTUP);
    let mut left = Vec::new();
    let orphans = wait_until(GONE, || {
        left = stage_processes(&run_id);
        names(&left) == ["sleep", "sleep"]
    });
    assert!(orphans, "sh died, its children live on: {left:?}");

    env.write("fast", "");
    let out = env.pipe(&["repro"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
        Stopped 2 leftover process(es) of an interrupted earlier run.
        Running stage spawn: never run
        ✓ spawn  ran  [ELAPSED]
        1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
        ");
    });
    assert_eq!(stage_processes(&run_id), [], "the leftovers are gone");
}

#[test]
fn a_stage_may_signal_its_own_process_group() {
    // `kill 0` reaches every process of the stage's group, the supervisor
    // included; coming from the stage, it is no request to stop the stage.
    // (The signal is sent once `sleep` has replaced the forked shell, which
    // would otherwise run the inherited trap and go on to sleep 300 s.)
    let env = TestEnv::new().pipeline(
        "
        stages:
          signals:
            cmd: >-
              trap 'echo caught' TERM; sleep 300 & child=$!;
              until head -c 5 /proc/$child/cmdline | grep -qx sleep; do :; done;
              kill -TERM 0; wait; echo done > out.txt
            outs: [out.txt]
        ",
    );
    let out = env.spawn(&["repro"]).wait(STARTUP).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(format!("{}---\n{}", out.stdout, out.stderr), @r"
            > trap 'echo caught' TERM; sleep 300 & child=$!; until head -c 5 /proc/$child/cmdline | grep -qx sleep; do :; done; kill -TERM 0; wait; echo done > out.txt
            [signals] caught
            ---
            Running stage signals: never run
            ✓ signals  ran  [ELAPSED]
            1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
            ");
    });
    assert_eq!(env.read("out.txt"), "done\n");
}
