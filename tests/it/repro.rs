//! `pipe repro`: what runs, in which order, with which flags, and what a
//! failure leaves behind.

use std::time::Duration;

use crate::env::TestEnv;

/// Two stages, declared downstream first: `prepare` upper-cases input.txt,
/// `train` copies the result and the line of params.yaml holding `C`
/// (params: [fit.C]). Each appends its name to runs.log when it runs.
fn two_stages() -> TestEnv {
    TestEnv::new()
        .file("input.txt", "hello\n")
        .params(
            "
            fit:
              C: 100000
              tol: 0.1
            ",
        )
        .pipeline(
            "
            stages:
              train:
                cmd: echo train >> runs.log; cp prepared.txt model.txt; grep 'C:' params.yaml >> model.txt
                deps: [prepared.txt]
                params: [fit.C]
                outs: [model.txt]
              prepare:
                cmd:
                  - echo prepare >> runs.log
                  - echo preparing; tr a-z A-Z < input.txt > prepared.txt
                deps: [input.txt]
                outs: [prepared.txt]
            ",
        )
}

fn set_c(env: &TestEnv, c: &str) {
    env.write("params.yaml", &format!("fit:\n  C: {c}\n  tol: 0.1\n"));
}

#[test]
fn runs_stale_stages_in_dependency_order_and_streams_their_output() {
    let env = two_stages();
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare", "train"]);
    assert_eq!(env.read("model.txt"), "HELLO\n  C: 100000\n");
    // Each command (`> cmd`, as DVC prints it), then the stage's stdout,
    // prefixed with its name, on stdout; status on stderr.
    assert_eq!(
        out.stdout,
        "> echo prepare >> runs.log\n\
         > echo preparing; tr a-z A-Z < input.txt > prepared.txt\n\
         [prepare] preparing\n\
         > echo train >> runs.log; cp prepared.txt model.txt; grep 'C:' params.yaml >> model.txt\n"
    );
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn a_stages_stderr_is_prefixed_too() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          noisy:
            cmd: echo to-out; echo to-err >&2; echo x > x.txt
            outs: [x.txt]
        ",
    );
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(
        out.stdout,
        "> echo to-out; echo to-err >&2; echo x > x.txt\n[noisy] to-out\n"
    );
    assert!(
        out.stderr.lines().any(|l| l == "[noisy] to-err"),
        "{}",
        out.stderr
    );
}

#[test]
fn nothing_runs_when_nothing_changed() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    let lock = env.read("pipeline.lock");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare", "train"], "nothing ran again");
    assert_eq!(out.stdout, "");
    assert_eq!(out.counts(), "0 ran, 0 restored, 2 up to date, 0 failed");
    assert_eq!(env.read("pipeline.lock"), lock, "the lock is unchanged");
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn a_changed_dep_reruns_the_stage_and_its_downstream() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    env.write("input.txt", "goodbye\n");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare", "train", "prepare", "train"]);
    assert_eq!(env.read("model.txt"), "GOODBYE\n  C: 100000\n");
    assert!(
        out.stderr
            .contains("Running stage prepare: dep input.txt modified"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Running stage train: dep prepared.txt modified"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_upstream_rerun_with_identical_output_leaves_downstream_alone() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    // Different input, same upper-cased output.
    env.write("input.txt", "HeLLo\n");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare", "train", "prepare"]);
    assert_eq!(out.counts(), "1 ran, 0 restored, 1 up to date, 0 failed");
}

#[test]
fn a_changed_param_reruns_only_the_stages_that_use_it() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();

    // fit.tol is in params.yaml but no stage lists it.
    env.write("params.yaml", "fit:\n  C: 100000\n  tol: 0.5\n");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare", "train"], "an unused param changed");
    assert_eq!(out.counts(), "0 ran, 0 restored, 2 up to date, 0 failed");

    env.write("params.yaml", "fit:\n  C: 1\n  tol: 0.5\n");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare", "train", "train"]);
    assert!(
        out.stderr
            .contains("Running stage train: param fit.C changed: 100000 → 1"),
        "{}",
        out.stderr
    );
    assert_eq!(env.read("model.txt"), "HELLO\n  C: 1\n");
}

#[test]
fn a_changed_command_reruns_the_stage() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    let yaml = env.read("pipeline.yaml").replace(
        "cp prepared.txt model.txt",
        "cat prepared.txt prepared.txt > model.txt",
    );
    env.write("pipeline.yaml", &yaml);
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare", "train", "train"]);
    assert_eq!(env.read("model.txt"), "HELLO\nHELLO\n  C: 100000\n");
    assert!(
        out.stderr.contains("Running stage train: command changed:"),
        "{}",
        out.stderr
    );
}

