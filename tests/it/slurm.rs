//! Stages as jobs of a real single-node Slurm cluster (see
//! [`crate::services::slurm`]), and the generic executor with small shell
//! scripts as the scheduler.
//!
//! The cluster is shared by the tests of this binary, which run at the same
//! time: every stage name here is unique to its test (stages look for each
//! other by job name), and nothing assumes a free CPU.

use std::time::Duration;

use crate::env::{wait_until, Output, TestEnv};
use crate::services::{slurm, Slurm};

pub(crate) const JOB: Duration = Duration::from_secs(120);

/// A project whose `pipe` talks to the test cluster.
pub(crate) fn on_cluster(yaml: &str) -> Option<(TestEnv, &'static Slurm)> {
    let cluster = slurm()?;
    let env = TestEnv::new()
        .env("SLURM_CONF", &cluster.conf.display().to_string())
        .pipeline(yaml);
    Some((env, cluster))
}

/// Settings that hide job ids, hosts and times.
pub(crate) fn settings(env: &TestEnv) -> insta::Settings {
    let mut s = env.settings();
    s.add_filter(r"(?i)job \d+", "job [JOB]");
    s.add_filter(r"slurmstepd-\S+:", "slurmstepd-[HOST]:");
    s.add_filter(r"ON \S+ CANCELLED AT \S+", "ON [HOST] CANCELLED AT [TIME]");
    s
}

