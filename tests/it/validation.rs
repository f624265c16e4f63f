//! A pipeline that is wrong is refused before anything happens: a clear
//! error (with file:line:column where the problem is in a file), exit code
//! 2, no command run and no file written.

use crate::env::TestEnv;

/// Runs `pipe ARGS…`, asserts exit code 2, empty stdout and that nothing in
/// the project changed (no command ran: they all append to runs.log, and
/// no lock, cache or output was written). Returns stderr.
#[track_caller]
fn refused(env: &TestEnv, args: &[&str]) -> String {
    let (stderr, written) = refusal(env, args);
    assert!(
        written.is_empty(),
        "`pipe {}` was refused but wrote {written:?}",
        args.join(" ")
    );
    stderr
}

/// Runs `pipe ARGS…`, asserts exit code 2 and empty stdout; returns stderr
/// and the paths that changed in the project.
#[track_caller]
fn refusal(env: &TestEnv, args: &[&str]) -> (String, Vec<String>) {
    let before = env.tree();
    let out = env.pipe(args).code(2);
    assert_eq!(out.stdout, "", "nothing on stdout for an error");
    assert!(
        out.stderr.starts_with("error: "),
        "errors start with `error: `:\n{}",
        out.stderr
    );
    let after = env.tree();
    let mut written: Vec<String> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .map(|(p, _)| p.clone())
        .collect();
    written.extend(before.keys().filter(|p| !after.contains_key(*p)).cloned());
    (out.stderr, written)
}

/// Like [`refused`] for `repro`, `status` and `dag` alike; returns the
/// stderr of `repro`, after checking the others print the same error.
#[track_caller]
fn refused_by_every_command(env: &TestEnv) -> String {
    let repro = refused(env, &["repro"]);
    assert_eq!(refused(env, &["repro", "--dry"]), repro);
    assert_eq!(refused(env, &["status"]), repro);
    assert_eq!(refused(env, &["dag"]), repro);
    repro
}

#[test]
fn yaml_syntax_error_is_located() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            outs: [a.txt
        ",
    );
    let stderr = refused_by_every_command(&env);
    assert!(stderr.starts_with("error: pipeline.yaml:"), "{stderr}");
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn yaml_syntax_error_in_params_is_located_in_params_yaml() {
    let env = TestEnv::new().params("fit:\n  C: [1, 2\n").pipeline(
        "
            stages:
              a:
                cmd: echo ran >> runs.log
                params: [fit.C]
            ",
    );
    let stderr = refused_by_every_command(&env);
    assert!(stderr.starts_with("error: params.yaml:3:"), "{stderr}");
}

#[test]
fn unknown_stage_field_suggests_the_right_one() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            outz: [a.txt]
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn misspelt_fields_everywhere_are_located_with_a_suggestion() {
    let cases = [
        (
            "top level",
            "stagess:\n  a:\n    cmd: echo ran >> runs.log\n",
            "pipeline.yaml:1:1:",
            "did you mean `stages`?",
        ),
        (
            "a foreach body",
            "stages:\n  a:\n    foreach: [x, y]\n    do:\n      cmd: echo ran >> runs.log\n      depz: [in.txt]\n",
            "pipeline.yaml:6:7:",
            "did you mean `deps`?",
        ),
        (
            "an output option",
            "stages:\n  a:\n    cmd: echo ran >> runs.log\n    outs:\n      - a.txt:\n          cahce: false\n",
            "pipeline.yaml:6:11:",
            "did you mean `cache`?",
        ),
        (
            "always_changed",
            "stages:\n  a:\n    cmd: echo ran >> runs.log\n    always_change: true\n",
            "pipeline.yaml:4:5:",
            "did you mean `always_changed`?",
        ),
        (
            "a built-in",
            "stages:\n  a:\n    uses: synht\n    with: {out: a.tsv}\n",
            "pipeline.yaml:3:11:",
            "did you mean `synth`?",
        ),
        (
            "a built-in's argument",
            "stages:\n  a:\n    uses: synth\n    with: {outt: a.tsv}\n",
            "pipeline.yaml:4:12:",
            "did you mean `out`?",
        ),
    ];
    for (what, yaml, location, hint) in cases {
        let env = TestEnv::new().file("pipeline.yaml", yaml);
        let stderr = refused(&env, &["repro"]);
        assert!(
            stderr.starts_with(&format!("error: {location}")),
            "{what}: expected the error at {location}:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("hint: {hint}")),
            "{what}: expected `{hint}`:\n{stderr}"
        );
    }
}

