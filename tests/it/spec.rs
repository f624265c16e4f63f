//! The fields of `pipeline.yaml` (named as in DVC's `dvc.yaml`) and what each
//! one does when the pipeline runs.

use crate::env::TestEnv;

#[test]
fn params_as_dotted_keys_sections_other_files_and_whole_files() {
    let env = TestEnv::new()
        .params(
            "
            fit:
              C: 1
              tol: 0.1
            split:
              every: 5
            ",
        )
        .file("train.yaml", "lr: 0.01\nepochs: 3\n")
        .file("whole.yaml", "anything: 1\n")
        .pipeline(
            "
            stages:
              leaf:
                cmd: echo leaf >> runs.log
                params: [fit.C]
              section:
                cmd: echo section >> runs.log
                params: [split]
              other:
                cmd: echo other >> runs.log
                params:
                  - train.yaml: [lr]
              whole:
                cmd: echo whole >> runs.log
                params:
                  - whole.yaml
            ",
        );
    env.pipe(&["repro", "-j", "1"]).ok();
    assert_eq!(env.runs(), ["leaf", "section", "other", "whole"]);
    let lock = env.lock();
    assert_eq!(lock["stages"]["leaf"]["params"]["params.yaml"]["fit.C"], 1);
    assert_eq!(lock["stages"]["other"]["params"]["train.yaml"]["lr"], 0.01);

    let rerun = |file: &str, text: &str| {
        env.write(file, text);
        let before = env.runs().len();
        env.pipe(&["repro", "-j", "1"]).ok();
        env.runs()[before..].to_vec()
    };
    assert_eq!(
        rerun("params.yaml", "fit: {C: 1, tol: 0.2}\nsplit: {every: 5}\n"),
        Vec::<String>::new(),
        "fit.tol is nobody's param"
    );
    assert_eq!(
        rerun("params.yaml", "fit: {C: 2, tol: 0.2}\nsplit: {every: 5}\n"),
        ["leaf"]
    );
    assert_eq!(
        rerun("params.yaml", "fit: {C: 2, tol: 0.2}\nsplit: {every: 6}\n"),
        ["section"]
    );
    assert_eq!(
        rerun("train.yaml", "lr: 0.01\nepochs: 4\n"),
        Vec::<String>::new()
    );
    assert_eq!(rerun("train.yaml", "lr: 0.02\nepochs: 4\n"), ["other"]);
    assert_eq!(rerun("whole.yaml", "anything: 1\nnew: 2\n"), ["whole"]);
}

#[test]
fn a_changed_whole_params_file_is_reported_by_key() {
    let env = TestEnv::new().file("whole.yaml", "a: 1\n").pipeline(
        "
            stages:
              whole:
                cmd: echo whole >> runs.log
                params:
                  - whole.yaml
            ",
    );
    env.pipe(&["repro"]).ok();
    env.write("whole.yaml", "a: 2\n");
    let out = env.pipe(&["status"]).ok();
    assert!(
        out.stdout.contains("param whole.yaml:a changed: 1 → 2"),
        "{}",
        out.stdout
    );
}

#[test]
fn cmd_as_a_string_or_a_list() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          one:
            cmd: echo one > one.txt
            outs: [one.txt]
          many:
            cmd:
              - echo first > many.txt
              - echo second >> many.txt
            outs: [many.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("one.txt"), "one\n");
    assert_eq!(env.read("many.txt"), "first\nsecond\n");
}