/// `text` without the lines of a job's passing states (whether a poll sees
/// it queued or running depends on the machine), nor the `Terminated` that
/// `sh` may or may not print before Slurm's signal reaches it too.
pub(crate) fn steady(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.ends_with(" is running") && !l.contains(" is queued") && !l.ends_with("] Terminated")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `text` without the lines `slurmstepd` wrote into `stage`'s output (how
/// many there are depends on Slurm's timing).
fn without_slurmstepd(text: &str, stage: &str) -> String {
    let prefix = format!("[{stage}] slurmstepd");
    text.lines()
        .filter(|l| !l.starts_with(&prefix))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The id of the job `stage` was submitted as, from pipe's words.
pub(crate) fn submitted(out: &Output, stage: &str) -> String {
    let prefix = format!("Stage {stage}: submitted as Slurm job ");
    out.stderr
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{stage} was not submitted:\n{}", out.stderr))
        .to_string()
}

#[test]
fn stages_run_as_jobs_and_up_to_date_stages_submit_nothing() {
    let Some((env, cluster)) = on_cluster(
        r#"
        stages:
          sj_prepare:
            cmd: echo "$SLURM_JOB_ID" > prepared.txt; echo "partition $SLURM_JOB_PARTITION"
            outs: [prepared.txt]
          sj_train:
            cmd:
              - echo "$SLURM_JOB_ID $SLURM_CPUS_PER_TASK" > model.txt
              - echo training >&2
            deps: [prepared.txt]
            outs: [model.txt]
            resources: {cpus: 1, time: "00:05:00"}
        "#,
    ) else {
        return;
    };
    let out = env.pipe(&["repro", "--executor", "slurm"]).ok();
    let prepare = submitted(&out, "sj_prepare");
    let train = submitted(&out, "sj_train");
    assert_eq!(env.read("prepared.txt"), format!("{prepare}\n"));
    assert_eq!(env.read("model.txt"), format!("{train} 1\n"));
    assert_eq!(cluster.job_state(&prepare), "COMPLETED");
    settings(&env).bind(|| {
        insta::assert_snapshot!(out.stdout, @r#"
        > echo "$SLURM_JOB_ID" > prepared.txt; echo "partition $SLURM_JOB_PARTITION"
        [sj_prepare] partition debug
        > echo "$SLURM_JOB_ID $SLURM_CPUS_PER_TASK" > model.txt
        > echo training >&2
        "#);
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage sj_prepare: never run
        Stage sj_prepare: submitted as Slurm job [JOB]
        ✓ sj_prepare  ran  [ELAPSED]
        Running stage sj_train: never run
        Stage sj_train: submitted as Slurm job [JOB]
        [sj_train] training
        ✓ sj_train    ran  [ELAPSED]
        2 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
        ");
    });
    // The job files go once pipe has seen the jobs end.
    let jobs = std::fs::read_dir(env.path(".pipeline-cache/v1/jobs")).unwrap();
    assert_eq!(jobs.count(), 0);

    let again = env.pipe(&["repro", "--executor", "slurm"]).ok();
    settings(&env).bind(|| {
        insta::assert_snapshot!(again.stderr, @r"
          sj_prepare  up to date
          sj_train    up to date
        0 ran, 0 restored, 2 up to date, 0 failed in [ELAPSED]
        ");
    });
}

#[test]
fn independent_stages_are_in_the_queue_together() {
    // Each job lasts 2 s; Slurm's own times (to the second) show that each
    // was submitted before the other ended, however busy the node is.
    let Some((env, cluster)) = on_cluster(
        r#"
        stages:
          qt_left:
            cmd: sleep 2; echo "$SLURM_JOB_ID" > left.txt
            outs: [left.txt]
          qt_right:
            cmd: sleep 2; echo "$SLURM_JOB_ID" > right.txt
            outs: [right.txt]
        "#,
    ) else {
        return;
    };
    let out = env.pipe(&["repro", "--executor", "slurm", "-j", "2"]).ok();
    assert_eq!(out.counts(), "2 ran, 0 restored, 0 up to date, 0 failed");
    let (left, right) = (submitted(&out, "qt_left"), submitted(&out, "qt_right"));
    assert_eq!(env.read("left.txt"), format!("{left}\n"));
    assert_eq!(env.read("right.txt"), format!("{right}\n"));
    let time = |id: &str, field: &str| {
        let line = cluster.tool("scontrol", &["show", "job", "-o", id]);
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(field)?.strip_prefix('=').map(str::to_string))
            .unwrap_or_else(|| panic!("no {field} in {line}"))
    };
    assert!(
        time(&left, "SubmitTime") < time(&right, "EndTime")
            && time(&right, "SubmitTime") < time(&left, "EndTime"),
        "both jobs were in the queue at once:\n{}",
        out.stderr
    );
    // With -j 1, one waits for the other.
    let serial = on_cluster(
        r#"
        stages:
          qs_left:
            cmd: sleep 2; echo 1 > left.txt
            outs: [left.txt]
          qs_right:
            cmd: sleep 2; echo 1 > right.txt
            outs: [right.txt]
        "#,
    )
    .unwrap()
    .0;
    let out = serial
        .pipe(&["repro", "--executor", "slurm", "-j", "1"])
        .ok();
    let (left, right) = (submitted(&out, "qs_left"), submitted(&out, "qs_right"));
    assert!(time(&right, "SubmitTime") >= time(&left, "EndTime"));
}

#[test]
fn a_failing_job_fails_its_stage_with_the_command_and_exit_code() {
    let Some((env, _)) = on_cluster(
        r#"
        stages:
          fj_fails:
            cmd: [echo before, "echo oops >&2; exit 3", echo never]
            outs: [never.txt]
          fj_after:
            cmd: cp never.txt after.txt
            deps: [never.txt]
            outs: [after.txt]
        "#,
    ) else {
        return;
    };
    let out = env.pipe(&["repro", "--executor", "slurm"]).code(1);
    settings(&env).bind(|| {
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage fj_fails: never run
        Stage fj_fails: submitted as Slurm job [JOB]
        [fj_fails] oops
        ✗ fj_fails  failed: `echo oops >&2; exit 3` exited with code 3 (Slurm job [JOB])
        - fj_after  skipped: upstream stage fj_fails failed
        0 ran, 0 restored, 0 up to date, 1 failed, 1 skipped in [ELAPSED]
        ");
    });
    assert!(env.locked_stages().is_empty());
}

#[test]
fn a_job_over_its_time_limit_is_reported_as_such() {
    // Slurm's smallest limit is a minute, and it looks every 30 s or so.
    let Some((env, _)) = on_cluster(
        r#"
        stages:
          tl_slow:
            cmd: echo started; sleep 600
            outs: [slow.txt]
            resources: {time: 1}
        "#,
    ) else {
        return;
    };
    let running = env.spawn(&["repro", "--executor", "slurm"]);
    let out = running.wait(Duration::from_secs(240)).code(1);
    settings(&env).bind(|| {
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage tl_slow: never run
        Stage tl_slow: submitted as Slurm job [JOB]
        [tl_slow] slurmstepd-[HOST]: error: *** job [JOB] ON [HOST] CANCELLED AT [TIME] DUE TO TIME LIMIT ***
        ✗ tl_slow  failed: Slurm job [JOB] hit its time limit (time: 1)
            hint: ask for more time with `resources: {time: …}` in the stage, or a default in [executor.resources] of pipe.toml
        0 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
        ");
    });
}

/// Sends `signal` to pipe's process group, as the terminal does for Ctrl-C.
#[test]
fn memory_and_node_failures_are_reported_in_slurm_s_words() {
    // One test, one after the other: the node failure would end any job of
    // the cluster.
    let Some(cluster) = crate::services::slurm_enforcing_memory() else {
        return;
    };
    let env = TestEnv::new()
        .env("SLURM_CONF", &cluster.conf.display().to_string())
        .pipeline(
            r#"
            stages:
              om_greedy:
                cmd: python3 -c "x = bytearray(400 << 20); import time; time.sleep(20)"
                outs: [never.txt]
                resources: {mem: 50M}
            "#,
        );
    let out = env.pipe(&["repro", "--executor", "slurm"]).code(1);
    // Slurm's own words come with the stage's output (how many times it
    // says them depends on its polling).
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("[om_greedy] slurmstepd")
                && l.ends_with("Exceeded job memory limit")),
        "{}",
        out.stderr
    );
    let ours = without_slurmstepd(&steady(&out.stderr), "om_greedy");
    settings(&env).bind(|| {
        insta::assert_snapshot!(ours, @r"
        Running stage om_greedy: never run
        Stage om_greedy: submitted as Slurm job [JOB]
        ✗ om_greedy  failed: Slurm job [JOB] ran out of memory (mem: 50M)
            hint: ask for more with `resources: {mem: …}` in the stage
        0 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
        ");
    });
    assert!(env.locked_stages().is_empty());

    // The node fails under a running job (an administrator sets it DOWN):
    // Slurm ends the job as NODE_FAIL (it would requeue it but for
    // `--no-requeue`).
    let root = env.root().display().to_string();
    env.write(
        "pipeline.yaml",
        &format!(
            "stages:\n  nf_long:\n    cmd: echo started > {root}/started; sleep 60\n    outs: [never.txt]\n    resources: {{extra_args: [--no-requeue]}}\n"
        ),
    );
    let repro = env.spawn(&["repro", "--executor", "slurm"]);
    assert!(
        wait_until(JOB, || env.exists("started")),
        "the job never started"
    );
    let host = cluster.tool("sinfo", &["-h", "-o", "%n"]);
    let host = host.trim();
    cluster.tool(
        "scontrol",
        &[
            "update",
            &format!("nodename={host}"),
            "state=down",
            "reason=pipe-test",
        ],
    );
    let out = repro.wait(JOB);
    cluster.tool(
        "scontrol",
        &["update", &format!("nodename={host}"), "state=resume"],
    );
    let ours = without_slurmstepd(&steady(&out.stderr), "nf_long");
    settings(&env).bind(|| {
        insta::assert_snapshot!(ours, @r"
        Running stage nf_long: never run
        Stage nf_long: submitted as Slurm job [JOB]
        ✗ nf_long  failed: Slurm job [JOB] failed: its node failed
            hint: nothing of the stage is recorded; `pipe repro` submits it again
        0 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
        ");
    });
    assert_eq!(out.code, Some(1));
    assert!(env.locked_stages().is_empty());
}

fn signal_group(pid: i32, signal: libc::c_int) {
    // SAFETY: kill(2) of the test's own child's process group.
    assert_eq!(unsafe { libc::kill(-pid, signal) }, 0);
}

#[test]
fn ctrl_c_cancels_the_jobs_it_submitted() {
    let Some((env, cluster)) = on_cluster(
        r#"
        stages:
          cc_long:
            cmd: echo "$SLURM_JOB_ID" > job.id; sleep 600 && echo late > long.txt
            outs: [long.txt]
        "#,
    ) else {
        return;
    };
    let repro = env.spawn_in_session(&["repro", "--executor", "slurm"]);
    assert!(
        wait_until(JOB, || std::fs::read_to_string(env.path("job.id"))
            .is_ok_and(|id| id.ends_with('\n'))),
        "the job never started"
    );
    let id = env.read("job.id").trim().to_string();
    signal_group(repro.pid(), libc::SIGINT);
    let out = repro.wait(JOB);
    assert_eq!(
        (out.code, out.signal),
        (None, Some(libc::SIGINT)),
        "{}",
        out.stderr
    );
    assert_eq!(cluster.job_state(&id), "CANCELLED");
    settings(&env).bind(|| {
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage cc_long: never run
        Stage cc_long: submitted as Slurm job [JOB]
        Stopping: waiting for the running stages to stop (Ctrl-C again stops pipe at once) …
        Stage cc_long: cancelling Slurm job [JOB]
        [cc_long] slurmstepd-[HOST]: error: *** job [JOB] ON [HOST] CANCELLED AT [TIME] ***
        ✗ cc_long  interrupted
        0 ran, 0 restored, 0 up to date, 0 failed, 1 interrupted in [ELAPSED]
        Interrupted: cc_long was stopped before it finished, and nothing of it is recorded; pipeline.lock records the stages that finished, so the next `pipe repro` resumes from there.
        ");
    });
    assert!(!env.exists("long.txt"));
}

#[test]
fn after_kill_9_the_next_run_follows_the_job_instead_of_submitting_again() {
    let Some((env, cluster)) = on_cluster(
        r#"
        stages:
          k9_train:
            cmd: >-
              echo "$SLURM_JOB_ID" > job.id; echo ran >> runs.log;
              while [ ! -e go ]; do sleep 0.1; done; echo "$SLURM_JOB_ID" > model.txt
            outs: [model.txt]
        "#,
    ) else {
        return;
    };
    let mut repro = env.spawn(&["repro", "--executor", "slurm"]);
    assert!(
        wait_until(JOB, || std::fs::read_to_string(env.path("job.id"))
            .is_ok_and(|id| id.ends_with('\n'))),
        "the job never started"
    );
    let id = env.read("job.id").trim().to_string();
    repro.kill();
    let _ = repro.wait(JOB);
    assert_eq!(cluster.job_state(&id), "RUNNING");
    let status = env.pipe(&["status"]).ok();
    settings(&env).bind(|| {
        insta::assert_snapshot!(status.stdout, @r"
        k9_train:
            never run
            running as Slurm job [JOB]
        ");
    });
    env.write("go", "");
    let out = env.pipe(&["repro", "--executor", "slurm"]).ok();
    assert_eq!(env.read("model.txt"), format!("{id}\n"));
    assert_eq!(env.runs(), ["ran"], "the stage ran once");
    settings(&env).bind(|| {
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage k9_train: never run
        Stage k9_train: following Slurm job [JOB], submitted by an earlier run that was stopped
        ✓ k9_train  ran  [ELAPSED]
        1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
        ");
    });
    assert_eq!(env.locked_stages(), ["k9_train"]);
}

#[test]
fn a_run_killed_before_it_recorded_the_job_id_leaves_a_job_that_is_found_again() {
    let Some((env, cluster)) = on_cluster(
        r#"
        stages:
          kw_train:
            cmd: echo ran >> runs.log; echo "$SLURM_JOB_ID" > model.txt
            outs: [model.txt]
        "#,
    ) else {
        return;
    };
    // An `sbatch` that submits, then hangs (while `hold` exists) before it
    // prints the id: pipe is killed in that window.
    let sbatch = std::process::Command::new("sh")
        .args(["-c", "command -v sbatch"])
        .output()
        .unwrap();
    let sbatch = String::from_utf8(sbatch.stdout).unwrap();
    let path = format!(
        "{}:{}",
        env.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = env.env("PATH", &path);
    env.write(
        "bin/sbatch",
        &format!(
            "#!/bin/sh\nout=$({} \"$@\") || exit $?\nwhile [ -e hold ]; do sleep 0.1; done\necho \"$out\"\n",
            sbatch.trim()
        ),
    );
    std::process::Command::new("chmod")
        .args(["+x", &env.path("bin/sbatch").display().to_string()])
        .status()
        .unwrap();
    env.write("hold", "");
    let mut repro = env.spawn(&["repro", "--executor", "slurm"]);
    assert!(
        wait_until(JOB, || env.exists("model.txt")),
        "the job never ran"
    );
    repro.kill();
    let _ = repro.wait(JOB);
    std::fs::remove_file(env.path("hold")).unwrap();
    let out = env.pipe(&["repro", "--executor", "slurm"]).ok();
    settings(&env).bind(|| {
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage kw_train: never run
        Stage kw_train: following Slurm job [JOB], submitted by an earlier run that was stopped
        ✓ kw_train  ran  [ELAPSED]
        1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
        ");
    });
    assert_eq!(env.runs(), ["ran"], "the stage ran once");
    let id = env.read("model.txt").trim().to_string();
    assert_eq!(cluster.job_state(&id), "COMPLETED");
    assert_eq!(env.locked_stages(), ["kw_train"]);
}

#[test]
fn a_built_in_stage_runs_in_the_job_too() {
    let Some((env, _)) = on_cluster(
        "
        stages:
          bi_synth:
            uses: synth
            with: {out: data/reviews.tsv}
        ",
    ) else {
        return;
    };
    let out = env.pipe(&["repro", "--executor", "slurm"]).ok();
    submitted(&out, "bi_synth");
    let local = TestEnv::new().pipeline(
        "
        stages:
          bi_synth:
            uses: synth
            with: {out: data/reviews.tsv}
        ",
    );
    local.pipe(&["repro"]).ok();
    assert_eq!(env.read("data/reviews.tsv"), local.read("data/reviews.tsv"));
}

/// A scheduler of three shell scripts: jobs run in the background, each in
/// a session of its own; `queue/` holds their pids, exit codes and what
/// `submit` was given.
fn generic_scheduler(env: TestEnv) -> TestEnv {
    env.file(
        "sched/submit",
        r#"d="$(dirname "$0")/queue"; mkdir -p "$d"
id=$(( $(ls "$d" | grep -c '\.pid$') + 100 ))
shift_script="$1"; shift
echo "$*" >> "$d/submitted"
setsid sh -c 'sh "$1"; echo $? > "$2.rc"' _ "$shift_script" "$d/$id" </dev/null >/dev/null 2>&1 &
echo $! > "$d/$id.pid"
echo "Your job $id has been submitted"
echo $id
"#,
    )
    .file(
        "sched/status",
        r#"d="$(dirname "$0")/queue"
if [ -e "$d/$1.rc" ]; then
  if [ "$(cat "$d/$1.rc")" = 0 ]; then echo success; else echo failed; fi
elif [ -e "$d/$1.cancelled" ]; then echo failed
else echo running; fi
"#,
    )
    .file(
        "sched/cancel",
        r#"d="$(dirname "$0")/queue"; touch "$d/$1.cancelled"; kill -TERM -- "-$(cat "$d/$1.pid")"
"#,
    )
    .file(
        "pipe.toml",
        r#"[executor]
kind = "generic"
poll_interval = 0.2
[executor.resources]
mem = "1G"
[executor.generic]
submit = "sh sched/submit {script} {name} cpus={cpus} mem={mem} {extra_args}"
status = "sh sched/status {jobid}"
cancel = "sh sched/cancel {jobid}"
"#,
    )
}

#[test]
fn the_generic_executor_runs_stages_through_script_schedulers() {
    let env = generic_scheduler(TestEnv::new().pipeline(
        r#"
        stages:
          prepare:
            cmd: echo prepared > prepared.txt; echo "stage $PIPE_STAGE"
            outs: [prepared.txt]
          train:
            cmd: [cat prepared.txt > model.txt, "echo fitting >&2"]
            deps: [prepared.txt]
            outs: [model.txt]
            resources: {cpus: 4, extra_args: ["--qos=long"]}
          local:
            cmd: echo here > local.txt
            deps: [model.txt]
            outs: [local.txt]
            executor: local
        "#,
    ));
    let out = env.pipe(&["repro"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stdout, @r#"
        > echo prepared > prepared.txt; echo "stage $PIPE_STAGE"
        [prepare] stage prepare
        > cat prepared.txt > model.txt
        > echo fitting >&2
        > echo here > local.txt
        "#);
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage prepare: never run
        Stage prepare: submitted as job 100
        ✓ prepare  ran  [ELAPSED]
        Running stage train: never run
        Stage train: submitted as job 101
        [train] fitting
        ✓ train    ran  [ELAPSED]
        Running stage local: never run
        ✓ local    ran  [ELAPSED]
        3 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
        ");
    });
    // The job name and the resources, as the submit template got them.
    assert_eq!(
        env.read("sched/queue/submitted"),
        "pipe:prepare cpus= mem=1G\npipe:train cpus=4 mem=1G --qos=long\n"
    );
    assert_eq!(env.read("model.txt"), "prepared\n");
    let again = env.pipe(&["repro"]).ok();
    assert_eq!(again.counts(), "0 ran, 0 restored, 3 up to date, 0 failed");
}

#[test]
fn the_generic_executor_reports_the_failed_command() {
    let env = generic_scheduler(TestEnv::new().pipeline(
        r#"
        stages:
          broken:
            cmd: [echo one, "echo bad input >&2; exit 4"]
            outs: [out.txt]
        "#,
    ));
    let out = env.pipe(&["repro"]).code(1);
    env.settings().bind(|| {
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage broken: never run
        Stage broken: submitted as job 100
        [broken] bad input
        ✗ broken  failed: `echo bad input >&2; exit 4` exited with code 4 (job 100)
        0 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
        ");
    });
}

#[test]
fn a_generic_executor_without_templates_is_refused_before_anything_runs() {
    let env = TestEnv::new()
        .pipeline(
            "
            stages:
              a:
                cmd: echo a > a.txt
                outs: [a.txt]
            ",
        )
        .file(
            "pipe.toml",
            "[executor]\nkind = \"generic\"\n[executor.generic]\nsubmit = \"qsub {script}\"\n",
        );
    let out = env.pipe(&["repro"]).code(2);
    insta::assert_snapshot!(out.stderr, @r#"
    error: pipe.toml: the generic executor needs `status` in [executor.generic] of pipe.toml
      hint: set submit, status and cancel templates, e.g. submit = "qsub {script}"; see the README
    "#);
    assert!(!env.exists("a.txt"));
    let bad = env.pipe(&["repro", "--executor", "pbs"]).code(2);
    insta::assert_snapshot!(bad.stderr, @r"
    error: invalid value 'pbs' for '--executor <KIND>': `pbs` is no executor; executors are: local, slurm, generic

    For more information, try '--help'.
    ");
}

#[test]
fn an_experiment_sweep_runs_its_stages_as_jobs() {
    let Some((env, _)) = on_cluster(
        r#"
        stages:
          sw_train:
            cmd: >-
              echo "{\"lr\": ${train.lr}, \"job\": $SLURM_JOB_ID}" > metrics.json
            metrics:
              - metrics.json:
                  cache: false
        "#,
    ) else {
        return;
    };
    let env = env.params("train:\n  lr: 0.1\n");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    let out = env
        .pipe(&[
            "exp",
            "run",
            "-S",
            "train.lr=0.2,0.3,0.4",
            "-n",
            "sweep",
            "-j",
            "2",
            "--executor",
            "slurm",
        ])
        .ok();
    let refs = env.git(&["for-each-ref", "--format=%(refname)", "refs/exps"]);
    let mut seen: Vec<(String, String)> = refs
        .lines()
        .map(|r| {
            let metrics: serde_json::Value =
                serde_json::from_str(&env.git(&["show", &format!("{r}:metrics.json")])).unwrap();
            (metrics["lr"].to_string(), metrics["job"].to_string())
        })
        .collect();
    seen.sort();
    let lrs: Vec<&str> = seen.iter().map(|(lr, _)| lr.as_str()).collect();
    assert_eq!(lrs, ["0.2", "0.3", "0.4"], "{}", out.stderr);
    let mut jobs: Vec<u64> = seen.iter().map(|(_, j)| j.parse().unwrap()).collect();
    jobs.dedup();
    assert_eq!(
        jobs.len(),
        3,
        "each experiment's stage was a job of its own"
    );
}

#[test]
fn resources_and_the_executor_are_not_part_of_the_fingerprint() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          fit:
            cmd: echo fit > model.txt
            outs: [model.txt]
            resources: {cpus: 2, mem: 1G}
        ",
    );
    env.pipe(&["repro"]).ok();
    env.write(
        "pipeline.yaml",
        "stages:\n  fit:\n    cmd: echo fit > model.txt\n    outs: [model.txt]\n    executor: local\n    resources: {cpus: 8, mem: 64G, gpus: 1, partition: gpu, time: \"2-00:00:00\"}\n",
    );
    let out = env.pipe(&["status"]).ok();
    insta::assert_snapshot!(out.stdout, @"Everything is up to date.");
}

#[test]
fn bad_resources_and_executors_are_located_errors() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          fit:
            cmd: echo fit > model.txt
            outs: [model.txt]
            executor: pbs
            resources: {cpus: two, cpu: 2, mem: 8G}
        ",
    );
    let out = env.pipe(&["repro"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: pipeline.yaml:5:15: stage `fit`: `executor` is `pbs`, which is no executor
      hint: executors are: local, slurm, generic
    error: pipeline.yaml:6:23: stage `fit`: resources: `cpus` must be a whole number, not `two`
    error: pipeline.yaml:6:28: stage `fit`: unknown field `cpu`
      hint: did you mean `cpus`?
    ");
}

#[test]
fn the_readme_s_executor_settings_are_what_pipe_reads() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let start = readme.find("```toml\n[executor]").expect("the example") + "```toml\n".len();
    let end = readme[start..].find("```").unwrap();
    let env = TestEnv::new()
        .pipeline(
            "
            stages:
              a:
                cmd: echo a > a.txt
                outs: [a.txt]
            ",
        )
        .file("pipe.toml", &readme[start..start + end]);
    let out = env.pipe(&["status"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    a:
        never run
    ");
}