#[test]
fn wrong_value_types_are_located() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            frozen: maybe
        ",
    );
    let stderr = refused(&env, &["repro"]);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_cycle_is_printed() {
    // a reads b.txt, b reads c.txt, c reads a.txt: data flows a → c → b → a.
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            deps: [b.txt]
            outs: [a.txt]
          b:
            cmd: echo ran >> runs.log
            deps: [c.txt]
            outs: [b.txt]
          c:
            cmd: echo ran >> runs.log
            deps: [a.txt]
            outs: [c.txt]
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_stage_reading_its_own_output_is_refused() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            deps: [a.txt]
            outs: [a.txt]
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn two_stages_writing_the_same_path_are_refused() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            outs: [out.txt]
          b:
            cmd: echo ran >> runs.log
            outs: [out.txt]
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn an_output_inside_another_stages_output_is_refused() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            outs: [model/]
          b:
            cmd: echo ran >> runs.log
            outs: [model/extra.bin]
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_missing_dep_that_no_stage_produces_is_refused_by_repro() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            deps: [data/input.csv]
            outs: [a.txt]
        ",
    );
    let (stderr, written) = refusal(&env, &["repro"]);
    assert_eq!(refused(&env, &["repro", "--dry"]), stderr);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
    assert!(written.is_empty(), "a refused repro wrote {written:?}");
}

#[test]
fn a_missing_dep_of_an_unselected_producer_is_refused_with_single_item() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          make:
            cmd: echo ran >> runs.log; echo x > x.txt
            outs: [x.txt]
          use:
            cmd: echo ran >> runs.log; cp x.txt y.txt
            deps: [x.txt]
            outs: [y.txt]
        ",
    );
    let (stderr, written) = refusal(&env, &["repro", "-s", "use"]);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
    assert!(written.is_empty(), "a refused repro wrote {written:?}");
}

#[test]
fn param_keys_missing_from_params_yaml_are_refused() {
    let env = TestEnv::new()
        .params(
            "
            fit:
              C: 1
            ",
        )
        .pipeline(
            "
            stages:
              a:
                cmd: echo ran >> runs.log
                params: [fit.D]
            ",
        );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn params_from_another_file_must_exist_there() {
    let env = TestEnv::new().file("other.yaml", "lr2: 0.1\n").pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            params:
              - other.yaml: [lr]
          b:
            cmd: echo ran >> runs.log
            params:
              - missing.yaml: [x]
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_param_without_any_params_yaml_is_refused() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            params: [fit.C]
        ",
    );
    let stderr = refused_by_every_command(&env);
    assert!(stderr.contains("params.yaml"), "{stderr}");
}

#[test]
fn absolute_paths_are_refused() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            deps: [/etc/hostname]
            outs: [a.txt]
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn paths_escaping_the_project_are_refused() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          up:
            cmd: echo ran >> runs.log
            outs: [../a.txt]
          sneaky:
            cmd: echo ran >> runs.log
            deps: [data/../../b.txt]
          from_wdir:
            wdir: sub
            cmd: echo ran >> runs.log
            outs: [../../c.txt]
          bad_wdir:
            wdir: ..
            cmd: echo ran >> runs.log
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn paths_through_a_symlink_out_of_the_project_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    let outside = outside.path().canonicalize().unwrap();
    std::fs::write(outside.join("data.csv"), "x\n").unwrap();
    let env = TestEnv::new().pipeline(
        "
        stages:
          reads:
            cmd: echo ran >> runs.log
            deps: [ext/data.csv]
          writes:
            cmd: echo ran >> runs.log
            outs: [ext/out.csv]
        ",
    );
    std::os::unix::fs::symlink(&outside, env.path("ext")).unwrap();
    let stderr = refused_by_every_command(&env);
    assert!(!outside.join("out.csv").exists());
    let mut settings = env.settings();
    settings.add_filter(&outside.display().to_string(), "[OUTSIDE]");
    let _s = settings.bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_symlink_inside_the_project_is_fine() {
    let env = TestEnv::new().file("real/data.csv", "x\n").pipeline(
        "
            stages:
              reads:
                cmd: cat link/data.csv > out.csv
                deps: [link/data.csv]
                outs: [out.csv]
            ",
    );
    std::os::unix::fs::symlink(env.path("real"), env.path("link")).unwrap();
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("out.csv"), "x\n");
}

