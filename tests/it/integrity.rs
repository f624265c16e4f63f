//! What protects the user's data from damage: a lock cut short or not
//! text, output options that change, a cache object that no longer
//! matches its hash, symlinks that lead out of the project, a full disk.

use crate::env::TestEnv;

/// One stage with a file output.
fn counting() -> TestEnv {
    TestEnv::new().pipeline(
        "
        stages:
          gen:
            cmd: echo gen >> runs.log; seq 1 1000 > out.txt
            outs: [out.txt]
          use:
            cmd: echo use >> runs.log; wc -l < out.txt > count.txt
            deps: [out.txt]
            outs: [count.txt]
        ",
    )
}

#[test]
fn a_lock_that_is_not_text_is_refused_with_a_hint() {
    let env = counting();
    env.pipe(&["repro"]).ok();
    let mut bytes = std::fs::read(env.path("pipeline.lock")).unwrap();
    bytes.splice(0..0, b"\xff\xfe".iter().copied());
    std::fs::write(env.path("pipeline.lock"), &bytes).unwrap();
    let out = env.pipe(&["status"]).code(2);
    let repro = env.pipe(&["repro"]).code(2);
    assert_eq!(repro.stderr, out.stderr);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr, @r"
    error: pipeline.lock:1:1: not a valid lock file: not UTF-8 text (a binary or damaged file)
      hint: restore it from git (`git checkout pipeline.lock`), or delete it: `pipe repro` then restores what the run cache holds and reruns the rest
    ");
}

#[test]
fn a_lock_cut_short_at_a_valid_yaml_point_is_refused() {
    let env = counting();
    env.pipe(&["repro"]).ok();
    let text = env.read("pipeline.lock");
    // Cut after the first stage: what is left is valid YAML.
    let cut = text.find("  use:").expect("a second stage");
    env.write("pipeline.lock", &text[..cut]);
    let out = env.pipe(&["repro"]).code(2);
    assert_eq!(env.runs(), ["gen", "use"], "nothing ran");
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr, @r"
    error: pipeline.lock is incomplete: its last line is not the end marker, so it was cut short
      hint: restore it from git (`git checkout pipeline.lock`), or delete it: `pipe repro` then restores what the run cache holds and reruns the rest
    ");
    // Deleting it, as the hint says, restores from the run cache.
    env.remove("pipeline.lock");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "0 ran, 2 restored, 0 up to date, 0 failed");
    assert_eq!(env.read("pipeline.lock"), text);
}

#[test]
fn a_lock_written_before_the_end_marker_existed_still_reads() {
    let env = counting();
    env.pipe(&["repro"]).ok();
    let text = env.read("pipeline.lock");
    let old = text
        .replace("schema: 2", "schema: 1")
        .replace(pipe_end_marker(), "");
    env.write("pipeline.lock", &old);
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "0 ran, 0 restored, 2 up to date, 0 failed");
}

fn pipe_end_marker() -> &'static str {
    "# End of pipeline.lock (a lock without this last line is incomplete).\n"
}

#[test]
fn changing_an_output_option_is_a_reason_to_rerun_and_is_recorded() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          gen:
            cmd: echo gen >> runs.log; echo hi > log.txt
            outs: [log.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    let yaml = env.read("pipeline.yaml");
    env.write(
        "pipeline.yaml",
        &yaml.replace(
            "outs: [log.txt]",
            "outs: [{log.txt: {cache: false, persist: true}}]",
        ),
    );
    let status = env.pipe(&["status"]).ok();
    insta::assert_snapshot!(status.stdout, @r"
    gen:
        output log.txt: cache changed: true → false
        output log.txt: persist changed: false → true
    ");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["gen", "gen"]);
    let lock = env.lock();
    let out = &lock["stages"]["gen"]["outs"][0];
    assert_eq!(
        (out["cache"].as_bool(), out["persist"].as_bool()),
        (Some(false), Some(true))
    );
    let out = env.pipe(&["status"]).ok();
    assert_eq!(out.stdout, "Everything is up to date.\n");
    // And back: the first run is restored from the run cache.
    env.write("pipeline.yaml", &yaml);
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "0 ran, 1 restored, 0 up to date, 0 failed");
    assert_eq!(env.read("log.txt"), "hi\n");
}
