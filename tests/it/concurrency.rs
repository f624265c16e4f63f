//! Two `pipe`s in one project, and a `pipe` killed mid-run.

use std::time::{Duration, Instant};

use crate::env::{wait_until, TestEnv};

const STARTUP: Duration = Duration::from_secs(10);

/// `slow` writes `started` first, then sleeps; `first` runs before it.
fn slow_pipeline(sleep: &str) -> TestEnv {
    TestEnv::new().pipeline(&format!(
        "
        stages:
          first:
            cmd: echo first >> runs.log; echo 1 > first.txt
            outs: [first.txt]
          slow:
            cmd: echo slow >> runs.log; touch started; {sleep}; cp first.txt slow.txt
            deps: [first.txt]
            outs: [slow.txt]
        "
    ))
}

#[test]
fn a_second_repro_waits_for_the_first() {
    let env = slow_pipeline("sleep 1.5");
    let first = env.spawn(&["repro", "-j", "1"]);
    assert!(
        wait_until(STARTUP, || env.exists("started")),
        "the slow stage never started"
    );
    let second = env.pipe(&["repro"]).ok();
    assert!(
        second.stderr.contains("Waiting"),
        "the second repro says it waits:\n{}",
        second.stderr
    );
    let first = first.wait(STARTUP).ok();
    assert_eq!(first.counts(), "2 ran, 0 restored, 0 up to date, 0 failed");
    // The second one saw the results of the first and had nothing to do.
    assert_eq!(second.counts(), "0 ran, 0 restored, 2 up to date, 0 failed");
    assert_eq!(env.runs(), ["first", "slow"]);
    assert_eq!(env.read("slow.txt"), "1\n");
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(second.stderr);
}

#[test]
fn status_and_dag_do_not_wait_for_a_running_repro() {
    let env = slow_pipeline("sleep 2");
    let mut repro = env.spawn(&["repro", "-j", "1"]);
    assert!(
        wait_until(STARTUP, || env.exists("started")),
        "the slow stage never started"
    );
    let t = Instant::now();
    let status = env.pipe(&["status"]).ok();
    let dag = env.pipe(&["dag"]).ok();
    let took = t.elapsed();
    assert!(
        repro.is_running(),
        "status and dag returned only after the repro finished ({took:?})"
    );
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(!status.stderr.contains("Waiting"), "{}", status.stderr);
    // `first` is recorded already; `slow` is still to run.
    assert!(status.stdout.starts_with("slow:\n"), "{}", status.stdout);
    assert!(
        status.stdout.contains("up to date: first"),
        "{}",
        status.stdout
    );
    assert_eq!(dag.stdout, "● first\n│\n● slow\n");
    repro.wait(STARTUP).ok();
}

#[test]
fn the_lock_is_written_after_each_stage_not_at_the_end() {
    let env = slow_pipeline("sleep 1");
    let repro = env.spawn(&["repro", "-j", "1"]);
    assert!(wait_until(STARTUP, || env.exists("started")));
    assert_eq!(env.locked_stages(), ["first"]);
    repro.wait(STARTUP).ok();
    assert_eq!(env.locked_stages(), ["first", "slow"]);
}

#[test]
fn kill_9_mid_run_leaves_a_valid_lock_and_the_next_repro_finishes_the_job() {
    // `slow` sleeps 5 s unless `fast` exists, so that the rerun is quick.
    let env = slow_pipeline("[ -e fast ] || sleep 5").file("fast", "");
    env.pipe(&["repro"]).ok();
    env.remove("fast");
    let lock_before = env.lock();
    // Change both stages' inputs: first reruns quickly, slow gets killed.
    let yaml = env
        .read("pipeline.yaml")
        .replace("echo 1 > first.txt", "echo 2 > first.txt");
    env.write("pipeline.yaml", &yaml);
    env.remove("started");

    let mut repro = env.spawn(&["repro", "-j", "1"]);
    assert!(
        wait_until(STARTUP, || env.exists("started")),
        "the slow stage never started"
    );
    repro.kill();
    let killed = repro.wait(STARTUP);
    assert_eq!(killed.code, None, "killed by a signal");

    // The lock parses; `first` is recorded with its new content; `slow`
    // still has its old entry, not one claiming the interrupted run.
    let lock = env.lock();
    assert_eq!(env.locked_stages(), ["first", "slow"]);
    assert_eq!(lock["stages"]["first"]["outs"][0]["size"], 2);
    assert_ne!(lock["stages"]["first"], lock_before["stages"]["first"]);
    assert_eq!(lock["stages"]["slow"], lock_before["stages"]["slow"]);
    assert_eq!(env.runs(), ["first", "slow", "first", "slow"]);

    // The next repro reruns just the interrupted stage.
    env.write("fast", "");
    let status = env.pipe(&["status"]).ok();
    assert!(status.stdout.starts_with("slow:\n"), "{}", status.stdout);
    assert!(
        status.stdout.contains("up to date: first"),
        "{}",
        status.stdout
    );
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 1 up to date, 0 failed");
    assert_eq!(env.runs(), ["first", "slow", "first", "slow", "slow"]);
    assert_eq!(env.read("slow.txt"), "2\n");
}

