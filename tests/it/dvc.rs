//! An existing DVC project runs unchanged: `dvc.yaml` and `dvc.lock`.
//!
//! The project is `iterative/example-get-started` as it is: its
//! `dvc.yaml` (four stages, top-level `metrics:`, `plots:` and
//! `artifacts:`) and `params.yaml` verbatim, with stand-ins for its Python
//! scripts and data (`dvc_example/`: stdlib only, same arguments, params and
//! outputs; each run appends its name to `runs.log`). The outputs are made
//! by running the scripts, as `dvc repro` would, and `dvc.lock` is written
//! by `dvc_example/write_lock.py`, an independent rendering of DVC's
//! hashes (hashlib md5, dvc-data's `.dir` manifest); when DVC is
//! installed, a test checks that it writes the very same lock.

use std::process::Command;

use crate::env::TestEnv;

const DVC_YAML: &str = include_str!("dvc_example/dvc.yaml");
const PARAMS: &str = include_str!("dvc_example/params.yaml");
const PREPARE: &str = include_str!("dvc_example/src/prepare.py");
const FEATURIZE: &str = include_str!("dvc_example/src/featurization.py");
const TRAIN: &str = include_str!("dvc_example/src/train.py");
const EVALUATE: &str = include_str!("dvc_example/src/evaluate.py");
const GEN_DATA: &str = include_str!("dvc_example/gen_data.py");
const WRITE_LOCK: &str = include_str!("dvc_example/write_lock.py");

