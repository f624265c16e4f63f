//! DVC's `dvc.yaml` syntax, checked against DVC's own documented results.
//!
//! Each test takes an example from dvc.org's `dvc.yaml` reference
//! (`user-guide/project-structure/dvcyaml-files`) or from DVC's parsing
//! tests (`tests/func/parsing/`), writes it as `dvc.yaml`, runs it with
//! `pipe repro` and compares the commands the shell ran (`> cmd` on
//! stdout) with the `cmd` DVC documents for `dvc.lock`. The programs the
//! examples call (`python`, `clean.py`, `./train.py`, …) are stand-ins on
//! `PATH` that write the outputs the example declares.
//!
//! Where DVC's documentation and DVC differ, DVC wins: the dictionary
//! unpacking example shows `--foo 'foo'`, while DVC (its tests, and `dvc
//! repro`) quotes only what the shell needs quoted: `--foo foo`.

use std::os::unix::fs::PermissionsExt;

use crate::env::TestEnv;

/// A DVC project with `dvc.yaml`, stand-in programs on PATH, and `files`.
fn project(dvc_yaml: &str, files: &[(&str, &str)]) -> TestEnv {
    let env = TestEnv::new();
    let path = format!(
        "{}:{}",
        env.path("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = env
        .env("PATH", &path)
        .file("dvc.yaml", &crate::env::dedent(dvc_yaml));
    for (name, text) in files {
        env.write(name, &crate::env::dedent(text));
    }
    for (name, script) in [
        // `python train.py KEY EPOCHS THRESH` writes model-KEY.hdfs.
        (
            "bin/python",
            "if [ \"$1\" = train.py ] && [ $# -eq 4 ]; then : > \"model-$2.hdfs\"; fi",
        ),
        ("bin/clean.py", ": > \"$1.cln\""),
        ("bin/R", "exit 0"),
        // `./train.py --feature F MODEL` writes MODEL-F.pkl.
        ("train.py", ": > \"$3-$2.pkl\""),
        // `./script.py KEY PROP1` writes KEY.out.
        ("script.py", ": > \"$1.out\""),
    ] {
        env.write(name, &format!("#!/bin/sh\n{script}\n"));
        std::fs::set_permissions(env.path(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    env
}

/// Runs `pipe repro` (one stage at a time, so in a stable order) and
/// returns the commands it ran.
#[track_caller]
fn commands(env: &TestEnv) -> Vec<String> {
    let out = env.pipe(&["repro", "-j", "1"]).ok();
    out.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("> ").map(str::to_string))
        .collect()
}

/// `pipe dag --outs`: the outputs, as the pipeline resolves them.
fn outs(env: &TestEnv) -> Vec<String> {
    let mut outs: Vec<String> = env
        .pipe(&["dag", "--outs"])
        .ok()
        .stdout
        .lines()
        .filter_map(|l| l.split("● ").nth(1).map(str::to_string))
        .collect();
    outs.sort();
    outs
}

#[test]
fn foreach_over_a_list_of_simple_values() {
    let env = project(
        r#"
        stages:
          cleanups:
            foreach: # List of simple values
              - raw1
              - labels1
              - raw2
            do:
              cmd: clean.py "${item}"
              outs:
                - ${item}.cln
        "#,
        &[],
    );
    assert_eq!(
        commands(&env),
        [
            r#"clean.py "raw1""#,
            r#"clean.py "labels1""#,
            r#"clean.py "raw2""#
        ]
    );
    assert_eq!(
        env.locked_stages(),
        ["cleanups@labels1", "cleanups@raw1", "cleanups@raw2"]
    );
    assert_eq!(outs(&env), ["labels1.cln", "raw1.cln", "raw2.cln"]);
}

#[test]
fn foreach_over_a_list_of_mappings_is_indexed() {
    let env = project(
        "
        stages:
          train:
            foreach:
              - epochs: 3
                thresh: 10
              - epochs: 10
                thresh: 15
            do:
              cmd: python train.py ${item.epochs} ${item.thresh}
        ",
        &[],
    );
    assert_eq!(
        commands(&env),
        ["python train.py 3 10", "python train.py 10 15"]
    );
    assert_eq!(env.locked_stages(), ["train@0", "train@1"]);
}

#[test]
fn foreach_over_a_mapping_has_key_and_item() {
    let env = project(
        "
        stages:
          build:
            foreach:
              uk:
                epochs: 3
                thresh: 10
              us:
                epochs: 10
                thresh: 15
            do:
              cmd: python train.py '${key}' ${item.epochs} ${item.thresh}
              outs:
                - model-${key}.hdfs
        ",
        &[],
    );
    assert_eq!(
        commands(&env),
        ["python train.py 'uk' 3 10", "python train.py 'us' 10 15"]
    );
    assert_eq!(outs(&env), ["model-uk.hdfs", "model-us.hdfs"]);
}

#[test]
fn foreach_over_a_mapping_from_params_yaml() {
    let env = project(
        "
        stages:
          mystages:
            foreach: ${myobject} # From params.yaml
            do:
              cmd: ./script.py ${key} ${item.prop1}
              outs:
                - ${item.prop2}
        ",
        &[(
            "params.yaml",
            "
            myobject:
              first: {prop1: a, prop2: first.out}
              second: {prop1: b, prop2: second.out}
            ",
        )],
    );
    assert_eq!(
        commands(&env),
        ["./script.py first a", "./script.py second b"]
    );
    // DVC's parsing tests: `${item[thresh]}` is `${item.thresh}`, and keys
    // written as numbers name the stages.
    let env = project(
        "
        stages:
          build:
            foreach:
              2021: {thresh: foo}
              2022: {thresh: bar}
            do:
              cmd: echo ${key} ${item[thresh]}
        ",
        &[],
    );
    assert_eq!(commands(&env), ["echo 2021 foo", "echo 2022 bar"]);
    assert_eq!(env.locked_stages(), ["build@2021", "build@2022"]);
}

#[test]
fn matrix_makes_every_combination_and_key_names_it() {
    let env = project(
        "
        stages:
          train:
            matrix:
              model: [cnn, xgb]
              feature: [feature1, feature2, feature3]
            cmd: ./train.py --feature ${item.feature} ${item.model}
            outs:
              - ${key}.pkl # equivalent to: ${item.model}-${item.feature}.pkl
        ",
        &[],
    );
    assert_eq!(
        commands(&env),
        [
            "./train.py --feature feature1 cnn",
            "./train.py --feature feature2 cnn",
            "./train.py --feature feature3 cnn",
            "./train.py --feature feature1 xgb",
            "./train.py --feature feature2 xgb",
            "./train.py --feature feature3 xgb",
        ]
    );
    assert_eq!(
        env.locked_stages(),
        [
            "train@cnn-feature1",
            "train@cnn-feature2",
            "train@cnn-feature3",
            "train@xgb-feature1",
            "train@xgb-feature2",
            "train@xgb-feature3",
        ]
    );
    assert_eq!(
        outs(&env),
        [
            "cnn-feature1.pkl",
            "cnn-feature2.pkl",
            "cnn-feature3.pkl",
            "xgb-feature1.pkl",
            "xgb-feature2.pkl",
            "xgb-feature3.pkl"
        ]
    );
}

#[test]
fn matrix_of_composite_values_from_params_as_dvcs_tests_have_it() {
    // tests/func/parsing/test_matrix.py, `matrix: ${…}` from params.yaml.
    let env = project(
        "
        stages:
          build:
            matrix:
              os: ${os}
              pyv: ${pyv}
              dict: ${dict}
              list: ${list}
            cmd: echo ${item.os} ${item.pyv} ${item.dict} -- ${item.list.0} ${item.list[1]} ${key}
        ",
        &[(
            "params.yaml",
            "
            os: [win, linux]
            pyv: [3.7, 3.8]
            dict: [{arg1: 1}, {arg2: 2}]
            list: [[out1, out11], [out2, out22]]
            ",
        )],
    );
    let cmds = commands(&env);
    assert_eq!(cmds.len(), 16);
    assert_eq!(
        cmds[..3],
        [
            "echo win 3.7 --arg1 1 -- out1 out11 win-3.7-dict0-list0",
            "echo win 3.7 --arg1 1 -- out2 out22 win-3.7-dict0-list1",
            "echo win 3.7 --arg2 2 -- out1 out11 win-3.7-dict1-list0",
        ]
    );
    assert_eq!(
        cmds[15],
        "echo linux 3.8 --arg2 2 -- out2 out22 linux-3.8-dict1-list1"
    );
    assert!(env
        .locked_stages()
        .contains(&"build@linux-3.8-dict1-list1".to_string()));
}

#[test]
fn templating_from_params_yaml_and_artifacts() {
    let env = project(
        "
        artifacts:
          model-us:
            path: ${models.us.filename}
            type: model

        stages:
          build-us:
            cmd: >-
              python ${codedir}/train.py
              --thresh ${models.us.threshold}
              --out ${models.us.filename}
            outs:
              - ${models.us.filename}:
                  cache: true
        ",
        &[(
            "params.yaml",
            "
            models:
              us:
                threshold: 10
                filename: 'model-us.hdf5'
            codedir: src
            ",
        )],
    );
    // The stand-in does not write the model: the stage fails after its
    // command, which is what is checked.
    let out = env.pipe(&["repro"]).code(1);
    assert_eq!(
        out.stdout,
        "> python src/train.py --thresh 10 --out model-us.hdf5\n"
    );
    assert_eq!(outs(&env), ["model-us.hdf5"]);
    // Simple values written into the command are tracked like params.
    let status = env.pipe(&["status", "--json"]).ok();
    assert!(status.stdout.contains("never_run"), "{}", status.stdout);
}

#[test]
fn vars_inline_and_from_files_merge_key_by_key() {
    let env = project(
        "
        vars:
          - params.json
          - myvar: 'value'
          - config/myapp.yaml
          - extra.toml:feats
        stages:
          show:
            cmd: echo ${myvar} ${clean.filename} ${grp.a} ${grp.b} ${app.name} ${feats.exec} ${names[1]}
        ",
        &[
            (
                "params.json",
                r#"{"clean": {"filename": "clean.csv"}, "grp": {"a": 1}, "names": ["x", "y"]}"#,
            ),
            ("config/myapp.yaml", "app: {name: demo}\ngrp: {b: 2}\n"),
            (
                "extra.toml",
                "[feats]\nexec = \"featurize.py\"\n[other]\nx = 1\n",
            ),
        ],
    );
    assert_eq!(
        commands(&env),
        ["echo value clean.csv 1 2 demo featurize.py y"]
    );
}

#[test]
fn a_value_defined_twice_is_an_error_naming_both_places() {
    // `{"grp": {"a": 1}}` merges with `{"grp": {"b": 2}}`, but not with
    // `{"grp": {"a": 7}}`.
    let env = project(
        "
        vars:
          - grp: {b: 2}
          - grp: {a: 7}
        stages:
          show:
            cmd: echo ${grp.a}
        ",
        &[("params.yaml", "grp: {a: 1}\n")],
    );
    let out = env.pipe(&["repro"]).code(2);
    insta::assert_snapshot!(out.stderr, @"error: dvc.yaml:1:1: vars: cannot redefine `grp.a` from vars[1] as it already exists in params.yaml");
    let env = project(
        "
        stages:
          build:
            cmd: echo ${models.foo}
            vars: [params.json]
        ",
        &[
            ("params.yaml", "models: {foo: foo, bar: bar}\n"),
            ("params.json", r#"{"models": {"bar": "baz"}}"#),
        ],
    );
    let out = env.pipe(&["repro"]).code(2);
    insta::assert_snapshot!(out.stderr, @"error: dvc.yaml:4:12: stage `build`: vars: cannot redefine `models.bar` from params.json as it already exists in params.yaml");
}

#[test]
fn dictionary_unpacking_in_cmd() {
    let yaml = "
        stages:
          train:
            cmd: R train.r ${mydict}
        ";
    let params = "
        mydict:
          foo: foo
          bar: 1
          bool: true
          nested:
            baz: bar
          list: [2, 3, 'qux']
        ";
    let env = project(yaml, &[("params.yaml", params)]);
    assert_eq!(
        commands(&env),
        ["R train.r --foo foo --bar 1 --bool --nested.baz bar --list 2 3 qux"]
    );
    // DVC's test_cmd_dict, with `dvc config parsing.bool boolean_optional`
    // and `parsing.list append`.
    let env = project(
        "
        stages:
          stage1:
            cmd: echo ${dict}
        ",
        &[
            (
                "params.yaml",
                r#"
                dict:
                  foo: foo
                  bar: 2
                  string: spaced string
                  mixed_quote_string: quote"'d
                  bool: true
                  bool-false: false
                  list: [1, 2, foo, "quote\"'d"]
                  nested: {foo: foo}
                "#,
            ),
            (
                ".dvc/config",
                "[parsing]\n    bool = boolean_optional\n    list = append\n",
            ),
        ],
    );
    assert_eq!(
        commands(&env),
        [
            r#"echo --foo foo --bar 2 --string 'spaced string' --mixed_quote_string 'quote"'"'"'d' --bool --no-bool-false --list 1 --list 2 --list foo --list 'quote"'"'"'d' --nested.foo foo"#
        ]
    );
}

#[test]
fn stage_vars_are_read_relative_to_the_stages_wdir() {
    // tests/func/parsing/test_interpolated_entry.py::test_stage_with_wdir
    let env = project(
        "
        stages:
          stage1:
            cmd: echo ${dict.foo} ${dict.bar} > out.txt
            params: [value1]
            wdir: data
            vars: [params.yaml]
            outs: [out.txt]
        ",
        &[
            ("params.yaml", "dict: {bar: bar}\n"),
            ("data/params.yaml", "dict: {foo: foo}\nvalue1: 1\n"),
        ],
    );
    assert_eq!(commands(&env), ["echo foo bar > out.txt"]);
    assert_eq!(env.read("data/out.txt"), "foo bar\n");
    // `item` of a generated stage cannot be redefined by its vars.
    let env = project(
        "
        stages:
          build:
            foreach: [a]
            do:
              vars: [{item: 5}]
              cmd: echo ${item}
        ",
        &[],
    );
    let out = env.pipe(&["repro"]).code(2);
    insta::assert_snapshot!(out.stderr, @"error: dvc.yaml:5:7: stage `build@a`: vars: `item` is reserved in a generated stage and cannot be redefined");
}

#[test]
fn params_from_toml_and_json_files() {
    let env = project(
        "
        stages:
          train:
            cmd: echo ${lr} > lr.txt
            vars: [config.toml]
            params:
              - config.toml: [lr]
              - other.json:
            outs: [lr.txt]
        ",
        &[
            ("config.toml", "lr = 0.5\n[opt]\nname = \"adam\"\n"),
            ("other.json", r#"{"seed": 1}"#),
        ],
    );
    assert_eq!(commands(&env), ["echo 0.5 > lr.txt"]);
    env.write("config.toml", "lr = 0.25\n[opt]\nname = \"adam\"\n");
    let status = env.pipe(&["status"]).ok();
    insta::assert_snapshot!(status.stdout, @r"
    train:
        command changed: `echo 0.5 > lr.txt` → `echo 0.25 > lr.txt`
        param config.toml:lr changed: 0.5 → 0.25
    ");
}

#[test]
fn templated_booleans_and_escapes() {
    // tests/func/parsing/__init__.py: `frozen: ${freeze}` is a boolean.
    let env = project(
        r"
        stages:
          stage1:
            cmd: echo '\${literal}' ${dict.foo} > out.txt
            outs: [out.txt]
            frozen: ${freeze}
          stage2:
            cmd: echo '\${literal}' ${dict.foo} > out2.txt
            outs: [out2.txt]
        ",
        &[("params.yaml", "dict: {foo: foo}\nfreeze: true\n")],
    );
    assert_eq!(commands(&env), ["echo '${literal}' foo > out2.txt"]);
    assert_eq!(env.read("out2.txt"), "${literal} foo\n");
}

#[test]
fn every_mistake_in_the_file_is_reported_in_one_pass() {
    let env = project(
        "
        stagez:
          a: {cmd: echo}
        metricz: [m.json]
        plot: []
        stages:
          train:
            cmd: echo
            dpes: [a]
            outs:
              - x.txt: {cahce: false}
          test:
            foreach: [a]
            do:
              cmd: echo ${item}
              outz: [b]
        ",
        &[],
    );
    let out = env.pipe(&["status"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: dvc.yaml:1:1: unknown field `stagez`
      hint: did you mean `stages`?
    error: dvc.yaml:3:1: unknown field `metricz`
      hint: did you mean `metrics`?
    error: dvc.yaml:4:1: unknown field `plot`
      hint: did you mean `plots`?
    error: dvc.yaml:8:5: stage `train`: unknown field `dpes`
      hint: did you mean `deps`?
    error: dvc.yaml:10:17: stage `train`: outs: unknown option `cahce` of `x.txt`
      hint: did you mean `cache`?
    error: dvc.yaml:15:7: stage `test`: unknown field `outz`
      hint: did you mean `outs`?
    ");
}

#[test]
fn fields_dvc_accepts_and_pipe_ignores_are_noted_under_verbose() {
    let env = project(
        "
        artifacts:
          text-classification:
            path: model.pkl
            type: model
            labels: [nlp]
        stages:
          train:
            cmd: echo > model.pkl
            meta: {owner: ada}
            outs:
              - model.pkl:
                  desc: the model
                  type: model
                  labels: [nlp]
                  push: false
                  remote: store
            plots:
              - roc.csv:
                  cache: false
                  x: fpr
                  y: tpr
                  template: simple
                  title: ROC
                  x_label: False positive rate
                  y_label: True positive rate
                  header: true
        datasets:
          - {name: d, url: 'dvc://x', type: dvc}
        ",
        &[],
    );
    let quiet = env.pipe(&["dag"]).ok();
    assert_eq!(quiet.stderr, "Using dvc.yaml (no pipeline.yaml here).\n");
    let verbose = env.pipe(&["dag", "-v"]).ok();
    insta::assert_snapshot!(verbose.stderr, @r"
    Using dvc.yaml (no pipeline.yaml here).
    note: dvc.yaml: `artifacts` (text-classification) are accepted and ignored (pipe keeps no model registry)
    note: dvc.yaml: `datasets` is accepted and ignored (pipe has no use for it)
    note: dvc.yaml: stage `train`: `meta` is accepted and ignored (pipe has no use for it)
    note: dvc.yaml: stage `train`: outs `model.pkl`: `type` is accepted and ignored (pipe has no use for it)
    note: dvc.yaml: stage `train`: outs `model.pkl`: `labels` is accepted and ignored (pipe has no use for it)
    note: dvc.yaml: stage `train`: outs `model.pkl`: `push` is accepted and ignored (pipe has no use for it)
    note: dvc.yaml: stage `train`: outs `model.pkl`: `remote` is accepted and ignored (pipe has no use for it)
    ");
}

#[test]
fn a_metrics_file_inside_a_directory_output_is_read_from_it() {
    // As DVC's example project has it: the metrics are part of `eval/`.
    let env = project(
        r#"
        stages:
          evaluate:
            cmd: >-
              mkdir -p eval/plots && echo '{"acc": 0.9}' > eval/metrics.json
              && echo 'x,y' > eval/plots/roc.csv
            outs: [eval]
            metrics: [eval/metrics.json]
            plots:
              - eval/plots/roc.csv: {x: x, y: y}
        "#,
        &[],
    );
    env.git(&["init", "-q", "-b", "main"]);
    env.pipe(&["repro"]).ok();
    env.commit("evaluated");
    let show = env.pipe(&["metrics", "show"]).ok();
    insta::assert_snapshot!(show.stdout, @r"
    Path               Metric  Value
    eval/metrics.json  acc     0.9
    ");
    // Only the directory is an output: stored, restored and locked whole.
    let lock = env.lock();
    let outs = lock["stages"]["evaluate"]["outs"].as_sequence().unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0]["path"], "eval");
    // At a revision where git does not have it, it comes from the cache.
    env.write("dvc.yaml", &env.read("dvc.yaml").replace("0.9", "0.95"));
    env.pipe(&["repro"]).ok();
    let diff = env.pipe(&["metrics", "diff"]).ok();
    insta::assert_snapshot!(diff.stdout, @r"
    Path               Metric  HEAD  workspace  Change
    eval/metrics.json  acc     0.9   0.95       +0.05
    ");
}