#[test]
fn wdir_runs_the_command_there_with_paths_relative_to_it() {
    let env = TestEnv::new().file("sub/in.txt", "data\n").pipeline(
        "
        stages:
          inside:
            desc: Runs in sub/
            wdir: sub
            cmd: pwd > where.txt; cat in.txt > copy.txt
            deps: [in.txt]
            outs: [where.txt, copy.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(
        env.read("sub/where.txt").trim_end(),
        env.path("sub").display().to_string()
    );
    assert_eq!(env.read("sub/copy.txt"), "data\n");
    let lock = env.lock();
    assert_eq!(lock["stages"]["inside"]["deps"][0]["path"], "sub/in.txt");
    env.write("sub/in.txt", "new\n");
    let out = env.pipe(&["status"]).ok();
    assert!(
        out.stdout.contains("dep sub/in.txt modified"),
        "{}",
        out.stdout
    );
}

#[test]
fn frozen_stages_never_run() {
    let env = TestEnv::new().file("in.txt", "1\n").pipeline(
        "
        stages:
          ice:
            cmd: echo ice >> runs.log; cp in.txt ice.txt
            deps: [in.txt]
            outs: [ice.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    let yaml = env.read("pipeline.yaml") + "    frozen: true\n";
    env.write("pipeline.yaml", &yaml);
    env.write("in.txt", "2\n");
    let status = env.pipe(&["status"]).ok();
    assert_eq!(status.stdout, "ice: frozen\n");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["ice"]);
    assert_eq!(env.read("ice.txt"), "1\n");
    assert!(out.stderr.contains("ice  frozen"), "{}", out.stderr);
    let dag = env.pipe(&["dag"]).ok();
    assert_eq!(dag.stdout, "● ice  (frozen)\n");
}

#[test]
fn a_missing_output_of_a_frozen_stage_fails_the_stage_that_reads_it() {
    let env = TestEnv::new().file("in.txt", "1\n").pipeline(
        "
        stages:
          ice:
            cmd: cp in.txt ice.txt
            deps: [in.txt]
            outs: [ice.txt]
            frozen: true
          use:
            cmd: echo use >> runs.log; (cat ice.txt || true) > used.txt
            deps: [ice.txt]
            outs: [used.txt]
        ",
    );
    let out = env.pipe(&["repro"]).code(1);
    assert!(
        out.stderr.contains(
            "dep ice.txt is missing, and the stage that writes it, ice, is frozen: restore it with `pipe checkout ice` or unfreeze ice"
        ),
        "{}",
        out.stderr
    );
    assert!(env.runs().is_empty(), "the command did not run");
    assert!(!env.exists("used.txt"));
}

#[test]
fn always_changed_stages_always_run() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          clock:
            cmd: echo tick >> runs.log; echo tick > tick.txt
            outs: [tick.txt]
            always_changed: true
        ",
    );
    env.pipe(&["repro"]).ok();
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["tick", "tick"]);
    assert!(
        out.stderr
            .contains("Running stage clock: always_changed is set"),
        "{}",
        out.stderr
    );
    let status = env.pipe(&["status"]).ok();
    assert_eq!(status.stdout, "clock:\n    always_changed is set\n");
}

#[test]
fn persistent_outputs_are_kept_between_runs_and_never_restored() {
    let env = TestEnv::new().params("n: 1\n").pipeline(
        "
        stages:
          grow:
            cmd: echo grow >> runs.log; echo ${n} >> log.txt
            outs:
              - log.txt:
                  persist: true
        ",
    );
    env.pipe(&["repro"]).ok();
    env.write("params.yaml", "n: 2\n");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("log.txt"), "1\n2\n");
    // Back to n: 1: a persistent output depends on its own past, so the
    // run cache cannot stand in for running.
    env.write("params.yaml", "n: 1\n");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 0 up to date, 0 failed");
    assert_eq!(env.read("log.txt"), "1\n2\n1\n");
    assert_eq!(env.runs(), ["grow", "grow", "grow"]);
}

