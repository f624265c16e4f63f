//! Cached outputs are kept out of git as pipe records them, the way DVC
//! does it: `/name` in the `.gitignore` of the output's directory, only in
//! a git repository, only for cached outputs, never for metrics files, and
//! never where git ignores or tracks the path already.

use crate::env::TestEnv;

/// `prepare` writes two cached files under data/; `train` a cached
/// directory, an uncached log and a metrics file. The project's own
/// `.gitignore` has a rule and no final newline.
fn project() -> TestEnv {
    TestEnv::new().file(".gitignore", "*.tmp").pipeline(
        "
            stages:
              prepare:
                cmd: mkdir -p data; echo a > data/train.csv; echo b > data/test.csv
                outs: [data/train.csv, data/test.csv]
              train:
                cmd: >-
                  mkdir -p model; cp data/train.csv model/w.bin;
                  echo '{\"acc\": 0.9}' > metrics.json; echo log > train.log
                deps: [data/train.csv]
                outs:
                  - model/
                  - train.log: {cache: false}
                metrics: [metrics.json]
            ",
    )
}

#[test]
fn cached_outputs_are_ignored_beside_them_and_the_rest_is_left_to_commit() {
    let env = project().git_init();
    let out = env.pipe(&["repro"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            Running stage prepare: never run
            ✓ prepare  ran  [ELAPSED]
            Running stage train: never run
            ✓ train    ran  [ELAPSED]
            To track the changes with git, run:

                git add .gitignore data/.gitignore pipeline.lock

            2 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
            ");
    });
    assert_eq!(env.read(".gitignore"), "*.tmp\n/model\n");
    assert_eq!(env.read("data/.gitignore"), "/train.csv\n/test.csv\n");
    insta::assert_snapshot!(env.git(&["status", "--porcelain", "--untracked-files=all"]), @r"
         M .gitignore
        ?? data/.gitignore
        ?? metrics.json
        ?? pipeline.lock
        ?? train.log
        ");

    // Committed, a forced rerun adds nothing twice and leaves git clean.
    env.commit("run");
    env.pipe(&["repro", "-f"]).ok();
    assert_eq!(env.read(".gitignore"), "*.tmp\n/model\n");
    assert_eq!(env.read("data/.gitignore"), "/train.csv\n/test.csv\n");
    assert_eq!(
        env.git(&["status", "--porcelain", "--untracked-files=all"]),
        ""
    );
}

#[test]
fn outside_git_no_gitignore_is_written() {
    let env = project();
    let out = env.pipe(&["repro"]).ok();
    assert!(!env.exists("data/.gitignore"));
    assert_eq!(env.read(".gitignore"), "*.tmp");
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            Running stage prepare: never run
            ✓ prepare  ran  [ELAPSED]
            Running stage train: never run
            ✓ train    ran  [ELAPSED]
            2 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
            ");
    });
}

#[test]
fn a_path_git_ignores_already_gets_no_entry() {
    let env = project().file(".gitignore", "/data/\nmodel\n").git_init();
    let out = env.pipe(&["repro"]).ok();
    assert!(!env.exists("data/.gitignore"));
    assert_eq!(env.read(".gitignore"), "/data/\nmodel\n");
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            Running stage prepare: never run
            ✓ prepare  ran  [ELAPSED]
            Running stage train: never run
            ✓ train    ran  [ELAPSED]
            2 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
            ");
    });
}

#[test]
fn an_output_git_tracks_is_left_alone_with_a_warning() {
    let env = project().git_init();
    env.pipe(&["repro"]).ok();
    // The data was committed before pipe wrote its .gitignore.
    env.remove("data/.gitignore");
    env.commit("data in git");
    let out = env.pipe(&["repro", "-f", "prepare"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            Running stage prepare: forced
            warning: stage prepare: output data/train.csv is tracked by git as well as cached by pipe; to leave it to the cache: git rm -r --cached data/train.csv
            warning: stage prepare: output data/test.csv is tracked by git as well as cached by pipe; to leave it to the cache: git rm -r --cached data/test.csv
            ✓ prepare  ran  [ELAPSED]
            1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
            ");
    });
    assert!(!env.exists("data/.gitignore"));
}
