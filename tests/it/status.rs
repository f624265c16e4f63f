//! `pipe status`: which stages would run and why, in words and as JSON; and
//! the fingerprints behind it (content hashes, the stat cache).

use crate::env::{blake3_hex, TestEnv};

/// The shape of the demo: split reads data/reviews.tsv, train (params
/// fit.C) writes the directory model/, evaluate reads both.
fn sentiment() -> TestEnv {
    TestEnv::new()
        .file("data/reviews.tsv", "good\t1\nbad\t0\n")
        .params(
            "
            fit:
              C: 100000
            ",
        )
        .pipeline(
            "
            stages:
              split:
                cmd: echo split >> runs.log; cp data/reviews.tsv data/train.tsv
                deps: [data/reviews.tsv]
                outs: [data/train.tsv]
              train:
                cmd: echo train >> runs.log; mkdir -p model; cp data/train.tsv model/weights.tsv
                deps: [data/train.tsv]
                params: [fit.C]
                outs: [model/]
              evaluate:
                cmd: echo evaluate >> runs.log; cat model/weights.tsv > metrics.txt
                deps: [model]
                outs: [metrics.txt]
            ",
        )
}

#[test]
fn lists_every_stage_that_would_run_with_its_reasons() {
    let env = sentiment();
    let out = env.pipe(&["status"]).ok();
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!("never_run", out.stdout);
    assert!(env.runs().is_empty(), "status runs nothing");
    assert!(!env.exists("pipeline.lock"), "status writes no lock");

    env.pipe(&["repro"]).ok();
    let out = env.pipe(&["status"]).ok();
    assert_eq!(out.stdout, "Everything is up to date.\n");
    assert_eq!(out.stderr, "");

    // The reasons from the issue, in words.
    env.write("params.yaml", "fit:\n  C: 1\n");
    env.write("data/reviews.tsv", "good\t1\nbad\t0\nmeh\t1\n");
    env.remove("model");
    let out = env.pipe(&["status"]).ok();
    for reason in [
        "param fit.C changed: 100000 → 1",
        "dep data/reviews.tsv modified",
        "output model missing",
        "upstream stage split will rerun",
    ] {
        assert!(
            out.stdout.contains(reason),
            "missing `{reason}`:\n{}",
            out.stdout
        );
    }
    insta::assert_snapshot!("changed", out.stdout);
    assert_eq!(env.runs(), ["split", "train", "evaluate"]);
}

#[test]
fn names_modified_and_missing_outputs_and_deps() {
    let env = sentiment();
    env.pipe(&["repro"]).ok();
    env.write("metrics.txt", "edited by hand\n");
    let out = env.pipe(&["status"]).ok();
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!("output_modified", out.stdout);

    env.pipe(&["repro"]).ok();
    env.remove("data/reviews.tsv");
    let out = env.pipe(&["status"]).ok();
    assert!(
        out.stdout.contains("dep data/reviews.tsv missing"),
        "{}",
        out.stdout
    );
}

#[test]
fn only_the_changed_part_of_the_pipeline_is_listed() {
    let env = sentiment();
    env.pipe(&["repro"]).ok();
    env.write("params.yaml", "fit:\n  C: 2\n");
    let out = env.pipe(&["status"]).ok();
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn a_restorable_stage_says_so() {
    let env = sentiment();
    env.pipe(&["repro"]).ok();
    env.remove("metrics.txt");
    let out = env.pipe(&["status"]).ok();
    assert_eq!(
        out.stdout,
        "evaluate: (will be restored from the run cache)\n    output metrics.txt missing\nup to date: split, train\n"
    );
}

#[test]
fn targets_limit_the_listing_to_their_upstream() {
    let env = sentiment();
    let out = env.pipe(&["status", "train"]).ok();
    assert!(out.stdout.contains("split:"), "{}", out.stdout);
    assert!(out.stdout.contains("train:"), "{}", out.stdout);
    assert!(!out.stdout.contains("evaluate"), "{}", out.stdout);
}

#[test]
fn json_lists_every_stage_with_verdict_and_typed_reasons() {
    let env = sentiment();
    env.pipe(&["repro"]).ok();
    env.write("params.yaml", "fit:\n  C: 1\n");
    env.write("data/reviews.tsv", "changed\t1\n");
    env.remove("model");
    let out = env.pipe(&["status", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("valid JSON");
    let stages = json.as_array().expect("a list of stages");
    let names: Vec<&str> = stages
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["split", "train", "evaluate"]);
    for s in stages {
        assert_eq!(s["verdict"], "run", "{s}");
    }
    assert_eq!(
        stages[0]["reasons"],
        serde_json::json!([{"reason": "dep_modified", "path": "data/reviews.tsv"}])
    );
    let train = &stages[1]["reasons"];
    assert!(
        train.as_array().unwrap().contains(
            &serde_json::json!({"reason": "param_changed", "key": "fit.C", "old": 100000, "new": 1})
        ),
        "{train}"
    );
    assert!(
        train
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"reason": "output_missing", "path": "model"})),
        "{train}"
    );
    assert!(
        train.as_array().unwrap().contains(
            &serde_json::json!({"reason": "upstream_stale", "stage": "split", "restored": false})
        ),
        "{train}"
    );
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn json_of_a_fresh_pipeline_says_up_to_date() {
    let env = sentiment();
    env.pipe(&["repro"]).ok();
    let out = env.pipe(&["status", "--json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for s in json.as_array().unwrap() {
        assert_eq!(s["verdict"], "up_to_date", "{s}");
        assert_eq!(s["reasons"], serde_json::json!([]), "{s}");
    }
}

#[test]
fn file_fingerprints_are_blake3_of_the_content() {
    let env = sentiment();
    env.pipe(&["repro"]).ok();
    assert_eq!(
        env.locked_dep_hash("split", "data/reviews.tsv"),
        blake3_hex(b"good\t1\nbad\t0\n")
    );
    assert_eq!(
        env.locked_out_hash("split", "data/train.tsv"),
        blake3_hex(b"good\t1\nbad\t0\n")
    );
    let lock = env.lock();
    let model = &lock["stages"]["train"]["outs"][0];
    assert_eq!(model["path"], "model");
    assert_eq!(model["nfiles"], 1);
    assert_eq!(model["size"], 13);
}

#[test]
fn touching_a_file_without_changing_it_is_not_a_change() {
    let env = sentiment();
    env.pipe(&["repro"]).ok();
    // Same bytes, new mtime (and inode).
    env.remove("data/reviews.tsv");
    env.write("data/reviews.tsv", "good\t1\nbad\t0\n");
    env.write("model/weights.tsv", "good\t1\nbad\t0\n");
    let out = env.pipe(&["status"]).ok();
    assert_eq!(out.stdout, "Everything is up to date.\n");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["split", "train", "evaluate"]);
}

