//! `pipe stage add`, `pipe stage list`, `pipe freeze`/`unfreeze` and `pipe
//! remove`: the pipeline file changed as a person would change it
//! (comments kept), checked before it is written, and what repro does next.

use crate::env::TestEnv;

const PIPELINE: &str = "# Our pipeline.
stages:
  # makes the numbers
  gen:
    cmd: echo gen >> runs.log; seq 1 10 > a.txt
    outs: [a.txt]

  count:
    cmd: echo count >> runs.log; wc -l < a.txt > n.txt
    deps: [a.txt]
    outs: [n.txt]
";

#[test]
fn stage_add_appends_a_stage_that_repro_runs() {
    let env = TestEnv::new().file("pipeline.yaml", PIPELINE);
    let out = env
        .pipe(&[
            "stage",
            "add",
            "-n",
            "double",
            "-d",
            "n.txt",
            "-o",
            "d.txt",
            "-M",
            "m.json",
            "--desc",
            "doubles it",
            "sh",
            "-c",
            "echo double >> runs.log; echo $(( $(cat n.txt) * 2 )) > d.txt; echo '{}' > m.json",
        ])
        .ok();
    insta::assert_snapshot!(out.stdout, @"Added stage double in pipeline.yaml; `pipe repro double` runs it.");
    insta::assert_snapshot!(env.read("pipeline.yaml"), @r#"
    # Our pipeline.
    stages:
      # makes the numbers
      gen:
        cmd: echo gen >> runs.log; seq 1 10 > a.txt
        outs: [a.txt]

      count:
        cmd: echo count >> runs.log; wc -l < a.txt > n.txt
        deps: [a.txt]
        outs: [n.txt]

      double:
        cmd: sh -c echo double >> runs.log; echo $(( $(cat n.txt) * 2 )) > d.txt; echo '{}' > m.json
        desc: doubles it
        deps:
          - n.txt
        outs:
          - d.txt
        metrics:
          - m.json: {cache: false}
    "#);
    // (The arguments are joined with spaces, as DVC joins them: quote the
    // command as one argument to keep its quoting.)
    let exists = env.pipe(&["stage", "add", "-n", "gen", "true"]).code(2);
    insta::assert_snapshot!(exists.stderr, @r"
    error: pipeline.yaml: stage `gen` exists already
      hint: use -f to replace it, or choose another name (-n)
    ");
    let listed = env.pipe(&["stage", "list"]).ok();
    insta::assert_snapshot!(listed.stdout, @r"
    gen
    count
    double  doubles it
    ");
    env.pipe(&[
        "stage",
        "add",
        "-f",
        "-n",
        "double",
        "-d",
        "n.txt",
        "-o",
        "d.txt",
        "cat n.txt n.txt > d.txt",
    ])
    .ok();
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("d.txt"), "10\n10\n");
    assert_eq!(env.runs(), ["gen", "count"]);
}

#[test]
fn stage_add_refuses_what_would_not_load_and_changes_nothing() {
    let env = TestEnv::new().file("pipeline.yaml", PIPELINE);
    let cycle = env
        .pipe(&[
            "stage", "add", "-n", "loop", "-d", "b.txt", "-o", "a2.txt", "-o", "n.txt", "true",
        ])
        .code(2);
    insta::assert_snapshot!(cycle.stderr, @r"
    error: pipeline.yaml was not changed: with the change, pipeline.yaml:19:9: stage `loop`: `n.txt` is also an output of stage `count`
      hint: each path has one producer: rename one of the outputs, or merge the stages
    ");
    let bad = env.pipe(&["stage", "add", "-n", "a/b", "true"]).code(2);
    insta::assert_snapshot!(bad.stderr, @r"
    error: pipeline.yaml was not changed: with the change, pipeline.yaml:13: stage `a/b`: `a/b` is not a valid stage name
      hint: use letters, digits, `-` and `_`; `@` is reserved for stages made by foreach/matrix
    ");
    assert_eq!(env.read("pipeline.yaml"), PIPELINE);
}

#[test]
fn stage_add_in_an_empty_directory_starts_pipeline_yaml() {
    let env = TestEnv::new();
    env.pipe(&[
        "stage",
        "add",
        "-n",
        "hello",
        "-o",
        "hi.txt",
        "echo hi > hi.txt",
    ])
    .ok();
    insta::assert_snapshot!(env.read("pipeline.yaml"), @r"
    stages:
      hello:
        cmd: echo hi > hi.txt
        outs:
          - hi.txt
    ");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("hi.txt"), "hi\n");
}

#[test]
fn a_frozen_stage_is_not_run_until_it_is_unfrozen() {
    let env = TestEnv::new().file("pipeline.yaml", PIPELINE);
    env.pipe(&["repro"]).ok();
    let froze = env.pipe(&["freeze", "gen"]).ok();
    insta::assert_snapshot!(froze.stdout, @"Froze stage gen (pipeline.yaml): `pipe repro` uses its outputs as they are.");
    assert_eq!(
        env.read("pipeline.yaml"),
        PIPELINE.replace("  gen:\n", "  gen:\n    frozen: true\n")
    );
    let again = env.pipe(&["freeze", "gen"]).ok();
    insta::assert_snapshot!(again.stdout, @"Stage gen is frozen already.");
    // Its command changes: it stays as it is.
    env.write(
        "pipeline.yaml",
        &env.read("pipeline.yaml").replace("seq 1 10", "seq 1 20"),
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["gen", "count"]);
    insta::assert_snapshot!(env.pipe(&["stage", "list"]).ok().stdout, @r"
    gen    (frozen)
    count
    ");
    let unfroze = env.pipe(&["unfreeze", "gen"]).ok();
    insta::assert_snapshot!(unfroze.stdout, @"Unfroze stage gen (pipeline.yaml).");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["gen", "count", "gen", "count"]);
    assert_eq!(env.read("n.txt"), "20\n");
}

#[test]
fn remove_takes_the_stage_out_of_the_file_and_the_lock() {
    let env = TestEnv::new().file("pipeline.yaml", PIPELINE);
    env.pipe(&["repro"]).ok();
    let out = env.pipe(&["remove", "count"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    Removed stage count from pipeline.yaml and pipeline.lock.
    Its outputs stay: n.txt (--outs deletes them).
    ");
    insta::assert_snapshot!(env.read("pipeline.yaml"), @r"
    # Our pipeline.
    stages:
      # makes the numbers
      gen:
        cmd: echo gen >> runs.log; seq 1 10 > a.txt
        outs: [a.txt]
    ");
    assert!(!env.read("pipeline.lock").contains("count"));
    assert!(env.exists("n.txt"));
    // The last stage: refused with what to do instead.
    let last = env.pipe(&["remove", "gen", "--outs"]).code(2);
    insta::assert_snapshot!(last.stderr, @r"
    error: these are all the stages of the pipeline, and a pipeline has at least one
      hint: to remove the pipeline itself, delete pipeline.yaml and pipeline.lock
    ");
    assert!(env.exists("a.txt"));
    let unknown = env.pipe(&["remove", "cnt"]).code(2);
    insta::assert_snapshot!(unknown.stderr, @r"
    error: no stage named `cnt` in the pipeline
      hint: `pipe stage list` names the stages
    ");
}

#[test]
fn remove_outs_deletes_the_outputs_which_checkout_cannot_bring_back_without_the_stage() {
    let env = TestEnv::new().file("pipeline.yaml", PIPELINE);
    env.pipe(&["repro"]).ok();
    let out = env.pipe(&["remove", "count", "--outs"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    Removed stage count from pipeline.yaml and pipeline.lock.
    Deleted its outputs: n.txt (the cache keeps the recorded versions until `pipe gc`).
    ");
    assert!(!env.exists("n.txt"));
    assert!(env.exists("a.txt"));
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
}

#[test]
fn a_generated_stage_is_edited_by_hand() {
    let env = TestEnv::new().pipeline(
        r#"
        stages:
          train:
            foreach: [a, b]
            do:
              cmd: echo ${item} > ${item}.txt
              outs: ["${item}.txt"]
          other:
            cmd: echo other
        "#,
    );
    let out = env.pipe(&["freeze", "train@a"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: stage `train@a` is generated by `foreach` or `matrix`
      hint: change the stage `train` it comes from in pipeline.yaml by hand
    ");
    let out = env.pipe(&["remove", "train"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: stage `train` is a `foreach`/`matrix` stage (it generates train@a, train@b)
      hint: edit it in pipeline.yaml by hand
    ");
}

#[test]
fn remove_outs_keeps_an_output_the_cache_cannot_give_back() {
    let env = TestEnv::new().file("pipeline.yaml", PIPELINE);
    env.pipe(&["repro"]).ok();
    env.write("n.txt", "edited by hand\n");
    let out = env.pipe(&["remove", "count", "--outs"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    Removed stage count from pipeline.yaml and pipeline.lock.
    Kept n.txt: the cache does not hold this content (edited by hand, or not cached); delete it yourself if it is not needed.
    ");
    assert_eq!(env.read("n.txt"), "edited by hand\n");
}