#[test]
fn kill_9_during_the_first_run_records_only_finished_stages() {
    let env = slow_pipeline("[ -e fast ] || sleep 5");
    let mut repro = env.spawn(&["repro", "-j", "1"]);
    assert!(wait_until(STARTUP, || env.exists("started")));
    repro.kill();
    repro.wait(STARTUP);
    assert_eq!(env.locked_stages(), ["first"]);
    env.write("fast", "");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 1 up to date, 0 failed");
    assert_eq!(env.runs(), ["first", "slow", "slow"]);
}

#[test]
fn killing_pipe_also_stops_the_commands_its_stage_started() {
    // A stage's command may start processes of its own (here a subshell).
    // When pipe is killed they must not go on writing into the project
    // behind the next run's back.
    let env = TestEnv::new().pipeline(
        "
        stages:
          spawns:
            cmd: touch started; (sleep 1; echo late > late.txt); echo done > out.txt
            outs: [out.txt]
        ",
    );
    let mut repro = env.spawn(&["repro"]);
    assert!(wait_until(STARTUP, || env.exists("started")));
    repro.kill();
    repro.wait(STARTUP);
    std::thread::sleep(Duration::from_millis(1800));
    assert!(
        !env.exists("late.txt"),
        "a process of the killed stage kept running and wrote late.txt"
    );
}

#[test]
fn projects_sharing_a_cache_run_a_new_stage_once() {
    // Two copies of a project share one cache, as parallel experiments do,
    // and reach a stage neither has run. The first runs it; the second
    // waits for it and restores its outputs instead of computing them too.
    let shared = tempfile::tempdir().expect("a temporary directory");
    let (cache, counter, go) = (
        shared.path().join("cache"),
        shared.path().join("runs.log"),
        shared.path().join("go"),
    );
    let project = || {
        TestEnv::new()
            .pipeline(
                r#"
                stages:
                  slow:
                    cmd: >-
                      echo run >> "$COUNTER"; i=0;
                      while [ ! -e "$GO" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done;
                      echo result > out.txt
                    deps: [in.txt]
                    outs: [out.txt]
                "#,
            )
            .file("in.txt", "same input\n")
            .env("PIPE_CACHE_DIR", cache.to_str().unwrap())
            .env("COUNTER", counter.to_str().unwrap())
            .env("GO", go.to_str().unwrap())
    };
    let (a, b) = (project(), project());
    let first = a.spawn(&["repro"]);
    assert!(wait_until(STARTUP, || counter.exists()), "a never started");

    let log = shared.path().join("b.stderr");
    let mut second = b
        .command(&["repro"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let waiting = "Waiting for another pipe process that runs slow on the same inputs";
    let says_waiting = wait_until(STARTUP, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains(waiting))
    });
    std::fs::write(&go, "").unwrap();
    assert!(says_waiting, "b did not wait for a");

    let first = first.wait(STARTUP).ok();
    assert_eq!(first.counts(), "1 ran, 0 restored, 0 up to date, 0 failed");
    assert!(second.wait().unwrap().success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("0 ran, 1 restored, 0 up to date, 0 failed"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&counter).unwrap(), "run\n");
    assert_eq!(b.read("out.txt"), "result\n");
    assert_eq!(
        b.locked_out_hash("slow", "out.txt"),
        a.locked_out_hash("slow", "out.txt")
    );

    // The claim files are gone after gc (nobody holds them).
    let claims = cache.join("v1").join("claims");
    assert_eq!(std::fs::read_dir(&claims).unwrap().count(), 1);
    a.pipe(&["gc", "-w", "-f"]).ok();
    assert_eq!(std::fs::read_dir(&claims).unwrap().count(), 0);
}

#[test]
fn a_stage_that_runs_pipe_on_the_same_stage_elsewhere_does_not_wait_for_itself() {
    // The stage's command runs `pipe repro` in a project that shares the
    // cache and has a stage with the same fingerprint. The inner pipe must
    // not wait for the claim its own parent holds.
    let shared = tempfile::tempdir().expect("a temporary directory");
    let cache = shared.path().join("cache");
    let pipeline = "
        stages:
          build:
            cmd: sh build.sh
            deps: [in.txt]
            outs: [out.txt]
        ";
    let env = TestEnv::new()
        .pipeline(pipeline)
        .file("in.txt", "same\n")
        .file(
            "build.sh",
            &format!(
                "cd inner && {} repro && cp out.txt ../out.txt\n",
                crate::env::PIPE
            ),
        )
        .file("inner/in.txt", "same\n")
        .file("inner/build.sh", "echo built > out.txt\n")
        .env("PIPE_CACHE_DIR", cache.to_str().unwrap());
    std::fs::copy(env.path("pipeline.yaml"), env.path("inner/pipeline.yaml")).unwrap();
    let out = env.spawn(&["repro"]).wait(STARTUP).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 0 up to date, 0 failed");
    assert_eq!(env.read("out.txt"), "built\n");
    assert!(!out.stderr.contains("Waiting"), "{}", out.stderr);
}

#[test]
fn a_stage_runs_when_its_claim_cannot_be_taken() {
    // A claim only saves work: where it cannot be taken (here `claims` is a
    // file, not a directory), the stage runs without one.
    let env = TestEnv::new()
        .pipeline(
            "
            stages:
              s:
                cmd: echo ran > out.txt
                outs: [out.txt]
            ",
        )
        .file(".pipeline-cache/v1/claims", "not a directory\n");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 0 up to date, 0 failed");
    assert_eq!(env.read("out.txt"), "ran\n");
}