/// Runs a command in the project; `None` (a skip, or a failure under
/// `PIPE_REQUIRE_SERVICES`) when the program is not installed.
fn run(env: &TestEnv, program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(env.root())
        .env("DVC_NO_ANALYTICS", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::services::missing(program);
            None
        }
        Err(e) => panic!("cannot run {program}: {e}"),
        Ok(out) => {
            assert!(
                out.status.success(),
                "{program} {} failed:\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
    }
}

/// The example project's files, its data generated; nothing run yet.
fn example() -> Option<TestEnv> {
    let env = TestEnv::new()
        .file("dvc.yaml", DVC_YAML)
        .file("params.yaml", PARAMS)
        .file("src/prepare.py", PREPARE)
        .file("src/featurization.py", FEATURIZE)
        .file("src/train.py", TRAIN)
        .file("src/evaluate.py", EVALUATE)
        .file("gen_data.py", GEN_DATA)
        .file("write_lock.py", WRITE_LOCK)
        // What DVC writes to keep its outputs and tracked data out of git.
        .file(".gitignore", "/model.pkl\n/eval\n")
        .file("data/.gitignore", "/data.xml\n/prepared\n/features\n");
    run(&env, "python3", &["gen_data.py"])?;
    // The input is tracked data, as `dvc add data/data.xml` leaves it.
    let md5 = run(
        &env,
        "python3",
        &[
            "-c",
            "import hashlib; print(hashlib.md5(open('data/data.xml','rb').read()).hexdigest())",
        ],
    )?;
    let size = std::fs::metadata(env.root().join("data/data.xml"))
        .unwrap()
        .len();
    env.write(
        "data/data.xml.dvc",
        &format!(
            "outs:\n- md5: {}\n  size: {size}\n  hash: md5\n  path: data.xml\n",
            md5.trim()
        ),
    );
    Some(env)
}

/// The example as DVC leaves it after `dvc repro`: every stage run, in
/// order, and dvc.lock written.
fn example_run_by_dvc() -> Option<TestEnv> {
    let env = example()?;
    for cmd in [
        "python3 src/prepare.py data/data.xml",
        "python3 src/featurization.py data/prepared data/features",
        "python3 src/train.py data/features model.pkl",
        "python3 src/evaluate.py model.pkl data/features",
    ] {
        let words: Vec<&str> = cmd.split(' ').collect();
        run(&env, words[0], &words[1..])?;
    }
    run(&env, "python3", &["write_lock.py"])?;
    Some(env)
}

#[test]
fn an_example_get_started_project_runs_unchanged_and_nothing_dvc_ran_reruns() {
    let Some(env) = example_run_by_dvc() else {
        return;
    };
    env.git(&["init", "-q", "-b", "main"]);
    env.commit("a DVC project, run by DVC");
    let ran = env.runs();
    assert_eq!(ran, ["prepare", "featurize", "train", "evaluate"]);

    let status = env.pipe(&["status"]).ok();
    assert_eq!(status.stdout, "Everything is up to date.\n");
    assert_eq!(
        status.stderr,
        "Using dvc.yaml (no pipeline.yaml here).\nnote: 4 stage(s) that DVC ran are taken over from dvc.lock: prepare, featurize, train, evaluate\n"
    );
    assert!(!env.exists("pipeline.lock"), "status writes nothing");

    let md5_before = env.read("data/data.xml.dvc");
    let md5_before = md5_before
        .lines()
        .find(|l| l.contains("md5:"))
        .unwrap()
        .to_string();
    let repro = env.pipe(&["repro"]).ok();
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(repro.stderr, @r"
    Using dvc.yaml (no pipeline.yaml here).
    Took over 4 stage(s) that DVC ran, from dvc.lock (their files have the md5s it records): prepare, featurize, train, evaluate; recorded in pipeline.lock.
      prepare    up to date
      featurize  up to date
      train      up to date
      evaluate   up to date
    0 ran, 0 restored, 4 up to date, 0 failed in [ELAPSED]
    ");
    assert_eq!(env.runs(), ran, "nothing DVC ran ran again");
    // What pipe recorded is what it would record itself: the next repro
    // finds everything up to date from pipeline.lock alone.
    assert_eq!(
        env.locked_stages(),
        ["evaluate", "featurize", "prepare", "train"]
    );
    let again = env.pipe(&["repro"]).ok();
    assert_eq!(again.counts(), "0 ran, 0 restored, 4 up to date, 0 failed");
    assert!(!again.stderr.contains("Took over"), "{}", again.stderr);
    assert_eq!(env.read("dvc.lock"), {
        // pipe never writes dvc.lock.
        run(&env, "python3", &["write_lock.py"]);
        env.read("dvc.lock")
    });

    // The top-level metrics file, inside the `eval` directory output.
    let metrics = env.pipe(&["metrics", "show"]).ok();
    insta::assert_snapshot!(metrics.stdout, @r"
    Path               Metric          Value
    eval/metrics.json  avg_prec.test   0.8481
    eval/metrics.json  avg_prec.train  0.9211
    eval/metrics.json  roc_auc.test    0.8063
    eval/metrics.json  roc_auc.train   0.9165
    ");
    let dag = env.pipe(&["dag"]).ok();
    insta::assert_snapshot!(dag.stdout, @r"
    ● prepare
    │
    ● featurize
    ├─╮
    ● │ train
    ├─╯
    ● evaluate
    ");

    // A param change: params diff names it, and only what reads it reruns.
    env.commit("pipe took over");
    env.write(
        "params.yaml",
        &PARAMS.replace("max_features: 200", "max_features: 12"),
    );
    let diff = env.pipe(&["params", "diff"]).ok();
    insta::assert_snapshot!(diff.stdout, @r"
    Path         Param                   HEAD  workspace  Change
    params.yaml  featurize.max_features  200   12         -188
    ");
    let repro = env.pipe(&["repro"]).ok();
    assert_eq!(repro.counts(), "3 ran, 0 restored, 1 up to date, 0 failed");
    assert_eq!(env.runs()[4..], ["featurize", "train", "evaluate"]);
    // HEAD's metrics are not in git (eval/ is ignored): they are read from
    // the cache, through the manifest of HEAD's `eval` directory.
    let diff = env.pipe(&["metrics", "diff"]).ok();
    insta::assert_snapshot!(diff.stdout, @r"
    Path               Metric          HEAD    workspace  Change
    eval/metrics.json  avg_prec.test   0.8481  0.8408     -0.0073
    eval/metrics.json  avg_prec.train  0.9211  0.8717     -0.0494
    eval/metrics.json  roc_auc.test    0.8063  0.7438     -0.0625
    eval/metrics.json  roc_auc.train   0.9165  0.8102     -0.1063
    ");

    // New raw data, as `dvc add` would take it: status names the tracked
    // data and the stage that reads it; `pipe add` records it and repro
    // reruns from the first stage.
    env.commit("max_features 12");
    let xml = env.read("data/data.xml");
    env.write(
        "data/data.xml",
        &xml.replacen("Body=\"", "Body=\"python python python ", 40),
    );
    let status = env.pipe(&["status"]).ok();
    insta::assert_snapshot!(status.stdout, @r"
    prepare:
        dep data/data.xml modified
    featurize:
        upstream stage prepare will rerun
    train:
        upstream stage featurize will rerun
    evaluate:
        upstream stage featurize will rerun
        upstream stage train will rerun
    data/data.xml.dvc:
        output data/data.xml modified
    ");
    let add = env.pipe(&["add", "data/data.xml"]).ok();
    insta::assert_snapshot!(add.stdout, @"Added data/data.xml (55.3 kB): data/data.xml.dvc");
    assert!(
        !env.read("data/data.xml.dvc").contains(&md5_before),
        "the .dvc file records the new version"
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(
        env.runs()[7..],
        ["prepare", "featurize", "train", "evaluate"]
    );
    // The first version was DVC's (its cache is not here): pipe says
    // where it would come from, and replaces nothing.
    env.git(&["checkout", "-q", "HEAD", "--", "data/data.xml.dvc"]);
    let back = env.pipe(&["checkout", "data/data.xml.dvc"]).code(1);
    insta::assert_snapshot!(back.stdout, @"cannot restore data/data.xml: not in the cache (`pipe pull data/data.xml.dvc` fetches it from a remote)");
    assert_ne!(env.read("data/data.xml"), xml);
}

#[test]
fn a_dvc_lock_written_by_dvc_itself_is_taken_over() {
    let Some(env) = example() else {
        return;
    };
    env.git(&["init", "-q", "-b", "main"]);
    if run(&env, "dvc", &["init", "-q"]).is_none() {
        return;
    }
    // DVC runs the commands as written (`python …`).
    run(&env, "dvc", &["repro", "-q"]).expect("dvc repro");
    let by_dvc = env.read("dvc.lock");
    // The oracle the other tests use writes what DVC writes.
    run(&env, "python3", &["write_lock.py"]).expect("write_lock.py");
    assert_eq!(env.read("dvc.lock"), by_dvc);
    let runs = env.runs();
    let repro = env.pipe(&["repro"]).ok();
    assert_eq!(repro.counts(), "0 ran, 0 restored, 4 up to date, 0 failed");
    assert_eq!(env.runs(), runs);
    assert_eq!(env.read("dvc.lock"), by_dvc, "pipe never writes dvc.lock");
    // And DVC still sees its own project as up to date.
    let status = run(&env, "dvc", &["status", "-q"]);
    assert!(status.is_some());
}

#[test]
fn a_stage_changed_since_dvc_ran_it_is_not_taken_over_and_runs() {
    let Some(env) = example_run_by_dvc() else {
        return;
    };
    // The model was edited after DVC recorded it: train (which writes it)
    // and evaluate (which reads it) are not up to date, as DVC would also
    // say.
    env.write("model.pkl", "{\"bias\": 0, \"weights\": {}}");
    let status = env.pipe(&["status"]).code(0);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(status.stderr, @r"
    Using dvc.yaml (no pipeline.yaml here).
    note: 2 stage(s) that DVC ran are taken over from dvc.lock: prepare, featurize
    note: dvc.lock: stage train is not taken over, it runs: output model.pkl changed since DVC ran the stage (its md5 is not the one dvc.lock records)
    note: dvc.lock: stage evaluate is not taken over, it runs: dep model.pkl changed since DVC ran the stage (its md5 is not the one dvc.lock records)
    ");
    let repro = env.pipe(&["repro"]).ok();
    assert_eq!(repro.counts(), "2 ran, 0 restored, 2 up to date, 0 failed");
    assert_eq!(env.runs()[4..], ["train", "evaluate"]);
}

#[test]
fn import_dvc_converts_the_project_for_good_meaning_the_same() {
    let Some(env) = example_run_by_dvc() else {
        return;
    };
    let dag_before = env.pipe(&["dag", "--json"]).ok().stdout;
    let out = env.pipe(&["import-dvc"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    Wrote pipeline.yaml: the 4 stage(s) of dvc.yaml, as they are.
    Wrote pipeline.lock: 4 stage(s) taken over from dvc.lock (their files have the md5s it records).
    pipe reads pipeline.yaml from now on. Next:
      git add pipeline.yaml pipeline.lock
      git rm dvc.yaml dvc.lock    # unless DVC still runs this project too
    ");
    assert_eq!(
        env.read("pipeline.yaml"),
        format!("# Converted from dvc.yaml by `pipe import-dvc`: the same stages, in the same format.\n{DVC_YAML}")
    );
    // With dvc.yaml gone, pipeline.yaml alone is the same pipeline.
    env.remove("dvc.yaml");
    env.remove("dvc.lock");
    let status = env.pipe(&["status"]).ok();
    assert_eq!(status.stdout, "Everything is up to date.\n");
    assert_eq!(status.stderr, "", "no dvc.yaml note any more");
    assert_eq!(env.pipe(&["dag", "--json"]).ok().stdout, dag_before);
    let refused = env.pipe(&["import-dvc"]).code(2);
    assert!(
        refused.stderr.contains("has pipeline.yaml already"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_dvc_2_lock_with_dos2unix_md5s_is_read() {
    // DVC 2 wrote no `hash:` field, and hashed text with CRLF as LF.
    let env = TestEnv::new()
        .file("in.txt", "a\r\nb\r\n")
        .file(
            "dvc.yaml",
            "stages:\n  copy:\n    cmd: cp in.txt out.txt && echo copy >> runs.log\n    deps: [in.txt]\n    outs: [out.txt]\n",
        )
        .file("out.txt", "a\r\nb\r\n");
    // md5("a\nb\n"), as DVC 2 recorded both.
    let lock = "schema: '2.0'\nstages:\n  copy:\n    cmd: cp in.txt out.txt && echo copy >> runs.log\n    deps:\n    - path: in.txt\n      md5: dd8c6a395b5dd36c56d23275028f526c\n      size: 6\n    outs:\n    - path: out.txt\n      md5: dd8c6a395b5dd36c56d23275028f526c\n      size: 6\n";
    env.write("dvc.lock", lock);
    let repro = env.pipe(&["repro"]).ok();
    assert_eq!(repro.counts(), "0 ran, 0 restored, 1 up to date, 0 failed");
    assert!(env.runs().is_empty());
    // The same lock with DVC 3's plain md5 does not match CRLF text.
    env.remove("pipeline.lock");
    env.write(
        "dvc.lock",
        &lock.replace("      md5:", "      hash: md5\n      md5:"),
    );
    let repro = env.pipe(&["repro"]).ok();
    assert_eq!(repro.counts(), "1 ran, 0 restored, 0 up to date, 0 failed");
}

#[test]
fn several_dvc_yaml_files_make_one_pipeline_addressed_as_dvc_does() {
    let stage = |name: &str, dep: &str| {
        format!("  {name}:\n    cmd: cat {dep} > {name}.txt && echo $DVC_STAGE >> $DVC_ROOT/runs.log\n    deps: [{dep}]\n    outs: [{name}.txt]\n")
    };
    let env = TestEnv::new()
        .file(".dvc/config", "")
        .file("raw.txt", "raw\n")
        .file("dvc.yaml", &format!("stages:\n{}", stage("top", "raw.txt")))
        .file(
            "a/dvc.yaml",
            &format!(
                "stages:\n{}{}",
                stage("train", "../top.txt"),
                stage("test", "train.txt")
            ),
        )
        .file(
            "b/dvc.yaml",
            &format!("stages:\n{}", stage("train", "../a/test.txt")),
        );
    let dag = env.pipe(&["dag"]).ok();
    insta::assert_snapshot!(dag.stdout, @r"
    ● top
    │
    ● a/dvc.yaml:train
    │
    ● a/dvc.yaml:test
    │
    ● b/dvc.yaml:train
    ");
    assert_eq!(
        dag.stderr,
        "Using dvc.yaml, a/dvc.yaml and b/dvc.yaml (no pipeline.yaml here).\n"
    );
    // A stage of another file, with what it needs.
    env.pipe(&["repro", "a/dvc.yaml:train"]).ok();
    assert_eq!(env.runs(), ["top", "a/dvc.yaml:train"]);
    assert_eq!(env.read("a/train.txt"), "raw\n");
    // From inside a/, a bare name is a stage of a/dvc.yaml.
    let mut cmd = env.command(&["repro", "-s", "test"]);
    let out = cmd.current_dir(env.path("a")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.runs()[2..], ["a/dvc.yaml:test"]);
    // -R: the stages of the files inside a directory; --glob: by pattern.
    env.write("raw.txt", "new\n");
    let status = env.pipe(&["status", "-R", "b"]).ok();
    assert!(status.stdout.starts_with("top:"), "{}", status.stdout);
    let out = env.pipe(&["repro", "--glob", "t*", "-s"]).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 0 up to date, 0 failed");
    let out = env.pipe(&["repro", "-s", "--glob", "a/dvc.yaml:t*"]).ok();
    assert_eq!(out.counts(), "2 ran, 0 restored, 0 up to date, 0 failed");
    let out = env.pipe(&["repro", "-R", "b"]).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 3 up to date, 0 failed");
    assert_eq!(env.read("b/train.txt"), "new\n");
    // An output path names the stage that writes it.
    let out = env.pipe(&["status", "a/test.txt"]).ok();
    assert_eq!(out.stdout, "Everything is up to date.\n");
    // One pipeline.lock at the root, beside dvc.yaml, for all of them.
    assert_eq!(
        env.locked_stages(),
        [
            "a/dvc.yaml:test",
            "a/dvc.yaml:train",
            "b/dvc.yaml:train",
            "top"
        ]
    );
    let err = env.pipe(&["repro", "--glob", "zz*"]).code(2);
    insta::assert_snapshot!(err.stderr, @r"
    Using dvc.yaml, a/dvc.yaml and b/dvc.yaml (no pipeline.yaml here).
    error: dvc.yaml: no stage matches `zz*`
      hint: `*` matches any text and `?` one character; `pipe dag` lists the stages
    ");
}

#[test]
fn init_in_a_dvc_project_writes_no_pipeline_yaml_that_would_hide_dvc_yaml() {
    let env = TestEnv::new().file("dvc.yaml", "stages:\n  a:\n    cmd: echo a\n");
    let out = env.pipe(&["init"]).ok();
    assert!(!env.exists("pipeline.yaml"));
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stdout, @r"
    Initialized a pipe project in [ROOT]:
      pipeline.yaml     not written: pipe runs dvc.yaml as it is (`pipe import-dvc` converts it)
      .pipeline-cache/  the cache (its own .gitignore keeps it out of git)
    Next: run `pipe repro`.
    ");
}
