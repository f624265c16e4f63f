//! `pipe exp`: experiments recorded as commits under refs/exps/, in real
//! git repositories made with the `git` command line.

use serde_json::Value as Json;

use crate::env::{Output, TestEnv};

/// A two-stage project under git: `prep` reads untracked raw data, `train`
/// writes a model and metrics that depend on `train.lr` and `train.epochs`.
/// `runs.log` (ignored) gets a line each time `train` really runs in the
/// workspace. The baseline run's lock and metrics are committed.
fn project() -> TestEnv {
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              prep:
                cmd: tr a-z A-Z < data/raw.txt > clean.txt
                deps: [data/raw.txt]
                outs: [clean.txt]
              train:
                cmd: >-
                  [ "${train.lr}" != "0.9" ] &&
                  (cat prefix.txt clean.txt; echo "lr=${train.lr} epochs=${train.epochs}") > model.txt &&
                  awk 'BEGIN { printf "{\"score\": %.4f, \"loss\": %.4f}\n", 1 - ${train.lr}, ${train.lr} * ${train.epochs} }' > metrics.json &&
                  echo train >> runs.log
                deps: [clean.txt, prefix.txt]
                outs: [model.txt]
                metrics:
                  - metrics.json:
                      cache: false
            "#,
        )
        .params(
            "
            train:
              lr: 0.1
              epochs: 3
            ",
        )
        .file("prefix.txt", "v1\n")
        .file("data/raw.txt", "some raw text\n")
        .file(".gitignore", "data/\nclean.txt\nmodel.txt\nruns.log\n");
    env.pipe(&["repro"]).ok();
    env.git_init()
}

fn settings(env: &TestEnv) -> insta::Settings {
    let mut s = env.settings();
    s.add_filter(r"\b[0-9a-f]{7}\b", "[REV]");
    s.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "[DATE]");
    s
}

/// What `git` says about HEAD, the branches, the index and the status.
fn git_state(env: &TestEnv) -> (String, String, String, Vec<u8>) {
    (
        env.git(&["log", "--oneline", "--decorate"]),
        env.git(&["branch", "-a"]),
        env.git(&["status", "--porcelain", "--ignored"]),
        std::fs::read(env.path(".git/index")).unwrap(),
    )
}

fn show(env: &TestEnv, rev: &str) -> String {
    env.git(&["show", rev])
}

/// The ref of experiment `name`: `refs/exps/ab/cdef…/name`, DVC's layout.
fn exp_ref(env: &TestEnv, name: &str) -> String {
    let refs = env.git(&["for-each-ref", "--format=%(refname)", "refs/exps"]);
    let found: Vec<&str> = refs
        .lines()
        .filter(|r| r.rsplit('/').next() == Some(name))
        .collect();
    assert_eq!(found.len(), 1, "one ref for experiment {name}: {refs}");
    found[0].to_string()
}

/// The ref in DVC's layout of experiment `name` on the commit `rev`.
fn dvc_ref(env: &TestEnv, rev: &str, name: &str) -> String {
    let sha = env.git(&["rev-parse", rev]).trim().to_string();
    format!("refs/exps/{}/{}/{name}", &sha[..2], &sha[2..])
}

/// Runs the experiment `half` (`train.lr` = 0.5) from the baseline.
fn run_half(env: &TestEnv) -> Output {
    env.pipe(&["exp", "run", "-S", "train.lr=0.5", "-n", "half"])
        .ok()
}

/// The `pipeline.lock` experiment `name` recorded.
fn exp_lock(env: &TestEnv, name: &str) -> yaml_serde::Value {
    yaml_serde::from_str(&show(env, &format!("{}:pipeline.lock", exp_ref(env, name)))).unwrap()
}

/// A project (not yet under git) with one stage that depends on `dep` and
/// param `v` (1) and writes the JSON `{FIELD: $(VALUE), "v": v}` to the
/// metrics file `m.json`; `value` is a shell command reading `dep`.
fn one_metric(dep: &str, field: &str, value: &str) -> TestEnv {
    TestEnv::new()
        .pipeline(&format!(
            r#"
            stages:
              measure:
                cmd: >-
                  echo "{{\"{field}\": $({value}), \"v\": ${{v}}}}" > m.json
                deps: [{dep}]
                params: [v]
                metrics:
                  - m.json:
                      cache: false
            "#
        ))
        .params("v: 1\n")
}

/// `m.json` as experiment `name` recorded it.
fn exp_metrics(env: &TestEnv, name: &str) -> Json {
    serde_json::from_str(&show(env, &format!("{}:m.json", exp_ref(env, name)))).unwrap()
}