#[test]
fn reverting_a_param_restores_outputs_from_the_run_cache_without_running() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    set_c(&env, "1");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("model.txt"), "HELLO\n  C: 1\n");
    assert_eq!(env.runs(), ["prepare", "train", "train"]);

    set_c(&env, "100000");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(
        env.runs(),
        ["prepare", "train", "train"],
        "the command did not run again"
    );
    assert_eq!(env.read("model.txt"), "HELLO\n  C: 100000\n", "restored");
    assert_eq!(out.counts(), "0 ran, 1 restored, 1 up to date, 0 failed");
    assert!(
        out.stderr
            .contains("Restoring stage train: param fit.C changed: 1 → 100000"),
        "{}",
        out.stderr
    );
    // And the stage is now up to date with the restored output.
    let out = env.pipe(&["status"]).ok();
    assert_eq!(out.stdout, "Everything is up to date.\n");
}

#[test]
fn reverting_a_dep_restores_outputs_from_the_run_cache_without_running() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    env.write("input.txt", "other\n");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("model.txt"), "OTHER\n  C: 100000\n");
    env.write("input.txt", "hello\n");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "0 ran, 2 restored, 0 up to date, 0 failed");
    assert_eq!(env.runs(), ["prepare", "train", "prepare", "train"]);
    assert_eq!(env.read("model.txt"), "HELLO\n  C: 100000\n");
}

#[test]
fn a_deleted_output_is_restored_from_the_run_cache_by_repro() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    env.remove("model.txt");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "0 ran, 1 restored, 1 up to date, 0 failed");
    assert_eq!(env.runs(), ["prepare", "train"]);
    assert_eq!(env.read("model.txt"), "HELLO\n  C: 100000\n");
}

#[test]
fn no_run_cache_runs_the_command_instead_of_restoring() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    set_c(&env, "1");
    env.pipe(&["repro"]).ok();
    set_c(&env, "100000");
    let out = env.pipe(&["repro", "--no-run-cache"]).ok();
    assert_eq!(env.runs(), ["prepare", "train", "train", "train"]);
    assert_eq!(out.counts(), "1 ran, 0 restored, 1 up to date, 0 failed");
    assert_eq!(env.read("model.txt"), "HELLO\n  C: 100000\n");
}

#[test]
fn force_reruns_the_target_and_its_upstream_stages() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    let out = env.pipe(&["repro", "-f", "train"]).ok();
    assert_eq!(env.runs(), ["prepare", "train", "prepare", "train"]);
    assert!(
        out.stderr.contains("Running stage train: forced"),
        "{}",
        out.stderr
    );
    // Forced means run, not restore from the run cache.
    assert_eq!(out.counts(), "2 ran, 0 restored, 0 up to date, 0 failed");
    env.pipe(&["repro", "--force", "-s", "train"]).ok();
    assert_eq!(
        env.runs(),
        ["prepare", "train", "prepare", "train", "train"]
    );
}

#[test]
fn single_item_runs_only_the_named_stage() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    env.write("input.txt", "changed\n");
    set_c(&env, "7");
    let out = env.pipe(&["repro", "--single-item", "train"]).ok();
    assert_eq!(env.runs(), ["prepare", "train", "train"]);
    assert_eq!(out.counts(), "1 ran, 0 restored, 0 up to date, 0 failed");
    // train ran on the old prepared.txt; prepare is still stale.
    assert_eq!(env.read("model.txt"), "HELLO\n  C: 7\n");
    let status = env.pipe(&["status"]).ok();
    assert!(status.stdout.starts_with("prepare:\n"), "{}", status.stdout);
}

/// a → b → c, and d on its own.
fn chain() -> TestEnv {
    TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo a >> runs.log; echo a > a.txt
            outs: [a.txt]
          b:
            cmd: echo b >> runs.log; cat a.txt > b.txt; echo b >> b.txt
            deps: [a.txt]
            outs: [b.txt]
          c:
            cmd: echo c >> runs.log; cat b.txt > c.txt; echo c >> c.txt
            deps: [b.txt]
            outs: [c.txt]
          d:
            cmd: echo d >> runs.log; echo d > d.txt
            outs: [d.txt]
        ",
    )
}

#[test]
fn targets_select_their_upstream_stages() {
    let env = chain();
    env.pipe(&["repro", "-j", "1", "b"]).ok();
    assert_eq!(env.runs(), ["a", "b"]);
    env.pipe(&["repro", "-j", "1", "c", "d"]).ok();
    assert_eq!(env.runs(), ["a", "b", "c", "d"]);
}

