//! Outputs that are not what `pipeline.lock` records: another commit's
//! version after `git checkout` (restored by `pipe checkout`), a hand edit
//! (never lost by `pipe repro`; recorded by `pipe commit`), what a failed
//! run left behind.

use crate::env::{blake3_hex, TestEnv};

/// `train` writes `model.txt` from the param `c`; runs.log shows its runs.
fn project() -> TestEnv {
    TestEnv::new().params("c: 1\n").pipeline(
        "
        stages:
          train:
            cmd: echo train >> runs.log; echo model ${c} > model.txt
            params: [c]
            outs: [model.txt]
        ",
    )
}

fn set_c(env: &TestEnv, c: u32) {
    env.write("params.yaml", &format!("c: {c}\n"));
}

#[test]
fn checkout_after_git_checkout_restores_the_commits_outputs_without_force() {
    let env = project().git_init();
    env.pipe(&["repro"]).ok();
    env.commit("c = 1");
    set_c(&env, 2);
    env.pipe(&["repro"]).ok();
    env.commit("c = 2");

    // model.txt is ignored, so git leaves c = 2's version in place.
    env.git(&["checkout", "-q", "HEAD~1"]);
    assert_eq!(env.read("model.txt"), "model 2\n");
    let out = env.pipe(&["checkout"]).ok();
    insta::assert_snapshot!(out.stdout, @"restored model.txt");
    assert_eq!(env.read("model.txt"), "model 1\n");
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );

    env.git(&["checkout", "-q", "main"]);
    let out = env.pipe(&["checkout"]).ok();
    insta::assert_snapshot!(out.stdout, @"restored model.txt");
    assert_eq!(env.read("model.txt"), "model 2\n");
    assert_eq!(env.runs(), ["train", "train"], "nothing ran");
}

#[test]
fn checkout_keeps_an_edit_the_cache_has_no_copy_of() {
    let env = project();
    env.pipe(&["repro"]).ok();
    env.write("model.txt", "my model\n");
    let out = env.pipe(&["checkout"]).code(1);
    insta::assert_snapshot!(out.stdout, @"kept model.txt: it was edited, and the cache has no copy of this version (record it with `pipe commit train`, or replace it with `pipe checkout -f train`)");
    assert_eq!(env.read("model.txt"), "my model\n");
}

#[test]
fn repro_keeps_a_hand_edited_output_in_the_cache_before_replacing_it() {
    let env = project();
    env.pipe(&["repro"]).ok();
    env.write("model.txt", "my model\n");
    let out = env.pipe(&["repro", "-f"]).ok();
    let hash = blake3_hex(b"my model\n");
    let object = format!(".pipeline-cache/v1/objects/{}/{}", &hash[..2], &hash[2..]);
    let mut settings = env.settings();
    settings.add_filter(&object, "[OBJECT]");
    settings.bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            Running stage train: forced; output model.txt modified
            warning: stage train: output model.txt is not what pipe recorded (edited by hand?); this version is kept in the cache as [OBJECT] (`pipe commit train` would have recorded it)
            ✓ train  ran  [ELAPSED]
            1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
            ");
    });
    assert_eq!(env.read(&object), "my model\n");
    assert_eq!(env.read("model.txt"), "model 1\n");

    // Restoring from the run cache replaces it too: kept the same way.
    set_c(&env, 2);
    env.pipe(&["repro"]).ok();
    set_c(&env, 1);
    env.write("model.txt", "edited again\n");
    let out = env.pipe(&["repro"]).ok();
    let hash = blake3_hex(b"edited again\n");
    let object = format!(".pipeline-cache/v1/objects/{}/{}", &hash[..2], &hash[2..]);
    let mut settings = env.settings();
    settings.add_filter(&object, "[OBJECT]");
    settings.bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            Restoring stage train: param c changed: 2 → 1; output model.txt modified
            warning: stage train: output model.txt is not what pipe recorded (edited by hand?); this version is kept in the cache as [OBJECT] (`pipe commit train` would have recorded it)
            ✓ train  restored  [ELAPSED]
            0 ran, 1 restored, 0 up to date, 0 failed in [ELAPSED]
            ");
    });
    assert_eq!(env.read(&object), "edited again\n");
    assert_eq!(env.read("model.txt"), "model 1\n");
}

