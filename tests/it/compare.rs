//! `pipe metrics show/diff` and `pipe params diff` against real git
//! repositories made with the `git` command line.

use serde_json::Value as Json;

use crate::env::TestEnv;

/// A pipeline whose only stage declares a JSON and a YAML metrics file; the
/// tests write and commit the metric files themselves.
fn project() -> TestEnv {
    TestEnv::new()
        .pipeline(
            "
            stages:
              train:
                cmd: echo train
                params: [train.lr]
                metrics:
                  - metrics.json:
                      cache: false
                  - eval/scores.yaml:
                      cache: false
            ",
        )
        .params(
            "
            train:
              lr: 0.1
              epochs: 3
            prep:
              lowercase: true
            ",
        )
        .file(
            "metrics.json",
            r#"{"accuracy": 0.912345678, "results": {"f1": 0.8, "auc": 0.93}, "n": 1000}"#,
        )
        .file(
            "eval/scores.yaml",
            "loss: 0.25\nper_class:\n  pos: 0.9\n  neg: 0.7\n",
        )
}

#[test]
fn metrics_show_flattens_json_and_yaml_without_git() {
    let env = project();
    let out = env.pipe(&["metrics", "show"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    Path              Metric         Value
    eval/scores.yaml  loss           0.25
    eval/scores.yaml  per_class.neg  0.7
    eval/scores.yaml  per_class.pos  0.9
    metrics.json      accuracy       0.91235
    metrics.json      n              1000
    metrics.json      results.auc    0.93
    metrics.json      results.f1     0.8
    ");
    let out = env
        .pipe(&["metrics", "show", "--md", "--precision", "2"])
        .ok();
    assert!(
        out.stdout
            .starts_with("| Path | Metric | Value |\n| --- | --- | --- |\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("| metrics.json | accuracy | 0.91 |"),
        "{}",
        out.stdout
    );
    let out = env.pipe(&["metrics", "show", "--json"]).ok();
    let json: Json = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["workspace"]["metrics.json"]["results.f1"], 0.8);
    assert_eq!(json["workspace"]["eval/scores.yaml"]["per_class.pos"], 0.9);
}

#[test]
fn metrics_diff_and_show_need_git_for_revisions() {
    let env = project();
    let out = env.pipe(&["metrics", "diff"]).code(2);
    assert!(
        out.stderr
            .contains("is not inside a git repository; pipe metrics diff needs git"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: run `git init"), "{}", out.stderr);
    let out = env.pipe(&["metrics", "show", "-a"]).code(2);
    assert!(
        out.stderr
            .contains("pipe metrics show --all-commits needs git"),
        "{}",
        out.stderr
    );
    let out = env.pipe(&["exp", "show"]).code(2);
    assert!(
        out.stderr.contains("pipe exp show needs git"),
        "{}",
        out.stderr
    );
}

/// Two commits: the second changes accuracy and f1, drops `n`, adds `recall`.
fn two_commits() -> (TestEnv, String, String) {
    let env = project().git_init();
    let first = env
        .git(&["rev-parse", "--short=7", "HEAD"])
        .trim()
        .to_string();
    env.write(
        "metrics.json",
        r#"{"accuracy": 0.95, "results": {"f1": 0.85, "auc": 0.93, "recall": 0.9}}"#,
    );
    let second = env.commit("better model");
    env.git(&["tag", "v2"]);
    (env, first, second)
}

#[test]
fn metrics_diff_between_two_real_commits() {
    let (env, first, second) = two_commits();
    let out = env.pipe(&["metrics", "diff", "HEAD~1", "HEAD"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    Path          Metric          HEAD~1   HEAD  Change
    metrics.json  accuracy        0.91235  0.95  +0.03765
    metrics.json  n               1000     —     —
    metrics.json  results.f1      0.8      0.85  +0.05
    metrics.json  results.recall  —        0.9   —
    ");
    // Short hashes, tags and branches name the same commits.
    let by_hash = env.pipe(&["metrics", "diff", &first, &second]).ok();
    let cells = |text: &str| -> Vec<Vec<String>> {
        text.lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(String::from).collect())
            .collect()
    };
    assert_eq!(cells(&by_hash.stdout), cells(&out.stdout));
    let header = by_hash.stdout.lines().next().unwrap().to_string();
    assert!(
        header.contains(&first) && header.contains(&second),
        "{header}"
    );
    let by_tag = env.pipe(&["metrics", "diff", &first, "v2", "--json"]).ok();
    let json: Json = serde_json::from_str(&by_tag.stdout).unwrap();
    assert_eq!(json["metrics.json"]["accuracy"]["old"], 0.912345678);
    assert_eq!(json["metrics.json"]["accuracy"]["new"], 0.95);
    assert_eq!(json["metrics.json"]["n"]["new"], Json::Null);
    assert!(
        json["metrics.json"].get("results.auc").is_none(),
        "unchanged keys are left out"
    );
    let all = env
        .pipe(&["metrics", "diff", "main~1", "main", "--all", "--json"])
        .ok();
    let json: Json = serde_json::from_str(&all.stdout).unwrap();
    assert_eq!(json["metrics.json"]["results.auc"]["diff"], 0.0);
    assert_eq!(json["eval/scores.yaml"]["loss"]["old"], 0.25);
}

#[test]
fn metrics_diff_defaults_to_head_against_the_workspace() {
    let (env, _, _) = two_commits();
    assert_eq!(
        env.pipe(&["metrics", "diff"]).ok().stdout,
        "",
        "nothing changed yet"
    );
    env.write(
        "eval/scores.yaml",
        "loss: 0.2\nper_class:\n  pos: 0.9\n  neg: 0.7\n",
    );
    let out = env.pipe(&["metrics", "diff", "--md"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    | Path | Metric | HEAD | workspace | Change |
    | --- | --- | --- | --- | --- |
    | eval/scores.yaml | loss | 0.25 | 0.2 | -0.05 |
    ");
}

#[test]
fn metrics_show_all_commits_has_a_column_per_commit() {
    let (env, first, second) = two_commits();
    let out = env
        .pipe(&["metrics", "show", "-a", "--precision", "2"])
        .ok();
    let header = out.stdout.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "Path",
            "Metric",
            "workspace",
            second.as_str(),
            first.as_str()
        ]
    );
    assert!(
        out.stdout
            .contains("accuracy        0.95       0.95     0.91"),
        "{}",
        out.stdout
    );
    // JSON keeps the same order: workspace, then newest first.
    let out = env.pipe(&["metrics", "show", "-a", "--json"]).ok();
    let at = |key: &str| out.stdout.find(&format!("\"{key}\": {{")).unwrap();
    assert!(
        at("workspace") < at(&second) && at(&second) < at(&first),
        "{}",
        out.stdout
    );
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json[&first]["metrics.json"]["accuracy"], 0.912345678);
    let out = env.pipe(&["metrics", "show", "-n", "1"]).code(2);
    assert!(
        out.stderr.contains("--all-commits"),
        "-n needs -a: {}",
        out.stderr
    );
    let out = env.pipe(&["metrics", "show", "-a", "-n", "1"]).ok();
    assert!(
        !out.stdout.contains(&first),
        "-n 1 keeps the newest commit only:\n{}",
        out.stdout
    );
}

#[test]
fn a_bad_metrics_file_at_one_revision_is_a_warning() {
    let (env, _, _) = two_commits();
    env.write("metrics.json", "{\"accuracy\": 0.97,");
    env.commit("broken metrics");
    let out = env.pipe(&["metrics", "diff", "HEAD~1", "HEAD"]).ok();
    assert!(
        out.stderr
            .contains("warning: metrics.json at HEAD: it is not valid JSON"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout
            .contains("metrics.json  accuracy        0.95    —"),
        "{}",
        out.stdout
    );
}

#[test]
fn unknown_revisions_are_named() {
    let (env, _, _) = two_commits();
    let out = env.pipe(&["metrics", "diff", "nope"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: unknown revision `nope`: not a branch, tag, commit or experiment
      hint: see `git log --oneline` and `git branch` for revisions
    ");
    let out = env.pipe(&["metrics", "diff", "HEAD^{tree}"]).code(2);
    assert!(
        out.stderr
            .contains("`HEAD^{tree}` names a tree, not a commit"),
        "{}",
        out.stderr
    );
    let out = env.pipe(&["params", "diff", "HEAD~9"]).code(2);
    assert!(
        out.stderr.contains("unknown revision `HEAD~9`"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_repository_without_commits_compares_with_nothing() {
    let env = project();
    env.git(&["init", "-q", "-b", "main"]);
    let out = env.pipe(&["metrics", "diff"]).ok();
    assert!(
        out.stderr.contains("the repository has no commits yet"),
        "{}",
        out.stderr
    );
    let row: Vec<&str> = out
        .stdout
        .lines()
        .find(|l| l.contains("accuracy"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(row, ["metrics.json", "accuracy", "—", "0.91235", "—"]);
    let out = env.pipe(&["exp", "run"]).code(2);
    assert!(
        out.stderr
            .contains("the repository has no commits yet; pipe exp run needs at least one"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: commit a baseline first"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_detached_head_is_a_revision_like_any_other() {
    let (env, first, _) = two_commits();
    env.git(&["checkout", "-q", "--detach", "HEAD~1"]);
    let out = env.pipe(&["metrics", "diff", "HEAD", "main"]).ok();
    assert!(
        out.stdout.contains("accuracy        0.91235  0.95"),
        "{}",
        out.stdout
    );
    let out = env.pipe(&["metrics", "show", "-a"]).ok();
    assert!(
        out.stdout.lines().next().unwrap().ends_with(&first),
        "{}",
        out.stdout
    );
}

#[test]
fn params_diff_shows_every_key_or_only_the_tracked_ones() {
    let env = project().git_init();
    env.write(
        "params.yaml",
        "train:\n  lr: 0.01\n  epochs: 5\nprep:\n  lowercase: true\n",
    );
    let out = env.pipe(&["params", "diff"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    Path         Param         HEAD  workspace  Change
    params.yaml  train.epochs  3     5          +2
    params.yaml  train.lr      0.1   0.01       -0.09
    ");
    // The stage depends on train.lr only.
    let out = env.pipe(&["params", "diff", "--deps"]).ok();
    assert!(!out.stdout.contains("epochs"), "{}", out.stdout);
    assert!(out.stdout.contains("train.lr"), "{}", out.stdout);
    let out = env.pipe(&["params", "diff", "--all", "--json"]).ok();
    let json: Json = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["params.yaml"]["prep.lowercase"]["old"], true);
    assert_eq!(json["params.yaml"]["train.lr"]["new"], 0.01);
}
