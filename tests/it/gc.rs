//! `pipe gc`: DVC's scopes (`-w`, `-a`, `-T`, `-A`, `--rev`), what it says
//! it will remove, and the confirmation it needs before removing anything.

use crate::env::{blake3_hex, TestEnv};

/// `train` writes `model.txt` from the param `c`.
fn project() -> TestEnv {
    TestEnv::new().params("c: 1\n").pipeline(
        "
        stages:
          train:
            cmd: echo model ${c} > model.txt
            params: [c]
            outs: [model.txt]
        ",
    )
}

fn set_c(env: &TestEnv, c: u32) {
    env.write("params.yaml", &format!("c: {c}\n"));
}

/// Two commits, each with its run: c = 1, then c = 2 (on `main`).
fn two_runs() -> TestEnv {
    let env = project().git_init();
    env.pipe(&["repro"]).ok();
    env.commit("c = 1");
    set_c(&env, 2);
    env.pipe(&["repro"]).ok();
    env.commit("c = 2");
    env
}

fn cached(env: &TestEnv, c: u32) -> bool {
    env.object(&blake3_hex(format!("model {c}\n").as_bytes()))
        .exists()
}

#[test]
fn without_a_scope_gc_is_refused() {
    let env = two_runs();
    let out = env.pipe(&["gc", "-f"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
        error: pipe gc needs to be told what to keep: without a scope it would have to guess what may be removed
          hint: -w keeps what the workspace uses; -a, -T, -A and --rev REV also keep what branches, tags, all commits or REV use (`pipe gc --help`)
        ");
    assert!(cached(&env, 1) && cached(&env, 2));
}

#[test]
fn workspace_scope_says_what_goes_and_needs_force_without_a_terminal() {
    let env = two_runs();
    let out = env.pipe(&["gc", "-w"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
        error: pipe gc would remove 1 object (8 B) and 1 run-cache entry, keeping only what is used by the workspace; it asks before it removes anything, and there is no terminal to ask on
          hint: add -f to remove them; --dry only says what would go; -a, -T, -A or --rev keep more
        ");
    assert!(cached(&env, 1));

    let out = env.pipe(&["gc", "-w", "--dry"]).ok();
    insta::assert_snapshot!(out.stdout, @r"Would remove 1 object (8 B) and 1 run-cache entry, keeping 1 object used by the workspace.");
    assert!(cached(&env, 1));

    let out = env.pipe(&["gc", "-w", "-f"]).ok();
    insta::assert_snapshot!(out.stdout, @r"Removed 1 object (8 B) and 1 run-cache entry; kept 1 object.");
    assert!(!cached(&env, 1) && cached(&env, 2));

    // That is what -w means: the older commit's outputs are gone.
    env.git(&["checkout", "-q", "HEAD~1"]);
    let out = env.pipe(&["checkout"]).code(1);
    insta::assert_snapshot!(out.stdout, @r"cannot restore model.txt: not in the cache (run `pipe repro train`)");
}

#[test]
fn all_commits_keep_what_an_older_commit_needs() {
    let env = two_runs();
    let out = env.pipe(&["gc", "-A", "-f"]).ok();
    insta::assert_snapshot!(out.stdout, @r"Nothing to remove: everything in the cache is used by the workspace and all 3 commits.");
    env.git(&["checkout", "-q", "HEAD~1"]);
    env.pipe(&["checkout"]).ok();
    assert_eq!(env.read("model.txt"), "model 1\n");
}

#[test]
fn all_branches_and_tags_keep_their_tips() {
    let env = two_runs();
    // c = 3 on a branch, c = 4 tagged on another commit, back to main.
    env.git(&["checkout", "-q", "-b", "three"]);
    set_c(&env, 3);
    env.pipe(&["repro"]).ok();
    env.commit("c = 3");
    set_c(&env, 4);
    env.pipe(&["repro"]).ok();
    env.commit("c = 4");
    env.git(&["tag", "four"]);
    env.git(&["reset", "-q", "--hard", "HEAD~1"]);
    env.git(&["checkout", "-q", "main"]);
    env.pipe(&["checkout", "-f"]).ok();

    let out = env.pipe(&["gc", "-a", "--dry"]).ok();
    insta::assert_snapshot!(out.stdout, @r"Would remove 2 objects (16 B) and 2 run-cache entries, keeping 2 objects used by the workspace and all branches.");
    let out = env.pipe(&["gc", "-a", "-T", "-f"]).ok();
    insta::assert_snapshot!(out.stdout, @r"Removed 1 object (8 B) and 1 run-cache entry; kept 3 objects.");
    assert_eq!(
        [1, 2, 3, 4].map(|c| cached(&env, c)),
        [false, true, true, true]
    );
}

#[test]
fn revisions_keep_what_they_record() {
    let env = two_runs();
    set_c(&env, 3);
    env.pipe(&["repro"]).ok();
    env.commit("c = 3");
    let out = env.pipe(&["gc", "--rev", "HEAD~2", "-f"]).ok();
    insta::assert_snapshot!(out.stdout, @r"Removed 1 object (8 B) and 1 run-cache entry; kept 2 objects.");
    assert_eq!([1, 2, 3].map(|c| cached(&env, c)), [true, false, true]);

    set_c(&env, 2);
    env.pipe(&["repro"]).ok();
    env.commit("c = 2 again");
    let out = env.pipe(&["gc", "--rev", "HEAD~1", "-n", "2", "-f"]).ok();
    insta::assert_snapshot!(out.stdout, @r"Removed 1 object (8 B) and 1 run-cache entry; kept 2 objects.");
    assert_eq!([1, 2, 3].map(|c| cached(&env, c)), [false, true, true]);
}

#[test]
fn a_lock_in_scope_that_cannot_be_read_removes_nothing() {
    let env = two_runs();
    env.git(&["checkout", "-q", "-b", "broken"]);
    env.write("pipeline.lock", "stages: [\n");
    env.commit("a bad merge");
    env.git(&["checkout", "-q", "main"]);
    let out = env.pipe(&["gc", "-a", "-f"]).code(2);
    let mut settings = env.settings();
    settings.add_filter(r"\([0-9a-f]{7}\)", "([COMMIT])");
    settings.bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            error: cannot read the pipeline.lock of branch broken ([COMMIT]): pipeline.lock:1:9: not a valid lock file: stages: invalid type: sequence, expected a map
              hint: nothing was removed: gc must read every lock it keeps; narrow the scope (-w, --rev), or remove what cannot be read
            ");
    });
    assert!(cached(&env, 1) && cached(&env, 2));
}

#[test]
fn on_a_terminal_gc_asks_first() {
    let env = two_runs();
    let out = env.pipe_on_terminal(&["gc", "-w"], "n\n").code(1);
    insta::assert_snapshot!(out.stdout, @r"
        This removes 1 object (8 B) and 1 run-cache entry from the cache, keeping only what is used by the workspace.
        Remove them? [y/N] Nothing was removed.
        ");
    assert!(cached(&env, 1));
    let out = env.pipe_on_terminal(&["gc", "-w"], "y\n").ok();
    insta::assert_snapshot!(out.stdout, @r"
        This removes 1 object (8 B) and 1 run-cache entry from the cache, keeping only what is used by the workspace.
        Remove them? [y/N] Removed 1 object (8 B) and 1 run-cache entry; kept 1 object.
        ");
    assert!(!cached(&env, 1));
}

#[test]
fn outside_git_only_the_workspace_can_be_kept() {
    let env = project();
    env.pipe(&["repro"]).ok();
    set_c(&env, 2);
    env.pipe(&["repro"]).ok();
    let out = env.pipe(&["gc", "-a", "-f"]).code(2);
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
            error: [ROOT] is not inside a git repository; pipe gc -a, -T, -A or --rev needs git
              hint: run `git init && git add -A && git commit -m baseline` in the project first
            ");
    });
    assert!(cached(&env, 1));
    let out = env.pipe(&["gc", "-w", "-f"]).ok();
    insta::assert_snapshot!(out.stdout, @r"Removed 1 object (8 B) and 1 run-cache entry; kept 1 object.");
    assert!(!cached(&env, 1) && cached(&env, 2));
    let out = env.pipe(&["gc", "-w", "-f"]).ok();
    insta::assert_snapshot!(out.stdout, @r"Nothing to remove: everything in the cache is used by the workspace.");
}