#[test]
fn uncached_outputs_are_tracked_but_not_restorable() {
    let env = TestEnv::new().params("n: 1\n").pipeline(
        "
        stages:
          score:
            cmd: echo score >> runs.log; echo ${n} > metrics.json; echo x,y > plot.csv
            metrics:
              - metrics.json:
                  cache: false
            plots: [plot.csv]
        ",
    );
    env.pipe(&["repro"]).ok();
    let lock = env.lock();
    let outs: Vec<&str> = lock["stages"]["score"]["outs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert_eq!(outs, ["metrics.json", "plot.csv"]);
    env.write("metrics.json", "tampered\n");
    let status = env.pipe(&["status"]).ok();
    assert!(
        status.stdout.contains("output metrics.json modified"),
        "{}",
        status.stdout
    );
    env.write("params.yaml", "n: 2\n");
    env.pipe(&["repro"]).ok();
    env.write("params.yaml", "n: 1\n");
    env.pipe(&["repro"]).ok();
    assert_eq!(
        env.runs(),
        ["score", "score", "score"],
        "an uncached output cannot come from the run cache"
    );
}

#[test]
fn metrics_and_plots_are_outputs_in_the_dag() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          score:
            cmd: echo 1 > metrics.json; echo x,y > plot.csv
            metrics: [metrics.json]
            plots: [plot.csv]
          report:
            cmd: cat metrics.json plot.csv > report.txt
            deps: [metrics.json, plot.csv]
            outs: [report.txt]
        ",
    );
    assert_eq!(env.pipe(&["dag"]).ok().stdout, "● score\n│\n● report\n");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("report.txt"), "1\nx,y\n");
}

#[test]
fn the_synth_builtin_writes_its_declared_output() {
    let env = TestEnv::new()
        .params(
            "
            synth:
              rows: 30
              seed: 7
            ",
        )
        .pipeline(
            "
            stages:
              synth:
                desc: A small synthetic corpus
                uses: synth
                with: {out: data/reviews.tsv}
                params: [synth]
              count:
                cmd: echo count >> runs.log; wc -l < data/reviews.tsv > count.txt
                deps: [data/reviews.tsv]
                outs: [count.txt]
            ",
        );
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "2 ran, 0 restored, 0 up to date, 0 failed");
    let data = env.read("data/reviews.tsv");
    let mut lines = data.lines();
    assert_eq!(
        lines.next(),
        Some("PhraseId\tSentenceId\tPhrase\tSentiment")
    );
    assert_eq!(lines.count(), 30);
    assert_eq!(env.read("count.txt").trim(), "31");
    let lock = env.lock();
    assert_eq!(lock["stages"]["synth"]["uses"], "synth");
    assert!(lock["stages"]["synth"]["version"].is_number());
    assert_eq!(lock["stages"]["synth"]["with"]["out"], "data/reviews.tsv");
    assert_eq!(
        lock["stages"]["synth"]["params"]["params.yaml"]["synth"]["rows"],
        30
    );

    // Deterministic: another project with the same params writes the same bytes.
    let twin = TestEnv::new()
        .file("params.yaml", &env.read("params.yaml"))
        .file("pipeline.yaml", &env.read("pipeline.yaml"));
    twin.pipe(&["repro"]).ok();
    assert_eq!(twin.read("data/reviews.tsv"), data);

    // A new seed reruns it; its downstream reruns only if the bytes changed.
    env.write("params.yaml", "synth:\n  rows: 30\n  seed: 8\n");
    let status = env.pipe(&["status"]).ok();
    assert!(
        status.stdout.contains("param synth.seed changed: 7 → 8"),
        "{}",
        status.stdout
    );
    env.pipe(&["repro"]).ok();
    assert_ne!(env.read("data/reviews.tsv"), data);
}

#[test]
fn desc_and_meta_are_accepted_and_change_nothing() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            desc: first version
            meta: {owner: me}
            cmd: echo a >> runs.log; echo a > a.txt
            outs:
              - a.txt:
                  desc: the output
        ",
    );
    env.pipe(&["repro"]).ok();
    let yaml = env
        .read("pipeline.yaml")
        .replace("first version", "second version");
    env.write("pipeline.yaml", &yaml);
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["a"], "a new description reruns nothing");
}