#[test]
fn what_a_failed_run_left_is_cleared_without_a_warning() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          half:
            cmd: echo partial > out.txt; [ -e ok ] && echo whole > out.txt
            outs: [out.txt]
        ",
    );
    env.pipe(&["repro"]).code(1);
    assert_eq!(env.read("out.txt"), "partial\n");
    env.write("ok", "");
    let out = env.pipe(&["repro"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            Running stage half: never run
            ✓ half  ran  [ELAPSED]
            1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
            ");
    });
    assert_eq!(env.read("out.txt"), "whole\n");
}

#[test]
fn commit_records_a_hand_edited_output_and_checkout_brings_it_back() {
    let env = project();
    env.pipe(&["repro"]).ok();
    env.write("model.txt", "my model\n");
    let out = env.pipe(&["commit", "-f"]).ok();
    insta::assert_snapshot!(out.stdout, @r"recorded train: output model.txt modified");
    assert_eq!(out.stderr, "");
    assert_eq!(
        env.locked_out_hash("train", "model.txt"),
        blake3_hex(b"my model\n")
    );
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    env.remove("model.txt");
    env.pipe(&["checkout"]).ok();
    assert_eq!(env.read("model.txt"), "my model\n");
    assert_eq!(env.runs(), ["train"], "nothing ran");

    let out = env.pipe(&["commit", "-f"]).ok();
    assert_eq!(
        out.stdout,
        "Nothing to record: the stages are up to date.\n"
    );
}

#[test]
fn commit_records_a_changed_param_without_running() {
    let env = project();
    env.pipe(&["repro"]).ok();
    set_c(&env, 3);
    let out = env.pipe(&["commit", "-f", "train"]).ok();
    insta::assert_snapshot!(out.stdout, @r"recorded train: param c changed: 1 → 3");
    assert_eq!(
        env.lock()["stages"]["train"]["params"]["params.yaml"]["c"],
        3
    );
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    assert_eq!(env.read("model.txt"), "model 1\n");
    assert_eq!(env.runs(), ["train"]);
}

#[test]
fn commit_asks_on_a_terminal_and_refuses_without_one() {
    let env = project();
    env.pipe(&["repro"]).ok();
    env.write("model.txt", "my model\n");
    let lock = env.read("pipeline.lock");

    let out = env.pipe(&["commit"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
        error: recording a changed stage needs a confirmation, and there is no terminal to ask on:
          train: output model.txt modified
          hint: `pipe commit -f` records them as they are; `pipe repro` runs them instead
        ");
    assert_eq!(env.read("pipeline.lock"), lock);

    let out = env.pipe_on_terminal(&["commit"], "n\n").code(1);
    insta::assert_snapshot!(out.stdout, @r"
        train: output model.txt modified
        Record it as it is? [y/N] error: stage train was not recorded
          hint: `pipe repro train` runs it instead; `pipe commit -f` records without asking
        ");
    assert_eq!(env.read("pipeline.lock"), lock);

    let out = env.pipe_on_terminal(&["commit"], "y\n").ok();
    insta::assert_snapshot!(out.stdout, @r"
        train: output model.txt modified
        Record it as it is? [y/N] recorded train: output model.txt modified
        ");
    assert_eq!(
        env.locked_out_hash("train", "model.txt"),
        blake3_hex(b"my model\n")
    );
}

#[test]
fn commit_refuses_a_stage_whose_output_is_missing() {
    let env = project();
    env.pipe(&["repro"]).ok();
    env.remove("model.txt");
    let lock = env.read("pipeline.lock");
    let out = env.pipe(&["commit", "-f"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
        error: stage train: output model.txt is missing, so there is nothing to record
          hint: `pipe repro train` runs the stage; `pipe checkout train` restores its recorded outputs
        ");
    assert_eq!(env.read("pipeline.lock"), lock);
}