#[test]
fn downstream_runs_the_target_and_everything_below_it() {
    let env = chain();
    env.pipe(&["repro", "-j", "1"]).ok();
    env.pipe(&["repro", "-j", "1", "-f", "--downstream", "b"])
        .ok();
    assert_eq!(env.runs(), ["a", "b", "c", "d", "b", "c"]);
}

#[test]
fn dry_prints_what_would_run_and_why_and_runs_nothing() {
    let env = two_stages();
    let before = env.tree();
    let out = env.pipe(&["repro", "--dry"]).ok();
    assert!(env.runs().is_empty());
    assert!(!env.exists("pipeline.lock"));
    let written: Vec<_> = env
        .tree()
        .into_keys()
        .filter(|p| !before.contains_key(p) && !p.starts_with(".pipeline-cache"))
        .collect();
    assert!(written.is_empty(), "--dry wrote {written:?}");
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!("dry_never_run", out.stdout);

    env.pipe(&["repro"]).ok();
    set_c(&env, "1");
    let out = env.pipe(&["repro", "--dry"]).ok();
    assert_eq!(env.runs(), ["prepare", "train"]);
    insta::assert_snapshot!("dry_param_changed", out.stdout);

    env.pipe(&["repro"]).ok();
    set_c(&env, "100000");
    let out = env.pipe(&["repro", "--dry"]).ok();
    assert_eq!(env.runs(), ["prepare", "train", "train"]);
    insta::assert_snapshot!("dry_restorable", out.stdout);
}

/// `bad` fails; `after_bad` needs it; `other` is independent of both.
fn failing() -> TestEnv {
    TestEnv::new().pipeline(
        "
        stages:
          good:
            cmd: echo good >> runs.log; echo good > good.txt
            outs: [good.txt]
          bad:
            cmd: echo bad >> runs.log; echo about to fail; exit 3
            outs: [bad.txt]
          after_bad:
            cmd: echo after_bad >> runs.log; cp bad.txt after.txt
            deps: [bad.txt]
            outs: [after.txt]
          other:
            cmd: echo other >> runs.log; echo other > other.txt
            outs: [other.txt]
        ",
    )
}

#[test]
fn a_failing_stage_stops_the_run_exits_1_and_records_nothing() {
    let env = failing();
    let out = env.pipe(&["repro", "-j", "1"]).code(1);
    assert_eq!(env.runs(), ["good", "bad"]);
    assert_eq!(env.locked_stages(), ["good"]);
    assert_eq!(
        out.stdout,
        "> echo good >> runs.log; echo good > good.txt\n\
         > echo bad >> runs.log; echo about to fail; exit 3\n\
         [bad] about to fail\n"
    );
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn keep_going_runs_the_independent_stages_after_a_failure() {
    let env = failing();
    let out = env.pipe(&["repro", "-k", "-j", "1"]).code(1);
    assert_eq!(env.runs(), ["good", "bad", "other"]);
    assert_eq!(env.locked_stages(), ["good", "other"]);
    assert_eq!(
        out.counts(),
        "2 ran, 0 restored, 0 up to date, 1 failed, 1 skipped"
    );
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr);
}

#[test]
fn a_failed_rerun_keeps_the_previous_lock_entry() {
    let env = two_stages();
    env.pipe(&["repro"]).ok();
    let entry = env.lock()["stages"]["train"].clone();
    let yaml = env.read("pipeline.yaml").replace(
        "params.yaml >> model.txt",
        "params.yaml >> model.txt; exit 1",
    );
    env.write("pipeline.yaml", &yaml);
    env.pipe(&["repro"]).code(1);
    assert_eq!(
        env.lock()["stages"]["train"],
        entry,
        "the failed run must not replace the entry of the last success"
    );
    // It is still stale, and reruns next time.
    let status = env.pipe(&["status"]).ok();
    assert!(status.stdout.starts_with("train:\n"), "{}", status.stdout);
}

#[test]
fn a_stage_that_does_not_write_its_output_fails() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          lazy:
            cmd: echo lazy >> runs.log
            outs: [never.txt]
        ",
    );
    let out = env.pipe(&["repro"]).code(1);
    assert_eq!(env.runs(), ["lazy"]);
    assert!(env.locked_stages().is_empty());
    assert!(
        out.stderr.contains("never.txt"),
        "the error names the missing output:\n{}",
        out.stderr
    );
}

#[test]
fn a_command_list_runs_in_order_and_stops_at_the_first_failure() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          steps:
            cmd:
              - echo one >> runs.log
              - echo two >> runs.log; exit 1
              - echo three >> runs.log
            outs: [x.txt]
        ",
    );
    env.pipe(&["repro"]).code(1);
    assert_eq!(env.runs(), ["one", "two"]);
}

