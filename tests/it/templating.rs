//! `vars`, `${…}` templating, and `foreach`/`matrix` stage generation.

use crate::env::TestEnv;

#[test]
fn params_and_vars_are_substituted_in_commands_and_paths() {
    let env = TestEnv::new()
        .file("extra.yaml", "who: world\nunused: 1\n")
        .file("more.yaml", "a: {b: deep}\nc: skipped\n")
        .params(
            "
            fit:
              C: 0.5
            out_dir: results
            ",
        )
        .pipeline(
            "
            vars:
              - greeting: hello
              - extra.yaml
              - more.yaml:a
            stages:
              say:
                cmd: mkdir -p ${out_dir}; echo ${greeting} ${who} ${fit.C} ${a.b} > ${out_dir}/say.txt
                outs:
                  - ${out_dir}/say.txt
            ",
        );
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("results/say.txt"), "hello world 0.5 deep\n");
    let lock = env.lock();
    assert_eq!(lock["stages"]["say"]["outs"][0]["path"], "results/say.txt");
    assert_eq!(
        lock["stages"]["say"]["cmd"][0],
        "mkdir -p results; echo hello world 0.5 deep > results/say.txt"
    );
}

#[test]
fn an_escaped_reference_stays_literal() {
    let env = TestEnv::new().pipeline(
        r"
        stages:
          esc:
            cmd: echo '\${HOME}' > esc.txt
            outs: [esc.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("esc.txt"), "${HOME}\n");
}

#[test]
fn a_param_written_into_the_command_is_tracked_and_reported_by_name() {
    let env = TestEnv::new().params("fit: {C: 100000}\n").pipeline(
        "
        stages:
          train:
            cmd: echo train >> runs.log; echo ${fit.C} > model.txt
            outs: [model.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    env.write("params.yaml", "fit: {C: 1}\n");
    let out = env.pipe(&["status"]).ok();
    assert!(
        out.stdout.contains("param fit.C changed: 100000 → 1"),
        "{}",
        out.stdout
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("model.txt"), "1\n");
    env.write("params.yaml", "fit: {C: 100000}\n");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("model.txt"), "100000\n");
    assert_eq!(env.runs(), ["train", "train"], "the revert was restored");
}

#[test]
fn foreach_over_a_list_makes_one_stage_per_item() {
    let env = TestEnv::new()
        .params("models: [small, big]\nsizes: {small: 1, big: 3}\n")
        .pipeline(
            "
            stages:
              gen:
                foreach: ${models}
                do:
                  cmd: echo ${item} >> runs.log; echo ${item} ${sizes.small} > out-${item}.txt
                  outs:
                    - out-${item}.txt
            ",
        );
    let out = env.pipe(&["repro", "-j", "1"]).ok();
    assert_eq!(env.runs(), ["small", "big"]);
    assert_eq!(env.read("out-small.txt"), "small 1\n");
    assert_eq!(env.read("out-big.txt"), "big 1\n");
    assert_eq!(env.locked_stages(), ["gen@big", "gen@small"]);
    assert!(out.stderr.contains("✓ gen@small"), "{}", out.stderr);

    // The base name selects every generated stage; the full name just one.
    env.pipe(&["repro", "-j", "1", "-f", "gen"]).ok();
    assert_eq!(env.runs(), ["small", "big", "small", "big"]);
    env.pipe(&["repro", "-f", "gen@big"]).ok();
    assert_eq!(env.runs(), ["small", "big", "small", "big", "big"]);
}

#[test]
fn foreach_over_a_mapping_has_key_and_item() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          kv:
            foreach:
              us: {lang: en}
              fr: {lang: fr}
            do:
              cmd: echo ${key} ${item.lang} > kv-${key}.txt
              outs:
                - kv-${key}.txt
        ",
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("kv-us.txt"), "us en\n");
    assert_eq!(env.read("kv-fr.txt"), "fr fr\n");
    assert_eq!(env.locked_stages(), ["kv@fr", "kv@us"]);
}

#[test]
fn matrix_makes_one_stage_per_combination() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          grid:
            matrix:
              model: [cnn, rnn]
              lr: [1, 2]
            cmd: echo ${item.model} ${item.lr} > grid-${item.model}-${item.lr}.txt
            outs:
              - grid-${item.model}-${item.lr}.txt
        ",
    );
    let out = env.pipe(&["dag"]).ok();
    for name in ["grid@cnn-1", "grid@cnn-2", "grid@rnn-1", "grid@rnn-2"] {
        assert!(out.stdout.contains(name), "{name}:\n{}", out.stdout);
    }
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("grid-rnn-2.txt"), "rnn 2\n");
    assert_eq!(env.locked_stages().len(), 4);
}

#[test]
fn generated_stages_depend_on_each_other_through_their_paths() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          prep:
            foreach: [a, b]
            do:
              cmd: echo ${item} > prep-${item}.txt
              outs:
                - prep-${item}.txt
          use:
            foreach: [a, b]
            do:
              cmd: echo use-${item} >> runs.log; cp prep-${item}.txt use-${item}.txt
              deps:
                - prep-${item}.txt
              outs:
                - use-${item}.txt
        ",
    );
    env.pipe(&["repro", "use@b"]).ok();
    assert_eq!(env.runs(), ["use-b"]);
    assert!(env.exists("prep-b.txt"));
    assert!(!env.exists("prep-a.txt"), "use@b does not need prep@a");
}