#[test]
fn exp_run_records_a_commit_and_leaves_git_and_the_workspace_as_they_were() {
    let env = project();
    let before = git_state(&env);
    let files = env.tree();
    let out = run_half(&env);
    assert!(
        out.stderr.contains("Recorded experiment half"),
        "{}",
        out.stderr
    );
    assert_eq!(
        git_state(&env),
        before,
        "git log, branches, status and index are unchanged"
    );
    let outside = |p: &String| !p.starts_with(".pipeline-cache") && !p.starts_with(".git/");
    let after: Vec<_> = env.tree().into_iter().filter(|(p, _)| outside(p)).collect();
    let files: Vec<_> = files.into_iter().filter(|(p, _)| outside(p)).collect();
    assert_eq!(after, files, "the workspace is not written");

    // DVC's layout: refs/exps/<baseline[:2]>/<baseline[2:]>/<name>.
    let half = dvc_ref(&env, "HEAD", "half");
    assert_eq!(
        env.git(&["for-each-ref", "--format=%(refname)", "refs/exps"]),
        format!("{half}\n")
    );
    assert_eq!(
        env.git(&["rev-parse", &format!("{half}^")]),
        env.git(&["rev-parse", "HEAD"])
    );
    assert!(show(&env, &format!("{half}:params.yaml")).contains("lr: 0.5"));
    let metrics: Json = serde_json::from_str(&show(&env, &format!("{half}:metrics.json"))).unwrap();
    assert_eq!(metrics["score"], 0.5);
    assert_eq!(metrics["loss"], 1.5);
    assert!(show(&env, &format!("{half}:pipeline.lock")).contains("model.txt"));

    env.pipe(&["exp", "run", "-S", "train.epochs=10", "-n", "long"])
        .ok();
    let out = env.pipe(&["exp", "show"]).ok();
    settings(&env).bind(|| {
        insta::assert_snapshot!(out.stdout, @r"
        Experiment  Rev      Created           loss  score  train.epochs  train.lr
        workspace   —        —                 0.3   0.9    3             0.1
        main        [REV]  [DATE]  0.3   0.9    3             0.1
        ├─ half     [REV]  [DATE]  1.5   0.5    3             0.5
        └─ long     [REV]  [DATE]  1     0.9    10            0.1
        ");
    });
    let out = env
        .pipe(&[
            "exp",
            "show",
            "--sort-by",
            "loss",
            "--sort-order",
            "desc",
            "--md",
        ])
        .ok();
    let names: Vec<&str> = out
        .stdout
        .lines()
        .skip(2)
        .map(|l| l.split(" | ").next().unwrap())
        .collect();
    assert_eq!(names, ["| workspace", "| main", "| ├─ half", "| └─ long"]);
    let out = env.pipe(&["exp", "show", "--json"]).ok();
    let rows: Json = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "workspace");
    assert_eq!(rows[0]["rev"], Json::Null);
    assert_eq!(rows[2]["name"], "half");
    assert_eq!(rows[2]["params"]["train.lr"], 0.5);
    assert_eq!(rows[3]["metrics"]["loss"], 1.0);
    let out = env.pipe(&["exp", "show", "--sort-by", "los"]).code(2);
    assert!(
        out.stderr.contains("did you mean `loss`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn exp_apply_restores_the_exact_outputs_without_running() {
    let env = project();
    run_half(&env);
    let runs = env.runs();
    let lock = exp_lock(&env, "half");
    let recorded = lock["stages"]["train"]["outs"][0]["blake3"]
        .as_str()
        .unwrap()
        .to_string();

    env.pipe(&["exp", "apply", "half"]).ok();
    let model = std::fs::read(env.path("model.txt")).unwrap();
    assert_eq!(model, b"v1\nSOME RAW TEXT\nlr=0.5 epochs=3\n");
    assert_eq!(blake3::hash(&model).to_hex().to_string(), recorded);
    assert_eq!(
        env.read("pipeline.lock"),
        show(&env, &format!("{}:pipeline.lock", exp_ref(&env, "half")))
    );
    assert_eq!(
        env.read("metrics.json"),
        show(&env, &format!("{}:metrics.json", exp_ref(&env, "half")))
    );
    assert_eq!(env.runs(), runs, "nothing ran");
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    let status = env.git(&["status", "--porcelain"]);
    assert_eq!(
        status,
        " M metrics.json\n M params.yaml\n M pipeline.lock\n"
    );
    assert_eq!(
        env.git(&["log", "--oneline"]).lines().count(),
        1,
        "HEAD did not move"
    );
}

#[test]
fn exp_apply_refuses_to_overwrite_uncommitted_work_unless_forced() {
    let env = project();
    run_half(&env);
    env.write("params.yaml", "train:\n  lr: 0.3\n  epochs: 3\n");
    env.write("model.txt", "hand edited\n");
    let out = env.pipe(&["exp", "apply", "half"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: applying half would overwrite work in the workspace:
      params.yaml (uncommitted changes)
      model.txt (output modified since it was recorded)
      hint: commit or stash it first, or pass --force to overwrite it
    ");
    assert_eq!(
        env.read("model.txt"),
        "hand edited\n",
        "nothing was written"
    );
    env.pipe(&["exp", "apply", "half", "--force"]).ok();
    assert!(env.read("params.yaml").contains("lr: 0.5"));
    assert!(env.read("model.txt").ends_with("lr=0.5 epochs=3\n"));
    let out = env.pipe(&["exp", "apply", "nope"]).code(2);
    assert!(
        out.stderr.contains("no experiment named `nope`"),
        "{}",
        out.stderr
    );
}

#[test]
fn experiments_run_from_the_workspace_code_including_uncommitted_changes() {
    let env = project();
    env.write("prefix.txt", "v2 (not committed)\n");
    env.pipe(&["exp", "run", "-n", "edited"]).ok();
    assert_eq!(env.read("prefix.txt"), "v2 (not committed)\n");
    assert_eq!(
        show(&env, &format!("{}:prefix.txt", exp_ref(&env, "edited"))),
        "v2 (not committed)\n"
    );
    env.git(&["checkout", "-q", "--", "prefix.txt"]);
    env.pipe(&["exp", "apply", "edited"]).ok();
    assert!(env.read("model.txt").starts_with("v2 (not committed)\n"));
}

#[test]
fn three_experiments_in_parallel_equal_three_run_one_by_one() {
    let env = project();
    let out = env
        .pipe(&[
            "exp",
            "run",
            "--queue",
            "-S",
            "train.lr=0.2,0.3,0.4",
            "-n",
            "p",
        ])
        .ok();
    assert_eq!(out.stderr.matches("Queued p-").count(), 3, "{}", out.stderr);
    let out = env.pipe(&["exp", "show"]).ok();
    assert_eq!(out.stdout.matches("queued").count(), 3, "{}", out.stdout);
    assert!(
        env.git(&["for-each-ref", "refs/exps"]).is_empty(),
        "queued, not run"
    );
    let out = env.pipe(&["exp", "run", "--run-all", "-j", "3"]).ok();
    assert_eq!(out.stderr.matches("✓ p-").count(), 3, "{}", out.stderr);
    assert!(
        env.git(&["for-each-ref", "refs/exps-queue"]).is_empty(),
        "run: no longer kept"
    );

    for (i, lr) in ["0.2", "0.3", "0.4"].iter().enumerate() {
        let name = format!("s{i}");
        env.pipe(&["exp", "run", "-S", &format!("train.lr={lr}"), "-n", &name])
            .ok();
        for file in ["metrics.json", "pipeline.lock", "params.yaml"] {
            assert_eq!(
                show(
                    &env,
                    &format!("{}:{file}", exp_ref(&env, &format!("p-{}", i + 1)))
                ),
                show(&env, &format!("{}:{file}", exp_ref(&env, &name))),
                "{file} of lr={lr}"
            );
        }
    }
    let out = env.pipe(&["exp", "run", "--run-all"]).ok();
    assert!(out.stderr.contains("The queue is empty"), "{}", out.stderr);
}

#[test]
fn several_values_without_queue_run_at_once() {
    let env = project();
    let out = env
        .pipe(&[
            "exp",
            "run",
            "-S",
            "train.lr=0.2,0.3",
            "-S",
            "train.epochs=1,2",
            "-j",
            "2",
        ])
        .ok();
    assert_eq!(out.stderr.matches("✓ exp-").count(), 4, "{}", out.stderr);
    assert_eq!(env.git(&["for-each-ref", "refs/exps"]).lines().count(), 4);
}

#[test]
fn a_failing_experiment_is_not_recorded() {
    let env = project();
    let before = git_state(&env);
    let out = env
        .pipe(&["exp", "run", "-S", "train.lr=0.9", "-n", "bad"])
        .code(1);
    assert!(
        out.stderr
            .contains("experiment bad failed and was not recorded"),
        "{}",
        out.stderr
    );
    assert!(env.git(&["for-each-ref", "refs/exps"]).is_empty());
    assert_eq!(git_state(&env), before);
    env.pipe(&["exp", "run", "--queue", "-S", "train.lr=0.9", "-n", "bad"])
        .ok();
    let out = env.pipe(&["exp", "run", "--run-all"]).code(1);
    assert!(out.stderr.contains("✗ bad failed"), "{}", out.stderr);
    assert!(out.stderr.contains("exp-logs/bad.log"), "{}", out.stderr);
}

#[test]
fn bad_params_are_refused_before_anything_runs() {
    let env = project();
    let out = env.pipe(&["exp", "run", "-S", "train.LR=0.5"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: params.yaml has no param `train.LR`
      hint: did you mean `train.lr`? Only keys that exist can be set
    ");
    let out = env.pipe(&["exp", "run", "-S", "train.lr"]).code(2);
    assert!(
        out.stderr.contains("-S `train.lr` has no `=`"),
        "{}",
        out.stderr
    );
    let out = env
        .pipe(&["exp", "run", "-S", "train.lr=1", "-n", "a b"])
        .code(2);
    assert!(
        out.stderr.contains("`a b` cannot name an experiment"),
        "{}",
        out.stderr
    );
    assert!(env.git(&["for-each-ref", "refs/exps"]).is_empty());
    assert!(
        !env.exists(".pipeline-cache/exp-queue")
            || std::fs::read_dir(env.path(".pipeline-cache/exp-queue"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[test]
fn exp_diff_branch_and_remove() {
    let env = project();
    run_half(&env);
    env.pipe(&["exp", "run", "-S", "train.epochs=10", "-n", "long"])
        .ok();
    // A then B, Change = B − A, as `pipe metrics diff A B`.
    let out = env.pipe(&["exp", "diff", "HEAD", "half"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    Path          Metric  HEAD  half  Change
    metrics.json  loss    0.3   1.5   +1.2
    metrics.json  score   0.9   0.5   -0.4

    Path         Param     HEAD  half  Change
    params.yaml  train.lr  0.1   0.5   +0.4
    ");
    let metrics = env.pipe(&["metrics", "diff", "HEAD", "half"]).ok();
    assert!(
        out.stdout.starts_with(&metrics.stdout),
        "{}",
        metrics.stdout
    );
    // B defaults to the workspace, A to HEAD, as `dvc exp diff`.
    let out = env.pipe(&["exp", "diff", "half"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    Path          Metric  half  workspace  Change
    metrics.json  loss    1.5   0.3        -1.2
    metrics.json  score   0.5   0.9        +0.4

    Path         Param     half  workspace  Change
    params.yaml  train.lr  0.5   0.1        -0.4
    ");
    assert_eq!(
        env.pipe(&["exp", "diff"]).ok().stdout,
        "",
        "HEAD = workspace"
    );
    let out = env.pipe(&["exp", "diff", "half", "long", "--json"]).ok();
    let json: Json = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["params"]["params.yaml"]["train.epochs"]["old"], 3);
    assert_eq!(json["params"]["params.yaml"]["train.epochs"]["new"], 10);
    assert_eq!(json["metrics"]["metrics.json"]["loss"]["old"], 1.5);
    assert_eq!(json["metrics"]["metrics.json"]["loss"]["diff"], -0.5);

    env.pipe(&["exp", "branch", "half", "try-half"]).ok();
    assert!(env.git(&["branch"]).contains("try-half"));
    assert!(env
        .git(&["log", "-1", "--format=%s", "try-half"])
        .starts_with("pipe experiment half"));
    let out = env.pipe(&["exp", "branch", "long", "try-half"]).code(2);
    assert!(
        out.stderr
            .contains("a branch named `try-half` exists already"),
        "{}",
        out.stderr
    );

    let out = env.pipe(&["exp", "remove", "half", "nope"]).code(2);
    assert!(
        out.stderr.contains("no experiment named `nope`"),
        "{}",
        out.stderr
    );
    assert_eq!(
        env.git(&["for-each-ref", "refs/exps"]).lines().count(),
        2,
        "nothing removed"
    );
    env.pipe(&["exp", "remove", "half"]).ok();
    assert_eq!(
        env.git(&["for-each-ref", "--format=%(refname)", "refs/exps"]),
        format!("{}\n", dvc_ref(&env, "HEAD", "long"))
    );
    assert!(
        env.git(&["branch"]).contains("try-half"),
        "the branch stays"
    );
    env.pipe(&["exp", "remove", "--all"]).ok();
    assert!(env.git(&["for-each-ref", "refs/exps"]).is_empty());
}

#[test]
fn experiment_commits_are_signed_as_git_would_sign_them() {
    let env = project()
        .env("GIT_COMMITTER_NAME", "Grace")
        .env("GIT_COMMITTER_EMAIL", "grace@example.com");
    env.pipe(&["exp", "run", "-n", "signed"]).ok();
    assert_eq!(
        env.git(&["log", "-1", "--format=%cn <%ce>", &exp_ref(&env, "signed")]),
        "Grace <grace@example.com>\n"
    );
}

#[test]
fn gc_keeps_what_experiments_recorded() {
    let env = project();
    run_half(&env);
    env.pipe(&["gc", "-w", "-f"]).ok();
    env.pipe(&["exp", "apply", "half"]).ok();
    assert!(env.read("model.txt").ends_with("lr=0.5 epochs=3\n"));
}

#[test]
fn exp_apply_writes_only_what_the_experiment_changed() {
    let env = project();
    run_half(&env);
    // HEAD moves on: a new prefix is committed after the experiment ran.
    env.write("prefix.txt", "v2\n");
    env.commit("prefix v2");
    let out = env.pipe(&["exp", "apply", "half"]).ok();
    assert!(!out.stdout.contains("prefix.txt"), "{}", out.stdout);
    assert_eq!(
        env.read("prefix.txt"),
        "v2\n",
        "the newer commit is not undone"
    );
    assert!(env.read("params.yaml").contains("lr: 0.5"));

    // The same file changed in HEAD since the baseline: refused.
    env.git(&["checkout", "-q", "--", "."]);
    env.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 4\n");
    env.commit("epochs 4");
    let out = env.pipe(&["exp", "apply", "half"]).code(2);
    assert!(
        out.stderr
            .contains("params.yaml (changed in HEAD since the experiment's baseline)"),
        "{}",
        out.stderr
    );
}

#[test]
fn exp_apply_refuses_when_the_cache_lost_an_output() {
    let env = project();
    run_half(&env);
    let lock = exp_lock(&env, "half");
    let hash = lock["stages"]["train"]["outs"][0]["blake3"]
        .as_str()
        .unwrap();
    let object = env.object(hash);
    let mut perms = std::fs::metadata(&object).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&object, perms).unwrap();
    std::fs::remove_file(&object).unwrap();
    let params = env.read("params.yaml");
    let out = env.pipe(&["exp", "apply", "half"]).code(2);
    assert!(
        out.stderr
            .contains("the cache no longer holds outputs of half: model.txt"),
        "{}",
        out.stderr
    );
    assert_eq!(env.read("params.yaml"), params, "nothing was written");
}

#[test]
fn experiment_names_cannot_shadow_revisions() {
    let env = project();
    for name in ["HEAD", "main"] {
        let out = env.pipe(&["exp", "run", "-n", name]).code(2);
        assert!(
            out.stderr.contains("already names a git revision"),
            "{}",
            out.stderr
        );
    }
    let long = "x".repeat(101);
    let out = env.pipe(&["exp", "run", "-n", &long]).code(2);
    assert!(
        out.stderr.contains("cannot name an experiment"),
        "{}",
        out.stderr
    );
}

#[test]
fn untracked_files_inside_a_tracked_dependency_directory_are_copied() {
    let env = one_metric("data", "files", "ls data | wc -l")
        .file("data/README.md", "tracked\n")
        .file("data/raw.csv", "untracked\n")
        .file(".gitignore", "data/raw.csv\n");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    env.pipe(&["exp", "run", "-S", "v=2", "-n", "two"]).ok();
    assert_eq!(
        exp_metrics(&env, "two"),
        serde_json::json!({"files": 2, "v": 2})
    );
}

#[test]
fn a_killed_queue_run_is_queued_again_and_gc_waits_for_running_experiments() {
    let env = project();
    env.write(
        "pipeline.yaml",
        &std::fs::read_to_string(env.path("pipeline.yaml"))
            .unwrap()
            .replace(
                "[ \"${train.lr}\" != \"0.9\" ] &&",
                "sleep 2 && [ \"${train.lr}\" != \"0.9\" ] &&",
            ),
    );
    env.commit("slow train");
    env.pipe(&["exp", "run", "--queue", "-S", "train.lr=0.3", "-n", "slow"])
        .ok();
    let mut run = env.spawn(&["exp", "run", "--run-all"]);
    let claimed = env.path(".pipeline-cache/exp-queue");
    let started = std::time::Instant::now();
    while !std::fs::read_dir(&claimed)
        .unwrap()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "running"))
    {
        assert!(
            started.elapsed().as_secs() < 10,
            "the run never claimed its entry"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = env.pipe(&["gc", "-w", "-f"]).code(1);
    assert!(
        out.stderr.contains("experiments are running"),
        "{}",
        out.stderr
    );
    run.kill();
    // Once it has exited, its lock on the claim is gone.
    let _ = run.wait(std::time::Duration::from_secs(10));
    let out = env.pipe(&["exp", "run", "--run-all"]).ok();
    assert!(
        out.stderr
            .contains("Queued again after an interrupted run: slow."),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("✓ slow"), "{}", out.stderr);
    assert_eq!(
        cache_entries(&env, "exp-runs"),
        Vec::<String>::new(),
        "the killed run's copy is removed"
    );
    env.pipe(&["gc", "-w", "-f"]).ok();
}

#[test]
fn exp_show_lists_experiments_of_other_baselines_with_all_baselines() {
    let env = project();
    env.pipe(&["exp", "run", "-S", "train.lr=0.5", "-n", "old"])
        .ok();
    let first = env
        .git(&["rev-parse", "--short=7", "HEAD"])
        .trim()
        .to_string();
    env.write("prefix.txt", "v2\n");
    env.commit("prefix v2");
    let out = env.pipe(&["exp", "show"]).ok();
    assert!(
        !out.stdout.contains("old"),
        "only HEAD's experiments:\n{}",
        out.stdout
    );
    let out = env.pipe(&["exp", "show", "-A"]).ok();
    let header: Vec<&str> = out
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&header[..4], ["Experiment", "Rev", "Baseline", "Created"]);
    let row = out
        .stdout
        .lines()
        .find(|l| l.contains("old"))
        .expect("old is listed");
    assert!(row.contains(&first), "its baseline is shown: {row}");
    let out = env.pipe(&["exp", "show", "-A", "--json"]).ok();
    let rows: Json = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows[2]["baseline"], Json::from(first));
}

#[test]
fn projects_sharing_a_repository_keep_their_experiments_apart() {
    let pipeline = r#"
stages:
  train:
    cmd: >-
      echo "{\"score\": ${lr}}" > m.json
    metrics:
      - m.json:
          cache: false
"#;
    let env = TestEnv::new()
        .file("a/pipeline.yaml", pipeline)
        .file("a/params.yaml", "lr: 1\n")
        .file("b/pipeline.yaml", pipeline)
        .file("b/params.yaml", "lr: 2\n");
    env.pipe(&["-C", "a", "repro"]).ok();
    env.pipe(&["-C", "b", "repro"]).ok();
    let env = env.git_init();
    env.pipe(&["-C", "a", "exp", "run", "-S", "lr=10", "-n", "x"])
        .ok();
    // One ref per baseline and name, as DVC has it: b cannot take `x` too.
    let out = env
        .pipe(&["-C", "b", "exp", "run", "-S", "lr=20", "-n", "x"])
        .code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: an experiment named `x` exists already on this baseline, in the project in a/
      hint: projects of one repository share experiment names per baseline (as DVC's do): choose another -n NAME
    ");
    env.pipe(&["-C", "b", "exp", "run", "-S", "lr=20", "-n", "y"])
        .ok();
    assert_eq!(
        env.git(&["for-each-ref", "--format=%(refname)", "refs/exps"]),
        format!(
            "{}\n{}\n",
            dvc_ref(&env, "HEAD", "x"),
            dvc_ref(&env, "HEAD", "y")
        )
    );
    // Which project an experiment belongs to is in its commit message.
    assert!(env
        .git(&["log", "-1", "--format=%B", &exp_ref(&env, "y")])
        .ends_with("\nPipe-Project: b\n\n"));
    let out = env.pipe(&["-C", "b", "exp", "show", "--json"]).ok();
    let rows: Json = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        3,
        "b's workspace, baseline and y only"
    );
    assert_eq!(rows[2]["metrics"]["score"], 20);
    env.pipe(&["-C", "a", "exp", "apply", "x"]).ok();
    assert_eq!(env.read("a/params.yaml"), "lr: 10\n");
    assert_eq!(env.read("b/params.yaml"), "lr: 2\n");
}

#[test]
fn an_experiment_never_writes_the_workspace_raw_data_whatever_the_link_mode() {
    // A stage that appends to its own input, wrongly: in an experiment
    // that must change the experiment's copy only, also when the cache
    // links outputs as hard links or symlinks.
    for link in ["hardlink", "symlink", "reflink"] {
        let env = TestEnv::new()
            .pipeline(
                r#"
                stages:
                  prep:
                    cmd: echo "appended by ${v}" >> data/raw.txt && cat data/raw.txt > out.txt
                    deps: [data/raw.txt]
                    params: [v]
                    outs: [out.txt]
                "#,
            )
            .params("v: 1\n")
            .file("data/raw.txt", "raw\n")
            .file(".gitignore", "data/\nout.txt\n")
            .env("PIPE_CACHE_LINK", link);
        env.pipe(&["repro"]).ok();
        let env = env.git_init();
        let before = env.read("data/raw.txt");
        env.pipe(&["exp", "run", "-S", "v=2", "-n", "two"]).ok();
        assert_eq!(env.read("data/raw.txt"), before, "link mode {link}");
    }
}

#[test]
fn a_retargeted_symlink_reaches_the_experiment_and_apply_as_a_symlink() {
    let env = one_metric("input.txt", "n", "cat input.txt")
        .file("a.txt", "1\n")
        .file("b.txt", "2\n");
    std::os::unix::fs::symlink("a.txt", env.path("input.txt")).unwrap();
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    // Uncommitted: input.txt now points at b.txt.
    env.remove("input.txt");
    std::os::unix::fs::symlink("b.txt", env.path("input.txt")).unwrap();

    env.pipe(&["exp", "run", "-S", "v=2", "-n", "two"]).ok();
    assert_eq!(
        exp_metrics(&env, "two"),
        serde_json::json!({"n": 2, "v": 2})
    );
    let two = exp_ref(&env, "two");
    let entry = env.git(&["ls-tree", &two, "input.txt"]);
    assert!(entry.starts_with("120000 blob"), "{entry}");
    assert_eq!(env.git(&["show", &format!("{two}:input.txt")]), "b.txt");

    // Back to the committed link; apply brings the experiment's link back.
    env.git(&["checkout", "--", "input.txt"]);
    assert_eq!(
        std::fs::read_link(env.path("input.txt")).unwrap(),
        std::path::Path::new("a.txt")
    );
    env.pipe(&["exp", "apply", "two"]).ok();
    assert_eq!(
        std::fs::read_link(env.path("input.txt")).unwrap(),
        std::path::Path::new("b.txt")
    );
    assert_eq!(env.read("params.yaml"), "v: 2\n");
    assert_eq!(env.read("a.txt"), "1\n");
}

#[test]
fn with_symlinked_outputs_an_experiment_records_their_content() {
    // With `cache.link = symlink` a cached metrics file in the experiment's
    // copy is a link into the cache: the commit must hold its JSON.
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              score:
                cmd: >-
                  echo "{\"v\": ${v}}" > m.json
                params: [v]
                metrics: [m.json]
            "#,
        )
        .params("v: 1\n")
        .file(".gitignore", "m.json\n")
        .env("PIPE_CACHE_LINK", "symlink");
    env.pipe(&["repro"]).ok();
    assert!(std::fs::symlink_metadata(env.path("m.json"))
        .unwrap()
        .file_type()
        .is_symlink());
    let env = env.git_init();
    env.pipe(&["exp", "run", "-S", "v=2", "-n", "two"]).ok();
    let entry = env.git(&["ls-tree", &exp_ref(&env, "two"), "m.json"]);
    assert!(entry.starts_with("100644 blob"), "{entry}");
    assert_eq!(exp_metrics(&env, "two"), serde_json::json!({"v": 2}));
    let out = env.pipe(&["exp", "diff", "two"]).ok();
    assert!(out.stdout.contains("m.json"), "{}", out.stdout);
}

#[test]
fn a_file_that_became_a_symlink_is_applied_as_one_change() {
    let env = one_metric("input.txt", "n", "cat input.txt")
        .file("input.txt", "1\n")
        .file("b.txt", "2\n");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    env.remove("input.txt");
    std::os::unix::fs::symlink("b.txt", env.path("input.txt")).unwrap();
    env.pipe(&["exp", "run", "-S", "v=2", "-n", "two"]).ok();
    assert_eq!(
        exp_metrics(&env, "two"),
        serde_json::json!({"n": 2, "v": 2})
    );

    env.git(&["checkout", "--", "input.txt"]);
    assert_eq!(env.read("input.txt"), "1\n");
    let out = env.pipe(&["exp", "apply", "two"]).ok();
    assert!(out.stdout.contains("wrote input.txt"), "{}", out.stdout);
    assert!(!out.stdout.contains("deleted"), "{}", out.stdout);
    assert_eq!(
        std::fs::read_link(env.path("input.txt")).unwrap(),
        std::path::Path::new("b.txt")
    );
}

#[test]
fn a_tracked_file_replaced_by_a_directory_does_not_stop_an_experiment() {
    let env = one_metric("input.txt", "n", "cat input.txt")
        .file("input.txt", "1\n")
        .file("old", "a tracked file\n");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    env.remove("old");
    env.write("old/new.txt", "now a directory\n");
    env.pipe(&["exp", "run", "-S", "v=2", "-n", "two"]).ok();
    assert_eq!(
        exp_metrics(&env, "two"),
        serde_json::json!({"n": 1, "v": 2})
    );
    // As git sees it: the file is gone from the experiment's tree.
    assert_eq!(env.git(&["ls-tree", &exp_ref(&env, "two"), "old"]), "");
}

#[test]
fn a_second_run_of_a_name_that_is_running_fails_before_running_anything() {
    // `train` appends to COUNTER, then waits for the file GO.
    let shared = tempfile::tempdir().unwrap();
    let (counter, go) = (shared.path().join("runs"), shared.path().join("go"));
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              train:
                cmd: >-
                  echo run >> "$COUNTER"; i=0;
                  while [ ! -e "$GO" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done;
                  echo "{\"score\": ${lr}}" > m.json
                params: [lr]
                metrics:
                  - m.json:
                      cache: false
            "#,
        )
        .params("lr: 1\n")
        .env("COUNTER", counter.to_str().unwrap())
        .env("GO", go.to_str().unwrap());
    std::fs::write(&go, "").unwrap();
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    std::fs::remove_file(&go).unwrap();
    let runs = || std::fs::read_to_string(&counter).unwrap().lines().count();

    let mut first = env.spawn(&["exp", "run", "-S", "lr=2", "-n", "dup"]);
    assert!(
        crate::env::wait_until(std::time::Duration::from_secs(10), || runs() == 2),
        "the first experiment never started its stage"
    );
    let second = env.pipe(&["exp", "run", "-S", "lr=3", "-n", "dup"]).code(2);
    assert!(first.is_running(), "the second did not wait for the first");
    settings(&env).bind(|| {
        insta::assert_snapshot!(second.stderr, @r"
        error: an experiment named `dup` is running already (pipe exp run, pid [PID])
          hint: choose another -n NAME, or wait until it is recorded and compare with `pipe exp show`
        ");
    });

    std::fs::write(&go, "").unwrap();
    first.wait(std::time::Duration::from_secs(60)).ok();
    assert_eq!(runs(), 2, "the second never ran the stage");
    let recorded: Json =
        serde_json::from_str(&show(&env, &format!("{}:m.json", exp_ref(&env, "dup")))).unwrap();
    assert_eq!(recorded, serde_json::json!({"score": 2}));
    assert_eq!(
        std::fs::read_dir(env.path(".pipeline-cache/exp-names"))
            .unwrap()
            .count(),
        0,
        "the claim is released"
    );
    // Once it is recorded, the name is refused as any recorded one is.
    let third = env.pipe(&["exp", "run", "-n", "dup"]).code(2);
    insta::assert_snapshot!(third.stderr, @r"
    error: an experiment named `dup` exists already
      hint: choose another -n NAME, or remove it first: `pipe exp remove dup`
    ");
}

/// Runs the real `dvc` in the project root; `None` when DVC is not
/// installed (see [`crate::services::missing`]).
fn dvc(env: &TestEnv, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("dvc")
        .args(args)
        .current_dir(env.root())
        .env("DVC_NO_ANALYTICS", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::services::missing("dvc (pip install dvc)");
            None
        }
        Err(e) => panic!("cannot run dvc: {e}"),
        Ok(out) => {
            assert!(
                out.status.success(),
                "dvc {} failed:\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    }
}

#[test]
fn experiment_refs_in_pipes_former_layout_move_to_dvcs_on_first_use() {
    let pipeline = r#"
stages:
  train:
    cmd: >-
      echo "{\"score\": ${lr}}" > m.json
    params: [lr]
    metrics:
      - m.json:
          cache: false
"#;
    let env = project()
        .file("sub/pipeline.yaml", pipeline)
        .file("sub/params.yaml", "lr: 1\n");
    env.pipe(&["-C", "sub", "repro"]).ok();
    env.commit("a project in sub/");
    run_half(&env);
    env.pipe(&["-C", "sub", "exp", "run", "-S", "lr=2", "-n", "two"])
        .ok();
    // As an older pipe wrote them: refs/exps/NAME and refs/exps/sub/NAME,
    // the latter without the project line in its message.
    let (half, two) = (exp_ref(&env, "half"), exp_ref(&env, "two"));
    let half_commit = env.git(&["rev-parse", &half]).trim().to_string();
    let two_commit = env.git(&["rev-parse", &two]).trim().to_string();
    env.git(&["update-ref", "refs/exps/half", &half_commit]);
    env.git(&["update-ref", "-d", &half]);
    let message = env.git(&["log", "-1", "--format=%B", &two_commit]);
    let message = message.replace("\nPipe-Project: sub\n", "");
    let tree = env.git(&["rev-parse", &format!("{two_commit}^{{tree}}")]);
    let old_two = env.git(&[
        "commit-tree",
        tree.trim(),
        "-p",
        "HEAD",
        "-m",
        message.trim(),
    ]);
    env.git(&["update-ref", "refs/exps/sub/two", old_two.trim()]);
    env.git(&["update-ref", "-d", &two]);

    let out = env.pipe(&["exp", "show", "--json"]).ok();
    let rows: Json = serde_json::from_str(&out.stdout).unwrap();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["workspace", "main", "half"],
        "sub's `two` is not the root's"
    );
    assert_eq!(
        env.git(&["for-each-ref", "--format=%(refname)", "refs/exps"]),
        format!("{half}\n{two}\n"),
        "both moved to DVC's layout"
    );
    assert_eq!(env.git(&["rev-parse", &half]).trim(), half_commit);
    assert!(env
        .git(&["log", "-1", "--format=%B", &two])
        .contains("\nPipe-Project: sub\n"));
    let out = env.pipe(&["-C", "sub", "exp", "diff", "two"]).ok();
    assert!(out.stdout.contains("score"), "{}", out.stdout);
}

#[test]
fn dvc_lists_pipes_experiments_in_the_same_repository() {
    let env = project();
    if dvc(&env, &["init", "-q"]).is_none() {
        return;
    }
    env.commit("dvc init");
    run_half(&env);
    env.pipe(&["exp", "run", "-S", "train.epochs=10", "-n", "long"])
        .ok();
    let Some(listed) = dvc(&env, &["exp", "list", "--name-only"]) else {
        return;
    };
    assert_eq!(listed, "half\nlong\n");
    let Some(listed) = dvc(&env, &["exp", "list"]) else {
        return;
    };
    let head = env
        .git(&["rev-parse", "--short=7", "HEAD"])
        .trim()
        .to_string();
    let half = env.git(&["rev-parse", "--short=7", &exp_ref(&env, "half")]);
    let long = env.git(&["rev-parse", "--short=7", &exp_ref(&env, "long")]);
    assert_eq!(
        listed,
        format!(
            "main:\n\t{} [half]\n\t{} [long]\n",
            half.trim(),
            long.trim()
        ),
        "baseline {head}"
    );
}

/// A project under git whose stage `train` appends to `$COUNTER` when it
/// starts, writes its pid to `$PIDS`, then waits (at most 30 s) for the file
/// `$GO`. The directory holding those files is returned with the env.
fn waiting_project() -> (TestEnv, tempfile::TempDir) {
    let shared = tempfile::tempdir().unwrap();
    let path = |f: &str| shared.path().join(f).to_str().unwrap().to_string();
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              train:
                cmd: >-
                  echo run >> "$COUNTER"; echo $$ >> "$PIDS"; i=0;
                  while [ ! -e "$GO" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done;
                  echo "{\"score\": ${lr}}" > m.json
                params: [lr]
                metrics:
                  - m.json:
                      cache: false
            "#,
        )
        .params("lr: 1\n")
        .env("COUNTER", &path("runs"))
        .env("PIDS", &path("pids"))
        .env("GO", &path("go"));
    std::fs::write(shared.path().join("go"), "").unwrap();
    env.pipe(&["repro"]).ok();
    std::fs::remove_file(shared.path().join("go")).unwrap();
    (env.git_init(), shared)
}

/// Lines of a file of the shared directory (none when it is absent).
fn shared_lines(shared: &tempfile::TempDir, file: &str) -> Vec<String> {
    std::fs::read_to_string(shared.path().join(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The entries of a directory of the project's cache (none when absent).
fn cache_entries(env: &TestEnv, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(env.path(&format!(".pipeline-cache/{dir}")))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 checks for existence only.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn ctrl_c_during_exp_run_stops_it_removes_its_copy_and_releases_its_name() {
    let (env, shared) = waiting_project();
    let before = git_state(&env);
    // As a terminal's Ctrl-C: SIGINT to the whole foreground group.
    let run = env.spawn_in_session(&["exp", "run", "-S", "lr=2", "-n", "slow"]);
    assert!(
        crate::env::wait_until(std::time::Duration::from_secs(20), || {
            shared_lines(&shared, "runs").len() == 2
        }),
        "the experiment never started its stage"
    );
    assert_eq!(cache_entries(&env, "exp-runs").len(), 1, "its copy");
    // SAFETY: signals the test's own child's process group.
    unsafe { libc::kill(-run.pid(), libc::SIGINT) };
    let out = run.wait(std::time::Duration::from_secs(20)).code(130);
    settings(&env).bind(|| {
        let error: Vec<&str> = out
            .stderr
            .lines()
            .skip_while(|l| !l.starts_with("error:"))
            .collect();
        insta::assert_snapshot!(error.join("\n"), @r"
        error: experiment slow was interrupted (SIGINT, Ctrl-C) and not recorded; its temporary copy was removed
          hint: run it again: pipe exp run -S lr=2 -n slow
        ");
    });
    assert_eq!(cache_entries(&env, "exp-runs"), Vec::<String>::new());
    assert_eq!(cache_entries(&env, "exp-names"), Vec::<String>::new());
    assert!(env.git(&["for-each-ref", "refs/exps"]).is_empty());
    assert_eq!(git_state(&env), before);
    let stage = shared_lines(&shared, "pids")[1].parse().unwrap();
    assert!(
        crate::env::wait_until(std::time::Duration::from_secs(5), || !alive(stage)),
        "the stage's shell is stopped"
    );

    // SIGTERM to pipe alone is passed on to its child and the stage.
    let run = env.spawn(&["exp", "run", "-S", "lr=3", "-n", "slow"]);
    assert!(
        crate::env::wait_until(std::time::Duration::from_secs(20), || {
            shared_lines(&shared, "runs").len() == 3
        }),
        "the second experiment never started its stage"
    );
    // SAFETY: signals the test's own child.
    unsafe { libc::kill(run.pid(), libc::SIGTERM) };
    let out = run.wait(std::time::Duration::from_secs(20)).code(143);
    assert!(
        out.stderr
            .contains("error: experiment slow was interrupted (SIGTERM) and not recorded"),
        "{}",
        out.stderr
    );
    let stage = shared_lines(&shared, "pids")[2].parse().unwrap();
    assert!(
        crate::env::wait_until(std::time::Duration::from_secs(5), || !alive(stage)),
        "the stage's shell is stopped"
    );
    assert_eq!(cache_entries(&env, "exp-runs"), Vec::<String>::new());
    // The name is free: it runs to the end now.
    std::fs::write(shared.path().join("go"), "").unwrap();
    env.pipe(&["exp", "run", "-S", "lr=3", "-n", "slow"]).ok();
    assert_eq!(
        exp_metrics_of(&env, "slow", "m.json"),
        serde_json::json!({"score": 3})
    );
}

/// A metrics file as experiment `name` recorded it.
fn exp_metrics_of(env: &TestEnv, name: &str, file: &str) -> Json {
    serde_json::from_str(&show(env, &format!("{}:{file}", exp_ref(env, name)))).unwrap()
}

#[test]
fn an_interrupted_queue_run_leaves_its_experiments_queued() {
    let (env, shared) = waiting_project();
    env.pipe(&["exp", "run", "--queue", "-S", "lr=2,3", "-n", "q"])
        .ok();
    let run = env.spawn(&["exp", "run", "--run-all"]);
    assert!(
        crate::env::wait_until(std::time::Duration::from_secs(20), || {
            shared_lines(&shared, "runs").len() == 2
        }),
        "the first experiment never started its stage"
    );
    // SAFETY: signals the test's own child.
    unsafe { libc::kill(run.pid(), libc::SIGTERM) };
    let out = run.wait(std::time::Duration::from_secs(20)).code(143);
    let tail: Vec<&str> = out
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("✗"))
        .collect();
    insta::assert_snapshot!(tail.join("\n"), @r"
    ✗ q-1 interrupted: its temporary copy was removed
    error: interrupted (SIGTERM); stopped and not recorded: q-1
      hint: still queued: q-1, q-2; run them with `pipe exp run --run-all`, or drop them with `pipe exp remove NAME…`
    ");
    assert_eq!(cache_entries(&env, "exp-runs"), Vec::<String>::new());
    assert_eq!(shared_lines(&shared, "runs").len(), 2, "q-2 never started");
    assert_eq!(
        env.git(&["for-each-ref", "--format=%(refname)", "refs/exps-queue"]),
        "refs/exps-queue/q-1\nrefs/exps-queue/q-2\n",
        "their starts are kept"
    );
    std::fs::write(shared.path().join("go"), "").unwrap();
    let out = env.pipe(&["exp", "run", "--run-all"]).ok();
    assert_eq!(out.stderr.matches("✓ q-").count(), 2, "{}", out.stderr);
}

#[test]
fn the_copy_a_killed_run_left_is_removed_by_the_next_exp_run() {
    let (env, shared) = waiting_project();
    let mut run = env.spawn(&["exp", "run", "-S", "lr=2", "-n", "killed"]);
    assert!(
        crate::env::wait_until(std::time::Duration::from_secs(20), || {
            shared_lines(&shared, "runs").len() == 2
        }),
        "the experiment never started its stage"
    );
    run.kill();
    let _ = run.wait(std::time::Duration::from_secs(10));
    let left = cache_entries(&env, "exp-runs");
    assert_eq!(left.len(), 1, "kill -9 leaves the copy: {left:?}");
    assert!(left[0].starts_with("killed-"), "{left:?}");

    std::fs::write(shared.path().join("go"), "").unwrap();
    let out = env.pipe(&["exp", "run", "-S", "lr=4", "-n", "next"]).ok();
    assert!(
        out.stderr
            .starts_with("Removed the copies left by interrupted runs of: killed.\n"),
        "{}",
        out.stderr
    );
    assert_eq!(cache_entries(&env, "exp-runs"), Vec::<String>::new());
    // A running experiment's copy is never taken for a left-over one.
    std::fs::remove_file(shared.path().join("go")).unwrap();
    let running = env.spawn(&["exp", "run", "-S", "lr=5", "-n", "running"]);
    assert!(
        crate::env::wait_until(std::time::Duration::from_secs(20), || {
            shared_lines(&shared, "runs").len() == 4
        }),
        "the experiment never started its stage"
    );
    env.pipe(&["exp", "run", "--queue", "-S", "lr=6", "-n", "other"])
        .ok();
    assert_eq!(cache_entries(&env, "exp-runs").len(), 1);
    std::fs::write(shared.path().join("go"), "").unwrap();
    running.wait(std::time::Duration::from_secs(30)).ok();
    assert_eq!(
        exp_metrics_of(&env, "running", "m.json"),
        serde_json::json!({"score": 5})
    );
}

#[test]
fn stages_see_dvcs_variables_and_an_experiment_has_a_git_repository_of_its_own() {
    // The stage reports what it sees of git and of DVC's variables, then
    // runs `git add -A`, which must not reach the user's index.
    let pipeline = r#"
stages:
  measure:
    cmd: >-
      echo "{\"head\": \"$(git rev-parse HEAD)\", \"top\": \"$(git rev-parse --show-toplevel)\",
      \"deleted\": $(git status --porcelain | grep -c '^ D'), \"modified\": \"$(git status --porcelain | grep '^ M')\",
      \"root\": \"$DVC_ROOT\", \"stage\": \"$DVC_STAGE\", \"exp\": \"$DVC_EXP_NAME\", \"base\": \"$DVC_EXP_BASELINE_REV\"}" > m.json &&
      git add -A
    params: [v]
    metrics:
      - m.json:
          cache: false
"#;
    let env = TestEnv::new()
        .file("other.txt", "outside the project\n")
        .file("sub/pipeline.yaml", pipeline)
        .file("sub/params.yaml", "v: 1\n")
        .file(".gitignore", "sub/m.json\n");
    env.git(&["init", "-q", "-b", "main"]);
    // In the workspace: the project root, no experiment.
    env.pipe(&["-C", "sub", "repro"]).ok();
    let m: Json = serde_json::from_str(&env.read("sub/m.json")).unwrap();
    assert_eq!(m["root"], format!("{}/sub", env.root().display()));
    assert_eq!(m["top"], env.root().display().to_string());
    assert_eq!(
        (m["stage"].as_str(), m["exp"].as_str()),
        (Some("measure"), Some(""))
    );
    env.git(&["reset", "-q"]);
    env.commit("baseline");
    let head = env.git(&["rev-parse", "HEAD"]).trim().to_string();
    let before = git_state(&env);
    env.pipe(&["-C", "sub", "exp", "run", "-S", "v=2", "-n", "two"])
        .ok();
    assert_eq!(git_state(&env), before, "the user's index is not touched");
    let m = exp_metrics_of(&env, "two", "sub/m.json");
    let top = m["top"].as_str().unwrap();
    assert!(
        top.starts_with(&format!(
            "{}/sub/.pipeline-cache/exp-runs/two-",
            env.root().display()
        )),
        "the copy is its own repository: {top}"
    );
    assert_eq!(m["root"], format!("{top}/sub"));
    assert_eq!(m["head"], head.as_str(), "its HEAD is the baseline");
    assert_eq!(m["deleted"], 0, "files outside the project are not missing");
    assert_eq!(m["modified"], " M sub/params.yaml", "the -S change shows");
    assert_eq!(m["stage"], "measure");
    assert_eq!(m["exp"], "two");
    assert_eq!(m["base"], head.as_str());
}

/// True when Python can import dvclive (see [`crate::services::missing`]
/// for when it cannot).
fn dvclive_installed() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import dvclive"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        crate::services::missing("dvclive (pip install dvclive)");
    }
    ok
}

#[test]
fn a_dvclive_stage_runs_under_repro_and_exp_run_without_making_dvc_experiments() {
    if !dvclive_installed() {
        return;
    }
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              train:
                cmd: python3 train.py ${lr}
                deps: [train.py]
                params: [lr]
                metrics:
                  - dvclive/metrics.json:
                      cache: false
            "#,
        )
        .params("lr: 0.5\n")
        .file(
            "train.py",
            "import sys\nfrom dvclive import Live\n\nwith Live() as live:\n    live.log_metric('acc', 1 - float(sys.argv[1]))\n",
        )
        .file(".gitignore", "dvclive/\ndvc.yaml\n")
        .env("DVC_NO_ANALYTICS", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    env.git(&["init", "-q", "-b", "main"]);
    if dvc(&env, &["init", "-q"]).is_none() {
        return;
    }
    env.commit("baseline");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 0 up to date, 0 failed");
    let m: Json = serde_json::from_str(&env.read("dvclive/metrics.json")).unwrap();
    assert_eq!(m["acc"], 0.5);
    assert!(
        env.git(&["for-each-ref", "refs/exps"]).is_empty(),
        "dvclive saved no experiment of its own"
    );
    env.commit("lock");
    let before = git_state(&env);
    env.pipe(&["exp", "run", "-S", "lr=0.25", "-n", "quarter"])
        .ok();
    assert_eq!(
        exp_metrics_of(&env, "quarter", "dvclive/metrics.json")["acc"],
        0.75
    );
    assert_eq!(
        env.git(&["for-each-ref", "--format=%(refname)", "refs/exps"]),
        format!("{}\n", dvc_ref(&env, "HEAD", "quarter")),
        "pipe's experiment only: no DVC experiment, no DVC executor ref"
    );
    assert_eq!(git_state(&env), before);
    if let Some(listed) = dvc(&env, &["exp", "list", "--name-only"]) {
        assert_eq!(listed, "quarter\n");
    }
}

#[test]
fn a_set_value_of_the_wrong_type_is_refused_naming_the_flag() {
    let env = project();
    let out = env.pipe(&["exp", "run", "-S", "train.lr=abc"]).code(2);
    insta::assert_snapshot!(out.stderr, @r#"
    error: -S train.lr=abc: `abc` is text, but params.yaml has a number at `train.lr` (0.1)
      hint: give a number, e.g. -S train.lr=0.5; to put text in its place, quote it: -S 'train.lr="abc"'
    "#);
    let out = env
        .pipe(&["exp", "run", "--queue", "-S", "train.epochs=[1, 2]"])
        .code(2);
    assert!(
        out.stderr
            .starts_with("error: -S train.epochs=[1, 2]: `[1, 2]` is a list, but params.yaml has a number at `train.epochs` (3)\n"),
        "{}",
        out.stderr
    );
    assert!(
        cache_entries(&env, "exp-queue").is_empty(),
        "nothing queued"
    );
    assert!(env.git(&["for-each-ref", "refs/exps"]).is_empty());
}

#[test]
fn a_set_value_keeps_the_files_type_so_an_unchanged_value_reruns_nothing() {
    let env = one_metric("input.txt", "n", "cat input.txt")
        .file("input.txt", "1\n")
        .file("name.yaml", "model: cnn\n");
    env.write("params.yaml", "v: 1.0   # a float\n");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    let out = env.pipe(&["exp", "run", "-S", "v=1", "-n", "same"]).ok();
    assert!(
        out.stderr.contains("0 ran, 0 restored, 1 up to date"),
        "1 is 1.0 here: {}",
        out.stderr
    );
    assert_eq!(
        show(&env, &format!("{}:params.yaml", exp_ref(&env, "same"))),
        "v: 1.0   # a float\n"
    );
    // Text stays text: `2` where the file has text is the text "2".
    env.pipe(&["exp", "run", "-S", "name.yaml:model=2", "-n", "text"])
        .ok();
    assert_eq!(
        show(&env, &format!("{}:name.yaml", exp_ref(&env, "text"))),
        "model: '2'\n"
    );
}

#[test]
fn a_value_the_pipeline_refuses_is_refused_before_anything_is_queued() {
    let env = TestEnv::new()
        .pipeline(
            "
            stages:
              corpus:
                uses: synth
                with: {out: data.tsv}
                params: [synth]
            ",
        )
        .params("synth:\n  rows: 30\n  seed: 1\n")
        .file(".gitignore", "data.tsv\n");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    let out = env
        .pipe(&["exp", "run", "-S", "synth.rows=10,-5", "-S", "synth.seed=2"])
        .code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: -S synth.rows=-5 -S synth.seed=2: the pipeline refuses it: stage `corpus`: params of `synth`: synth param `rows` must be a whole number
      hint: choose another value for synth.rows, synth.seed
    ");
    assert!(
        cache_entries(&env, "exp-queue").is_empty(),
        "nothing queued"
    );
    assert_eq!(cache_entries(&env, "exp-runs"), Vec::<String>::new());
    assert!(env.git(&["for-each-ref", "refs/exps"]).is_empty());
}

/// A project with more columns than a narrow terminal holds: `metrics.json`
/// (accuracy and loss vary with `lr`; the rest does not) and
/// `eval/m.json`, whose `accuracy` shares its name; params `lr` (varied)
/// and `epochs`, `seed`, `model` (never). Experiments c-1 (lr 0.2) and c-2
/// (lr 0.3).
fn wide_project() -> TestEnv {
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              train:
                cmd: >-
                  awk 'BEGIN { printf "{\"accuracy\": %.2f, \"loss\": %.2f, \"true_negative\": 0.5, \"false_positive\": 0.5, \"n_test\": 100}\n", 1 - ${lr}, ${lr} * 2 }' > metrics.json &&
                  mkdir -p eval && echo '{"accuracy": 0.25}' > eval/m.json
                params: [lr, epochs, seed, model]
                metrics:
                  - metrics.json:
                      cache: false
                  - eval/m.json:
                      cache: false
            "#,
        )
        .params("lr: 0.1\nepochs: 3\nseed: 42\nmodel: cnn\n");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    env.pipe(&["exp", "run", "-S", "lr=0.2,0.3", "-n", "c"])
        .ok();
    env
}

#[test]
fn exp_show_fits_a_narrow_terminal_keeping_what_varies() {
    let env = wide_project().env("COLUMNS", "50");
    let out = env.pipe(&["exp", "show"]).ok();
    settings(&env).bind(|| {
        insta::assert_snapshot!(format!("{}{}", out.stderr, out.stdout), @r"
        note: 9 of 13 columns do not fit in 50 characters and are left out: Rev, Created, eval/m.json:accuracy, false_positive, n_test, true_negative and 3 more
          hint: choose with --keep/--drop REGEX or --only-changed; --csv and --json have them all
        Experiment  metrics.json:accuracy  loss  lr
        workspace   0.9                    0.2   0.1
        main        0.9                    0.2   0.1
        ├─ c-1      0.8                    0.4   0.2
        └─ c-2      0.7                    0.6   0.3
        ");
    });
    assert!(out.stdout.lines().all(|l| l.chars().count() <= 50));
    // Kept columns stay, whatever the width; the metrics that vary go.
    let out = env.pipe(&["exp", "show", "--keep", "n_test|seed"]).ok();
    assert_eq!(
        out.stdout.lines().next().unwrap(),
        "Experiment  n_test  lr   seed"
    );
    // Narrower than what is never left out: rows are cut, never wrapped.
    let out = env
        .command(&["exp", "show"])
        .env("COLUMNS", "8")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Experim…\nworkspa…\nmain   …\n├─ c-1 …\n└─ c-2 …\n"
    );
}

#[test]
fn exp_show_chooses_columns_as_dvc_does() {
    let env = wide_project();
    // Not a terminal, no COLUMNS: every column.
    let out = env.pipe(&["exp", "show", "--only-changed"]).ok();
    settings(&env).bind(|| {
        insta::assert_snapshot!(out.stdout, @r"
        Experiment  Rev      Created           metrics.json:accuracy  loss  lr
        workspace   —        —                 0.9                    0.2   0.1
        main        [REV]  [DATE]  0.9                    0.2   0.1
        ├─ c-1      [REV]  [DATE]  0.8                    0.4   0.2
        └─ c-2      [REV]  [DATE]  0.7                    0.6   0.3
        ");
    });
    let out = env
        .pipe(&[
            "exp",
            "show",
            "--drop",
            "true_|false_|Created|Rev|eval/",
            "--drop",
            "epochs",
            "--keep",
            "false_positive",
        ])
        .ok();
    assert_eq!(
        out.stdout.lines().next().unwrap(),
        "Experiment  metrics.json:accuracy  false_positive  loss  n_test  lr   model  seed"
    );
    let out = env
        .pipe(&["exp", "show", "--only-changed", "--drop", "Rev", "--csv"])
        .ok();
    let mut s = settings(&env);
    s.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", "[ISO]");
    s.bind(|| {
        insta::assert_snapshot!(out.stdout, @r"
        Experiment,Baseline,Created,metrics.json:accuracy,loss,lr
        workspace,,,0.9,0.2,0.1
        main,,[ISO],0.9,0.2,0.1
        c-1,[REV],[ISO],0.8,0.4,0.2
        c-2,[REV],[ISO],0.7,0.6,0.3
        ");
    });
    let out = env
        .pipe(&[
            "exp",
            "show",
            "--only-changed",
            "--md",
            "--drop",
            "Rev|Created",
        ])
        .ok();
    insta::assert_snapshot!(out.stdout, @r"
    | Experiment | metrics.json:accuracy | loss | lr |
    | --- | --- | --- | --- |
    | workspace | 0.9 | 0.2 | 0.1 |
    | main | 0.9 | 0.2 | 0.1 |
    | ├─ c-1 | 0.8 | 0.4 | 0.2 |
    | └─ c-2 | 0.7 | 0.6 | 0.3 |
    ");
    let bad = env.pipe(&["exp", "show", "--drop", "("]).code(2);
    assert!(
        bad.stderr
            .starts_with("error: --drop (: not a regular expression"),
        "{}",
        bad.stderr
    );
}

#[test]
fn exp_show_sorts_by_file_and_key_as_dvc_names_them() {
    let env = wide_project();
    let order = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["exp", "show", "--csv"];
        all.extend(args);
        env.pipe(&all)
            .ok()
            .stdout
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    };
    let desc = ["--sort-order", "desc"];
    for by in ["metrics.json:accuracy", "params.yaml:lr", "lr", "loss"] {
        let mut args = vec!["--sort-by", by];
        args.extend(desc);
        let expected = if by.contains("accuracy") {
            ["workspace", "main", "c-1", "c-2"]
        } else {
            ["workspace", "main", "c-2", "c-1"]
        };
        assert_eq!(order(&args), expected, "--sort-by {by}");
    }
    let out = env.pipe(&["exp", "show", "--sort-by", "accuracy"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: --sort-by accuracy: several columns have that name
      hint: name one as FILE:KEY: eval/m.json:accuracy, metrics.json:accuracy
    ");
    let out = env
        .pipe(&["exp", "show", "--sort-by", "params.yaml:l"])
        .code(2);
    assert!(
        out.stderr.contains("did you mean `params.yaml:lr`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_demo_shows_a_trade_off_between_values_of_c() {
    // The repository's demo, as users run it.
    let env = TestEnv::new()
        .file("pipeline.yaml", include_str!("../../pipeline.yaml"))
        .file("params.yaml", include_str!("../../params.yaml"))
        .file(".gitignore", "data/\nmodel/\nplots/\n");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    env.pipe(&[
        "exp",
        "run",
        "-S",
        "fit.C=0.01,0.1,1,10,100000",
        "-n",
        "c",
        "-j",
        "2",
    ])
    .ok();
    let out = env
        .pipe(&[
            "exp",
            "show",
            "--sort-by",
            "accuracy",
            "--keep",
            "accuracy|fit.C",
            "--drop",
            ".",
            "--precision",
            "3",
        ])
        .ok();
    insta::assert_snapshot!(out.stdout, @r"
    Experiment  accuracy  fit.C
    workspace   0.847     100000
    main        0.847     100000
    ├─ c-1      0.775     0.01
    ├─ c-5      0.847     100000
    ├─ c-2      0.85      0.1
    ├─ c-3      0.875     1
    └─ c-4      0.877     10
    ");
}
