//! `pipe dag`: the pipeline as a drawing, DOT, Mermaid, Markdown or JSON,
//! of stages or of outputs.

use crate::env::TestEnv;

/// The demo's shape: synth → split → {train, evaluate}, train → evaluate;
/// plus `report`, which stands alone and is frozen. `split` and `report`
/// have a `desc:`.
fn demo() -> TestEnv {
    TestEnv::new().pipeline(
        "
        stages:
          synth:
            uses: synth
            with: {out: data/reviews.tsv}
          split:
            desc: Split the reviews into train and test
            cmd: cp data/reviews.tsv data/train.tsv; cp data/reviews.tsv data/test.tsv
            deps: [data/reviews.tsv]
            outs: [data/train.tsv, data/test.tsv]
          train:
            cmd: mkdir -p model; cp data/train.tsv model/counts.tsv
            deps: [data/train.tsv]
            outs: [model/]
          evaluate:
            cmd: cat model/counts.tsv data/test.tsv > metrics.json
            deps: [model, data/test.tsv]
            metrics: [metrics.json]
          report:
            desc: The weekly report
            cmd: echo report > report.txt
            outs: [report.txt]
            frozen: true
        ",
    )
}

fn dag(env: &TestEnv, args: &[&str]) -> String {
    let mut all = vec!["dag"];
    all.extend_from_slice(args);
    let out = env.pipe(&all).ok();
    assert_eq!(out.stderr, "");
    out.stdout
}

#[test]
fn draws_the_stages() {
    let env = demo();
    insta::assert_snapshot!(dag(&env, &[]));
}

#[test]
fn dot() {
    let env = demo();
    insta::assert_snapshot!(dag(&env, &["--dot"]));
}

#[test]
fn mermaid_and_markdown() {
    let env = demo();
    let mermaid = dag(&env, &["--mermaid"]);
    insta::assert_snapshot!(mermaid);
    assert_eq!(
        dag(&env, &["--md"]),
        format!("```mermaid\n{mermaid}```\n"),
        "--md is the Mermaid chart in a fenced block"
    );
}

#[test]
fn json() {
    let env = demo();
    let text = dag(&env, &["--json"]);
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let nodes: Vec<&str> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["synth", "split", "train", "evaluate", "report"]);
    let edges: Vec<(&str, &str)> = json["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from"].as_str().unwrap(), e["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        edges,
        [
            ("synth", "split"),
            ("split", "train"),
            ("split", "evaluate"),
            ("train", "evaluate")
        ]
    );
    insta::assert_snapshot!(text);
}

#[test]
fn outs_draws_the_outputs() {
    let env = demo();
    insta::assert_snapshot!("outs_text", dag(&env, &["--outs"]));
    insta::assert_snapshot!("outs_dot", dag(&env, &["--outs", "--dot"]));
}

#[test]
fn a_target_shows_it_and_its_upstream_stages() {
    let env = demo();
    insta::assert_snapshot!("target_text", dag(&env, &["train"]));
    let dot = dag(&env, &["train", "--dot"]);
    assert!(!dot.contains("evaluate"), "{dot}");
    assert!(!dot.contains("report"), "{dot}");
    assert!(dot.contains("\"synth\" -> \"split\""), "{dot}");
    let outs = dag(&env, &["--outs", "train"]);
    assert!(outs.contains("model"), "{outs}");
    assert!(!outs.contains("metrics.json"), "{outs}");
}

#[test]
fn generated_stages_appear_by_name() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          prep:
            cmd: echo x > x.txt
            outs: [x.txt]
          train:
            foreach: [cnn, rnn]
            do:
              cmd: cp x.txt model-${item}.txt
              deps: [x.txt]
              outs:
                - model-${item}.txt
        ",
    );
    let text = dag(&env, &[]);
    insta::assert_snapshot!(text);
    let dot = dag(&env, &["--dot"]);
    assert!(dot.contains("\"prep\" -> \"train@cnn\""), "{dot}");
    assert!(dot.contains("\"prep\" -> \"train@rnn\""), "{dot}");
}

#[test]
fn dag_works_before_anything_ran_and_writes_nothing() {
    let env = demo();
    let before = env.tree();
    dag(&env, &[]);
    dag(&env, &["--json", "--outs"]);
    assert_eq!(env.tree(), before);
}
