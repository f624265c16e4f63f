//! Ctrl-C during `pipe repro`: the running stages are stopped, pipe says
//! what was interrupted and dies by SIGINT (status 130 in a shell), the
//! lock keeps what finished, and the next run resumes.

use std::time::Duration;

use crate::env::{wait_until, TestEnv};

const STARTUP: Duration = Duration::from_secs(10);

/// `first` is quick; `slow` writes half its output, then waits for the
/// file `go`; `after` reads what `slow` writes.
fn project() -> TestEnv {
    TestEnv::new().pipeline(
        "
        stages:
          first:
            cmd: echo 1 > first.txt
            outs: [first.txt]
          slow:
            cmd: >-
              echo partial > slow.txt; echo $$ > slow.pid;
              while [ ! -e go ]; do sleep 0.05; done;
              echo done > slow.txt
            deps: [first.txt]
            outs: [slow.txt]
          after:
            cmd: cp slow.txt after.txt
            deps: [slow.txt]
            outs: [after.txt]
        ",
    )
}

/// Sends `signal` to pipe's process group, as the terminal does for Ctrl-C.
fn signal_group(pid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) of the test's own child's process group.
    assert_eq!(unsafe { libc::kill(-pid, signal) }, 0);
}

#[test]
fn ctrl_c_stops_the_running_stage_says_so_and_the_next_run_resumes() {
    let env = project();
    let repro = env.spawn_in_session(&["repro"]);
    // The pid is whole once its line ends.
    assert!(
        wait_until(STARTUP, || std::fs::read_to_string(env.path("slow.pid"))
            .is_ok_and(|pid| pid.ends_with('\n'))),
        "slow never started"
    );
    let shell: i32 = env.read("slow.pid").trim().parse().unwrap();
    signal_group(repro.pid(), libc::SIGINT);
    let out = repro.wait(STARTUP);
    assert_eq!(
        (out.code, out.signal),
        (None, Some(libc::SIGINT)),
        "pipe dies by SIGINT:\n{}",
        out.stderr
    );
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            Running stage first: never run
            ✓ first  ran  [ELAPSED]
            Running stage slow: never run
            Stopping: waiting for the running stages to stop (Ctrl-C again stops pipe at once) …
            ✗ slow   interrupted
            - after  skipped: not started: the run was interrupted
            1 ran, 0 restored, 0 up to date, 0 failed, 1 interrupted, 1 skipped in [ELAPSED]
            Interrupted: slow was stopped before it finished, and nothing of it is recorded; pipeline.lock records the stages that finished, so the next `pipe repro` resumes from there.
            ");
    });
    assert!(
        !std::path::Path::new(&format!("/proc/{shell}")).exists(),
        "the stage's shell is gone"
    );
    assert_eq!(
        env.locked_stages(),
        ["first"],
        "only what finished is recorded"
    );
    assert_eq!(env.read("slow.txt"), "partial\n");

    env.write("go", "");
    let out = env.pipe(&["repro"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
              first  up to date
            Running stage slow: never run
            ✓ slow   ran  [ELAPSED]
            Running stage after: never run
            ✓ after  ran  [ELAPSED]
            2 ran, 0 restored, 1 up to date, 0 failed in [ELAPSED]
            ");
    });
    assert_eq!(env.read("after.txt"), "done\n");
}

#[test]
fn a_second_ctrl_c_stops_pipe_at_once() {
    // The stage ignores SIGINT, so after the first Ctrl-C pipe waits for
    // the supervisor's grace period; the second one ends it without the
    // summary of a run that stopped by itself.
    let env = TestEnv::new().pipeline(
        "
        stages:
          stubborn:
            cmd: trap '' INT; touch started; sleep 30; echo done > out.txt
            outs: [out.txt]
        ",
    );
    let repro = env.spawn_in_session(&["repro"]);
    assert!(wait_until(STARTUP, || env.exists("started")));
    signal_group(repro.pid(), libc::SIGINT);
    std::thread::sleep(Duration::from_millis(200));
    signal_group(repro.pid(), libc::SIGINT);
    let out = repro.wait(STARTUP);
    assert_eq!((out.code, out.signal), (None, Some(libc::SIGINT)));
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            Running stage stubborn: never run
            Stopping: waiting for the running stages to stop (Ctrl-C again stops pipe at once) …
            Stopped at once: the stages that were running are not recorded; the next `pipe repro` resumes from pipeline.lock.
            ");
    });
    assert_eq!(env.locked_stages(), Vec::<String>::new());
}