#[test]
fn an_empty_pipeline_file_is_refused() {
    for text in ["", "\n\n", "# only a comment\n"] {
        let env = TestEnv::new().file("pipeline.yaml", text);
        let stderr = refused_by_every_command(&env);
        assert!(
            stderr.starts_with("error: pipeline.yaml: the pipeline file is empty"),
            "{text:?}: {stderr}"
        );
    }
    let env = TestEnv::new().file("pipeline.yaml", "");
    let stderr = refused(&env, &["repro"]);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_pipeline_without_stages_is_refused() {
    for text in ["stages: {}\n", "vars:\n  - x: 1\n"] {
        let env = TestEnv::new().file("pipeline.yaml", text);
        let stderr = refused_by_every_command(&env);
        assert!(
            stderr.starts_with("error: pipeline.yaml: no stages are declared"),
            "{text:?}: {stderr}"
        );
    }
}

#[test]
fn a_missing_pipeline_file_is_refused() {
    let env = TestEnv::new().file("data.csv", "x\n");
    let stderr = refused(&env, &["repro"]);
    for args in [&["status"][..], &["dag"], &["checkout"]] {
        assert_eq!(refused(&env, args), stderr, "pipe {args:?}");
    }
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_stage_without_cmd_or_uses_is_refused() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          nothing:
            outs: [a.txt]
          both:
            cmd: echo ran >> runs.log
            uses: synth
            with: {out: b.tsv}
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_stage_name_declared_twice_is_refused() {
    // YAML requires unique keys; silently keeping one of the two stages
    // would drop the other from the pipeline.
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo first >> runs.log
            outs: [a.txt]
          a:
            cmd: echo second >> runs.log
            outs: [b.txt]
        ",
    );
    let stderr = refused(&env, &["repro"]);
    assert!(stderr.contains("pipeline.yaml:"), "{stderr}");
    assert!(stderr.contains("`a`"), "{stderr}");
    assert!(env.runs().is_empty(), "ran: {:?}", env.runs());
}

#[test]
fn an_undefined_template_variable_is_refused() {
    let env = TestEnv::new().params("fit: {C: 1}\n").pipeline(
        "
        stages:
          a:
            cmd: echo ${fit.D} >> runs.log
        ",
    );
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn every_problem_is_reported_in_one_go() {
    let env = TestEnv::new().params("fit: {C: 1}\n").pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
            deps: [/abs/path]
            outs: [../up.txt]
          b:
            cmd: echo ran >> runs.log
            params: [nokey]
        ",
    );
    let stderr = refused_by_every_command(&env);
    assert_eq!(stderr.matches("error: ").count(), 3, "{stderr}");
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn errors_point_at_the_line_of_the_offending_path() {
    // Commands usually mention the paths they read and write; the error
    // must point at the `deps:`/`outs:` entry, not at the command line.
    let cases = [
        (
            "two writers",
            "stages:\n  a:\n    cmd: echo a > out.txt\n    outs: [out.txt]\n  b:\n    cmd: echo b > out.txt\n    outs: [out.txt]\n",
            &["repro"][..],
            "error: pipeline.yaml:7:12:",
        ),
        (
            "nested output",
            "stages:\n  a:\n    cmd: mkdir -p d && echo a > d/x\n    outs: [d]\n  b:\n    cmd: echo b > d/y\n    outs: [d/y]\n",
            &["repro"],
            "error: pipeline.yaml:7:12:",
        ),
        (
            "own output as dep",
            "stages:\n  a:\n    cmd: cat a.txt > a.txt\n    deps: [a.txt]\n    outs: [a.txt]\n",
            &["repro"],
            "error: pipeline.yaml:4:12:",
        ),
        (
            "missing dep",
            "stages:\n  a:\n    cmd: cat in.txt > a.txt\n    deps: [in.txt]\n    outs: [a.txt]\n",
            &["repro"],
            "error: pipeline.yaml:4:12:",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, yaml, args, location) in cases {
        let env = TestEnv::new().file("pipeline.yaml", yaml);
        let out = env.pipe(args).code(2);
        if !out.stderr.starts_with(location) {
            wrong.push(format!("{what}: expected {location}\n{}", out.stderr));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unknown_targets_are_refused_with_a_suggestion() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          train:
            cmd: echo ran >> runs.log
        ",
    );
    let stderr = refused(&env, &["status", "trian"]);
    for args in [
        &["repro", "--dry", "trian"][..],
        &["dag", "trian"],
        &["checkout", "trian"],
    ] {
        assert_eq!(refused(&env, args), stderr, "pipe {args:?}");
    }
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
    let (repro, written) = refusal(&env, &["repro", "trian"]);
    assert_eq!(repro, stderr);
    assert!(written.is_empty(), "a refused repro wrote {written:?}");
}

#[test]
fn bad_command_line_usage_exits_2() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo ran >> runs.log
        ",
    );
    refused(&env, &["repro", "-j", "0"]);
    refused(&env, &["repro", "--downstream", "-s", "a"]);
    refused(&env, &["dag", "--dot", "--json"]);
    refused(&env, &["repro", "--no-such-flag"]);
}

#[test]
fn a_bad_link_mode_is_refused() {
    let env = TestEnv::new()
        .file("pipe.toml", "[cache]\nlink = \"magic\"\n")
        .pipeline(
            "
            stages:
              a:
                cmd: echo ran >> runs.log
            ",
        );
    let stderr = refused(&env, &["repro"]);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn outputs_that_are_git_pipe_or_dvc_files_are_refused() {
    // pipe deletes outputs before a stage runs: `outs: [.git]` would delete
    // the repository. Deps on the same files stay allowed (stage `reads`).
    let env = TestEnv::new()
        .file(".gitignore", "/runs.log\n")
        .pipeline(
            "
            stages:
              reads:
                cmd: echo ran >> runs.log
                deps: [.git/HEAD, pipeline.yaml, .gitignore]
              repo:
                cmd: echo ran >> runs.log
                outs: [.git]
              hook:
                cmd: echo ran >> runs.log
                outs: [.git/hooks/pre-commit]
              nested_repo:
                cmd: echo ran >> runs.log
                outs: [vendor/lib/.git/config]
              cache:
                cmd: echo ran >> runs.log
                outs: [.pipeline-cache/v1]
              itself:
                cmd: echo ran >> runs.log
                metrics: [pipeline.yaml]
              lock_from_wdir:
                wdir: sub
                cmd: echo ran >> runs.log
                plots: [../pipeline.lock]
              config:
                cmd: echo ran >> runs.log
                outs:
                  - pipe.toml: {persist: true, cache: false}
                  - pipe.local.toml
              ignore:
                cmd: echo ran >> runs.log
                outs: [data/.gitignore, .dvcignore]
              dvc:
                cmd: echo ran >> runs.log
                outs: [dvc.yaml, dvc.lock, .dvc/config]
              builtin:
                uses: synth
                with: {out: .git/synth.tsv}
            ",
        )
        .git_init();
    let stderr = refused_by_every_command(&env);
    assert!(env.exists(".git/HEAD"));
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_stage_may_write_params_files_and_files_named_like_pipes_in_subdirectories() {
    let env = TestEnv::new().file(".gitignore", "/runs.log\n").pipeline(
        "
        stages:
          configure:
            cmd: \"mkdir -p sub && echo 'seed: 1' > params.yaml && echo 'stages: {}' > sub/pipeline.yaml && echo ran >> runs.log\"
            deps: [.gitignore, pipeline.yaml]
            outs: [params.yaml, sub/pipeline.yaml]
        ",
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["ran"]);
    assert_eq!(env.read("params.yaml"), "seed: 1\n");
    let status = env.pipe(&["status"]).ok();
    assert_eq!(status.stdout, "Everything is up to date.\n");
}

#[test]
fn paths_too_long_for_the_system_are_refused_where_they_are_written() {
    // A 300-byte name and a 4,201-byte path could not be hashed or
    // written: refused at load (exit 2), not at hashing time (exit 1).
    let long_name = format!("data/{}.csv", "n".repeat(300));
    let long_path = format!("{}x", "d/".repeat(2100));
    let long_wdir = "w".repeat(256);
    let env = TestEnv::new().pipeline(&format!(
        "
        stages:
          long_name:
            cmd: echo ran >> runs.log
            deps: [{long_name}]
          long_path:
            cmd: echo ran >> runs.log
            outs: [{long_path}]
          long_wdir:
            wdir: {long_wdir}
            cmd: echo ran >> runs.log
          long_params_file:
            cmd: echo ran >> runs.log
            params:
              - {long_wdir}.yaml: [x]
        "
    ));
    let stderr = refused_by_every_command(&env);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}