#[test]
fn independent_stages_run_in_parallel() {
    // Each stage waits (up to 5 s) for the other one to have started: they
    // can only both succeed if they run at the same time.
    let wait_for = |me: &str, other: &str| {
        format!(
            "touch {me}.started; i=0; while [ ! -e {other}.started ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; test -e {other}.started && echo {me} > {me}.txt"
        )
    };
    let env = TestEnv::new().file(
        "pipeline.yaml",
        &format!(
            "stages:\n  left:\n    cmd: {}\n    outs: [left.txt]\n  right:\n    cmd: {}\n    outs: [right.txt]\n",
            wait_for("left", "right"),
            wait_for("right", "left")
        ),
    );
    let out = env.pipe(&["repro", "-j", "2"]).ok();
    assert_eq!(out.counts(), "2 ran, 0 restored, 0 up to date, 0 failed");
    assert!(
        out.elapsed < Duration::from_secs(4),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn jobs_1_runs_one_stage_at_a_time() {
    let step = |me: &str| {
        format!("echo {me} start >> runs.log; sleep 0.2; echo {me} end >> runs.log; echo {me} > {me}.txt")
    };
    let env = TestEnv::new().file(
        "pipeline.yaml",
        &format!(
            "stages:\n  left:\n    cmd: {}\n    outs: [left.txt]\n  right:\n    cmd: {}\n    outs: [right.txt]\n",
            step("left"),
            step("right")
        ),
    );
    env.pipe(&["repro", "-j", "1"]).ok();
    assert_eq!(
        env.runs(),
        ["left start", "left end", "right start", "right end"]
    );
}

#[test]
fn outputs_are_removed_before_a_stage_runs() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          append:
            cmd: echo line >> out.txt; mkdir -p dir; echo x >> dir/a.txt
            outs: [out.txt, dir/]
        ",
    );
    env.pipe(&["repro"]).ok();
    env.write("dir/stale.txt", "left over\n");
    env.pipe(&["repro", "-f"]).ok();
    assert_eq!(env.read("out.txt"), "line\n");
    assert_eq!(env.read("dir/a.txt"), "x\n");
    assert!(!env.exists("dir/stale.txt"));
}

#[test]
fn json_prints_the_summary_on_stdout() {
    let env = failing();
    let out = env.pipe(&["repro", "--json", "-k", "-j", "1"]).code(1);
    // Stage output goes to stdout too; the JSON document is the rest.
    let json_start = out.stdout.find('{').expect("a JSON document");
    let summary: serde_json::Value =
        serde_json::from_str(&out.stdout[json_start..]).expect("valid JSON");
    let outcomes: Vec<(String, String)> = summary["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("good", "ran"),
        ("bad", "failed"),
        ("after_bad", "skipped"),
        ("other", "ran"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(outcomes, expected);
    assert!(summary["seconds"].is_number());
}

#[test]
fn runs_from_a_subdirectory_or_with_dash_c() {
    let env = two_stages().file("sub/dir/.keep", "");
    let out = env
        .command(&["repro"])
        .current_dir(env.path("sub/dir"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(env.runs(), ["prepare", "train"]);
    assert!(
        env.exists("model.txt"),
        "paths are relative to the project root"
    );

    let elsewhere = tempfile::tempdir().unwrap();
    set_c(&env, "3");
    let root = env.root().display().to_string();
    let out = env
        .command(&["-C", &root, "repro"])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(env.runs(), ["prepare", "train", "train"]);
}

#[test]
fn a_dep_that_cannot_be_read_fails_its_stage_and_keep_going_runs_the_others() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          reads_fifo:
            cmd: cat in.fifo > a.txt
            deps: [in.fifo]
            outs: [a.txt]
          independent:
            cmd: echo z > z.txt
            outs: [z.txt]
        ",
    );
    let made = std::process::Command::new("mkfifo")
        .arg(env.path("in.fifo"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let out = env
        .spawn(&["repro", "-k", "-j", "1"])
        .wait(std::time::Duration::from_secs(10))
        .code(1);
    assert_eq!(out.counts(), "1 ran, 0 restored, 0 up to date, 1 failed");
    assert!(
        out.stderr.lines().any(|l| l.starts_with("✗ reads_fifo")
            && l.contains("failed: cannot read `in.fifo`: it is a named pipe (FIFO)")),
        "{}",
        out.stderr
    );
    assert_eq!(env.read("z.txt"), "z\n");
}
