//! Files that ask for more than a machine has are refused quickly: a
//! `matrix` or `foreach` past the stage limit, YAML alias bombs, values
//! nested thousands of levels deep. Each is refused with exit code 2 within
//! a deadline, before it can take the memory or the time it asks for.

use std::time::Duration;

use crate::env::TestEnv;

/// Long enough for a debug build on a busy machine, far shorter than what
/// the refused inputs would take.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `pipe ARGS…` (killed past [`DEADLINE`]), asserts exit code 2, empty
/// stdout and that nothing in the project changed; returns stderr.
#[track_caller]
fn refused(env: &TestEnv, args: &[&str]) -> String {
    let before = env.tree();
    let out = env.spawn(args).wait(DEADLINE).code(2);
    assert_eq!(out.stdout, "", "nothing on stdout for an error");
    assert_eq!(
        env.tree(),
        before,
        "a refused `pipe {}` wrote",
        args.join(" ")
    );
    out.stderr
}

/// A YAML flow list of the numbers 0..n.
fn numbers(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!("[{}]", items.join(", "))
}

#[test]
fn a_matrix_of_ten_million_stages_is_refused_before_any_is_made() {
    let keys: String = ["a", "b", "c", "d", "e", "f", "g"]
        .iter()
        .map(|k| format!("      {k}: {}\n", numbers(10)))
        .collect();
    let env = TestEnv::new().file(
        "pipeline.yaml",
        &format!(
            "stages:\n  prepare:\n    cmd: echo ran >> runs.log\n  grid:\n    matrix:\n{keys}    cmd: echo ${{item.a}} >> runs.log\n"
        ),
    );
    let stderr = refused(&env, &["repro"]);
    assert_eq!(refused(&env, &["status"]), stderr);
    assert_eq!(refused(&env, &["dag"]), stderr);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_foreach_past_the_stage_limit_is_refused() {
    let env = TestEnv::new()
        .params(&format!("items: {}\n", numbers(1_000_000)))
        .pipeline(
            "
            stages:
              sweep:
                foreach: ${items}
                do:
                  cmd: echo ${item} >> runs.log
            ",
        );
    let stderr = refused(&env, &["status"]);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn stages_past_the_limit_with_those_before_them_are_refused() {
    // 100,000 items are allowed on their own; after another stage they
    // make 100,001.
    let env = TestEnv::new()
        .params(&format!("items: {}\n", numbers(100_000)))
        .pipeline(
            "
            stages:
              prepare:
                cmd: echo ran >> runs.log
              sweep:
                foreach: ${items}
                do:
                  cmd: echo ${item} >> runs.log
            ",
        );
    let stderr = refused(&env, &["status"]);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

/// `a` is a list of 10,000 strings, `b` repeats it 100 times, `c` repeats
/// `b` 100 times: 100 million values from 20 KB, indented by `indent`.
fn wide_alias_bomb(indent: &str) -> String {
    format!(
        "{indent}a: &a [{}]\n{indent}b: &b [{}]\n{indent}c: [{}]\n",
        vec!["x"; 10_000].join(","),
        vec!["*a"; 100].join(","),
        vec!["*b"; 100].join(",")
    )
}

/// Aliases of aliases, nine levels of ten: a billion `lol`s from 400 bytes.
fn billion_laughs() -> String {
    let mut text = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    text
}

#[test]
fn alias_bombs_in_pipeline_yaml_are_refused_at_once() {
    let env = TestEnv::new().file(
        "pipeline.yaml",
        &format!(
            "vars:\n  - {}stages:\n  s:\n    cmd: echo ${{c}} >> runs.log\n",
            wide_alias_bomb("    ").trim_start()
        ),
    );
    let stderr = refused(&env, &["status"]);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn alias_bombs_in_params_yaml_are_refused_at_once() {
    let pipeline = "
        stages:
          s:
            cmd: echo ${c} >> runs.log
        ";
    let wide = TestEnv::new()
        .file("params.yaml", &wide_alias_bomb(""))
        .pipeline(pipeline);
    let laughs = TestEnv::new()
        .file("params.yaml", &billion_laughs())
        .pipeline(pipeline);
    let stderr = format!(
        "{}{}",
        refused(&wide, &["status"]),
        refused(&laughs, &["status"])
    );
    let _s = wide.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn params_nested_ten_thousand_levels_deep_are_refused_once() {
    // Every stage reads it (`params:`, `${…}` in cmd): one parse and one
    // error, not one per reference.
    let depth = 10_000;
    let params = format!("{}1{}\n", "{a: ".repeat(depth), "}".repeat(depth));
    let env = TestEnv::new().params(&params).pipeline(
        "
        stages:
          one:
            cmd: echo ${a.a} >> runs.log
            params: [a]
          two:
            cmd: echo ${a.a.a} >> runs.log
            params: [a.a]
          three:
            foreach: [x, y, z]
            do:
              cmd: echo ${item} ${a} >> runs.log
        ",
    );
    let stderr = refused(&env, &["status"]);
    assert_eq!(refused(&env, &["repro"]), stderr);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn a_pipeline_nested_ten_thousand_levels_deep_is_refused() {
    let depth = 10_000;
    let env = TestEnv::new().file(
        "pipeline.yaml",
        &format!(
            "stages:\n  s:\n    cmd: echo ran >> runs.log\n    meta: {}1{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    );
    let stderr = refused(&env, &["status"]);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}

#[test]
fn params_nested_a_hundred_levels_deep_are_read_rendered_and_recorded() {
    // Near the depth YAML is read to: templating, the lock's JSON and the
    // flattened keys of `pipe params diff` all walk it.
    let depth = 120;
    let params = format!("{}1{}\n", "{a: ".repeat(depth), "}".repeat(depth));
    let key = vec!["a"; depth].join(".");
    let env = TestEnv::new().params(&params).pipeline(&format!(
        "
        stages:
          deep:
            cmd: echo ${{{key}}} > out.txt
            params: [a]
            outs: [out.txt]
        "
    ));
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("out.txt"), "1\n");
    let mut recorded = &env.lock()["stages"]["deep"]["params"]["params.yaml"]["a"];
    for _ in 1..depth {
        recorded = &recorded["a"];
    }
    assert_eq!(recorded, &yaml_serde::Value::from(1));
    let env = env.git_init();
    env.write("params.yaml", &params.replace("{a: 1}", "{a: 2}"));
    let diff = env.pipe(&["params", "diff"]).ok();
    assert_eq!(env.pipe(&["status"]).ok().code, Some(0));
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(diff.stdout);
}

#[test]
fn dependencies_past_the_limit_are_refused() {
    // 1,500 stages write into `out/` and 1,500 read all of it: 2,250,000
    // stage → stage dependencies from a dozen lines.
    let env = TestEnv::new()
        .params(&format!("items: {}\n", numbers(1500)))
        .pipeline(
            "
            stages:
              write:
                foreach: ${items}
                do:
                  cmd: echo ${item} > out/${item}.txt
                  outs: [\"out/${item}.txt\"]
              read:
                foreach: ${items}
                do:
                  cmd: cat out/* > read/${item}.txt
                  deps: [out]
                  outs: [\"read/${item}.txt\"]
            ",
        );
    let stderr = refused(&env, &["status"]);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(stderr);
}