#[test]
fn a_directory_changes_with_any_file_below_it() {
    let env = TestEnv::new()
        .file("corpus/a.txt", "a\n")
        .file("corpus/sub/b.txt", "b\n")
        .pipeline(
            "
            stages:
              count:
                cmd: echo count >> runs.log; ls -R corpus > n.txt
                deps: [corpus]
                outs: [n.txt]
            ",
        );
    env.pipe(&["repro"]).ok();
    let stale = |change: &dyn Fn()| {
        change();
        let out = env.pipe(&["status"]).ok();
        let is_stale = out.stdout.contains("dep corpus modified");
        env.pipe(&["repro"]).ok();
        is_stale
    };
    assert!(stale(&|| env.write("corpus/sub/b.txt", "B\n")), "edit");
    assert!(stale(&|| env.write("corpus/new.txt", "new\n")), "add");
    assert!(stale(&|| env.remove("corpus/new.txt")), "remove");
    assert!(
        stale(&|| std::fs::rename(env.path("corpus/a.txt"), env.path("corpus/c.txt")).unwrap()),
        "rename"
    );
    assert!(
        !stale(&|| env.write("corpus/c.txt", "a\n")),
        "same content is no change"
    );
}

#[test]
fn an_edit_right_after_a_run_is_seen_even_with_the_same_size() {
    // The racy-mtime case: the stat cache must not trust a file modified
    // within the timestamp granularity of its hashing.
    let env = TestEnv::new().file("in.txt", "aaaa\n").pipeline(
        "
        stages:
          copy:
            cmd: cp in.txt out.txt
            deps: [in.txt]
            outs: [out.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    env.write("in.txt", "bbbb\n");
    let out = env.pipe(&["status"]).ok();
    assert!(out.stdout.contains("dep in.txt modified"), "{}", out.stdout);
}

#[test]
fn the_stat_cache_spares_unchanged_files_from_rehashing() {
    // A file whose stat (inode, size, mtime, ctime) did not change is not
    // read again: its hash comes from the stat cache. To observe that from
    // outside, poison the stat cache's entry for an unchanged dep: if pipe
    // trusts the entry, status reports the dep as modified; if it re-hashed
    // the file, it would find it unchanged.
    let env = TestEnv::new().file("big.txt", "content\n").pipeline(
        "
        stages:
          copy:
            cmd: tr a-z A-Z < big.txt > out.txt
            deps: [big.txt]
            outs: [out.txt]
        ",
    );
    env.backdate("big.txt");
    env.pipe(&["repro"]).ok();
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );

    let stat_cache = env.path(".pipeline-cache/v1/stat-cache");
    let bytes = std::fs::read(&stat_cache).expect("repro wrote a stat cache");
    let digest = blake3::hash(b"content\n");
    let (raw, hex) = (digest.as_bytes().to_vec(), digest.to_hex().to_string());
    let poisoned_digest = blake3::hash(b"something else");
    let poisoned = if let Some(at) = find(&bytes, &raw) {
        let mut b = bytes.clone();
        b[at..at + 32].copy_from_slice(poisoned_digest.as_bytes());
        b
    } else if let Some(at) = find(&bytes, hex.as_bytes()) {
        let mut b = bytes.clone();
        b[at..at + 64].copy_from_slice(poisoned_digest.to_hex().as_bytes());
        b
    } else {
        panic!("the stat cache does not hold the hash of big.txt");
    };
    std::fs::write(&stat_cache, poisoned).unwrap();
    let out = env.pipe(&["status"]).ok();
    assert!(
        out.stdout.contains("dep big.txt modified"),
        "pipe re-read big.txt instead of trusting its stat:\n{}",
        out.stdout
    );

    // Any change of the stat (here the mtime) makes pipe hash the file again.
    env.backdate("big.txt");
    let out = env.pipe(&["status"]).ok();
    assert_eq!(out.stdout, "Everything is up to date.\n");
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn a_named_pipe_as_a_dependency_is_an_error_not_a_hang() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          s:
            cmd: cat in.fifo > out.txt
            deps: [in.fifo]
            outs: [out.txt]
        ",
    );
    let made = std::process::Command::new("mkfifo")
        .arg(env.path("in.fifo"))
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    for args in [&["status"][..], &["repro"][..]] {
        let out = env.spawn(args).wait(std::time::Duration::from_secs(10));
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(
            out.stderr
                .contains("in.fifo`: it is a named pipe (FIFO), not a file or directory"),
            "{}",
            out.stderr
        );
    }
}
