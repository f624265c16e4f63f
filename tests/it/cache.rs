//! The content-addressed cache (`.pipeline-cache/v1/`), the ways outputs are
//! linked back, `pipe checkout`, and `pipeline.lock`.

use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::PermissionsExt;

use crate::env::{blake3_hex, dedent, TestEnv};

/// One file output, one directory output, one uncached metric.
fn outputs() -> TestEnv {
    TestEnv::new().pipeline(
        "
        stages:
          make:
            cmd: >-
              echo make >> runs.log;
              echo result > result.txt;
              mkdir -p model/sub && echo w > model/w.bin && echo v > model/sub/v.bin;
              echo 0.9 > metrics.json
            outs: [result.txt, model/]
            metrics:
              - metrics.json:
                  cache: false
        ",
    )
}

/// Every object in the cache, as (file name relative to objects/, bytes).
fn objects(env: &TestEnv) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let dir = env.path(".pipeline-cache/v1/objects");
    for prefix in std::fs::read_dir(&dir).expect("objects/ exists") {
        let prefix = prefix.unwrap();
        for obj in std::fs::read_dir(prefix.path()).unwrap() {
            let obj = obj.unwrap();
            out.push((
                format!(
                    "{}/{}",
                    prefix.file_name().to_string_lossy(),
                    obj.file_name().to_string_lossy()
                ),
                std::fs::read(obj.path()).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn outputs_are_stored_by_content_hash_read_only() {
    let env = outputs();
    env.pipe(&["repro"]).ok();
    let hash = env.locked_out_hash("make", "result.txt");
    assert_eq!(hash, blake3_hex(b"result\n"));
    let object = env.object(&hash);
    assert_eq!(std::fs::read(&object).unwrap(), b"result\n");
    let mode = std::fs::metadata(&object).unwrap().permissions().mode();
    assert_eq!(mode & 0o222, 0, "cache objects are read-only: {mode:o}");

    // Every file of the directory output is an object too.
    for content in [&b"w\n"[..], b"v\n"] {
        assert!(
            env.object(&blake3_hex(content)).is_file(),
            "no object for {content:?}"
        );
    }
    // Every object is named by the BLAKE3 of its content (a directory's
    // manifest carries a `.dir` suffix).
    for (name, bytes) in objects(&env) {
        let (hash, dir) = match name.strip_suffix(".dir") {
            Some(h) => (h.replace('/', ""), true),
            None => (name.replace('/', ""), false),
        };
        assert_eq!(blake3_hex(&bytes), hash, "object {name} (dir: {dir})");
    }
    // The uncached metric is not in the cache.
    assert!(!env.object(&blake3_hex(b"0.9\n")).exists());
    // And the workspace copy is a normal, writable file.
    let meta = std::fs::metadata(env.path("result.txt")).unwrap();
    assert_ne!(meta.permissions().mode() & 0o200, 0);
}

#[test]
fn the_directory_output_is_recorded_with_its_file_count() {
    let env = outputs();
    env.pipe(&["repro"]).ok();
    let lock = env.lock();
    let model = lock["stages"]["make"]["outs"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "model")
        .expect("model in the lock")
        .clone();
    assert_eq!(model["nfiles"], 2);
    assert_eq!(model["size"], 4);
    let hash = model["blake3"].as_str().unwrap();
    let manifest = env.path(&format!(
        ".pipeline-cache/v1/objects/{}/{}.dir",
        &hash[..2],
        &hash[2..]
    ));
    assert!(manifest.is_file(), "a manifest object for model/");
}

#[test]
fn editing_a_copied_output_never_touches_the_cache() {
    let env = outputs();
    env.pipe(&["repro"]).ok();
    let object = env.object(&blake3_hex(b"result\n"));
    env.write("result.txt", "edited\n");
    assert_eq!(std::fs::read(&object).unwrap(), b"result\n");
    assert_ne!(
        std::fs::metadata(env.path("result.txt")).unwrap().ino(),
        std::fs::metadata(&object).unwrap().ino()
    );
}

#[test]
fn hardlink_mode_from_pipe_toml_links_outputs_to_the_objects() {
    let env = outputs().file("pipe.toml", "[cache]\nlink = \"hardlink\"\n");
    env.pipe(&["repro"]).ok();
    for (path, content) in [
        ("result.txt", &b"result\n"[..]),
        ("model/sub/v.bin", b"v\n"),
    ] {
        let object = env.object(&blake3_hex(content));
        assert_eq!(
            std::fs::metadata(env.path(path)).unwrap().ino(),
            std::fs::metadata(&object).unwrap().ino(),
            "{path} is a hard link to its object"
        );
    }
    // Restoring links too.
    env.remove("model");
    env.pipe(&["checkout"]).ok();
    let object = env.object(&blake3_hex(b"w\n"));
    assert_eq!(
        std::fs::metadata(env.path("model/w.bin")).unwrap().ino(),
        std::fs::metadata(&object).unwrap().ino()
    );
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
}

#[test]
fn symlink_mode_from_the_environment_overrides_pipe_toml() {
    let env = outputs()
        .file("pipe.toml", "[cache]\nlink = \"hardlink\"\n")
        .env("PIPE_CACHE_LINK", "symlink");
    env.pipe(&["repro"]).ok();
    let target = std::fs::read_link(env.path("result.txt")).expect("result.txt is a symlink");
    assert_eq!(
        target.canonicalize().unwrap(),
        env.object(&blake3_hex(b"result\n")).canonicalize().unwrap()
    );
    assert_eq!(env.read("model/sub/v.bin"), "v\n");
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    // The uncached metric stays a plain file.
    assert!(!std::fs::symlink_metadata(env.path("metrics.json"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_bad_link_mode_in_the_environment_is_refused() {
    let env = outputs().env("PIPE_CACHE_LINK", "teleport");
    let out = env.pipe(&["repro"]).code(2);
    assert!(out.stderr.contains("teleport"), "{}", out.stderr);
    assert!(env.runs().is_empty());
}

#[test]
fn a_persistent_output_never_writes_through_to_a_cache_object() {
    // With hardlinks (or symlinks) the workspace file *is* the object; a
    // stage that appends to its persistent output must not change the
    // object stored under the old content's hash.
    for mode in ["hardlink", "symlink"] {
        let env = TestEnv::new().env("PIPE_CACHE_LINK", mode).pipeline(
            "
            stages:
              grow:
                cmd: echo line >> log.txt
                always_changed: true
                outs:
                  - log.txt:
                      persist: true
            ",
        );
        env.pipe(&["repro"]).ok();
        env.pipe(&["repro"]).ok();
        assert_eq!(env.read("log.txt"), "line\nline\n", "{mode}");
        let first = env.object(&blake3_hex(b"line\n"));
        assert_eq!(
            std::fs::read(&first).unwrap(),
            b"line\n",
            "{mode}: the object for `line\\n` was modified in place"
        );
    }
}

#[test]
fn checkout_restores_deleted_outputs_without_running() {
    let env = outputs();
    env.pipe(&["repro"]).ok();
    env.remove("result.txt");
    env.remove("model");
    let out = env.pipe(&["checkout"]).ok();
    assert_eq!(out.stdout, "restored result.txt\nrestored model\n");
    assert_eq!(env.runs(), ["make"], "nothing ran");
    assert_eq!(env.read("result.txt"), "result\n");
    assert_eq!(env.read("model/sub/v.bin"), "v\n");
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    let out = env.pipe(&["checkout"]).ok();
    assert_eq!(out.stdout, "Every output is in place.\n");
}

#[test]
fn checkout_keeps_modified_outputs_unless_forced() {
    let env = outputs();
    env.pipe(&["repro"]).ok();
    env.write("result.txt", "my edit\n");
    let out = env.pipe(&["checkout"]).code(1);
    assert_eq!(
        out.stdout,
        "kept result.txt: it was edited, and the cache has no copy of this version (record it with `pipe commit make`, or replace it with `pipe checkout -f make`)\n"
    );
    assert_eq!(env.read("result.txt"), "my edit\n");
    let out = env.pipe(&["checkout", "--force"]).ok();
    assert_eq!(out.stdout, "restored result.txt\n");
    assert_eq!(env.read("result.txt"), "result\n");
}

#[test]
fn checkout_says_what_the_cache_no_longer_has() {
    let env = outputs();
    env.pipe(&["repro"]).ok();
    env.remove("result.txt");
    let object = env.object(&blake3_hex(b"result\n"));
    std::fs::remove_file(&object).unwrap();
    let out = env.pipe(&["checkout"]).code(1);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn checkout_reports_a_missing_uncached_output() {
    // metrics.json has `cache: false`: checkout cannot bring it back, and
    // must not claim that every output is in place.
    let env = outputs();
    env.pipe(&["repro"]).ok();
    env.remove("metrics.json");
    let out = env.pipe(&["checkout"]).code(1);
    assert_ne!(
        out.stdout, "Every output is in place.\n",
        "metrics.json is missing"
    );
    assert!(out.stdout.contains("metrics.json"), "{}", out.stdout);
}

#[test]
fn checkout_of_one_stage_leaves_the_others() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo a > a.txt
            outs: [a.txt]
          b:
            cmd: echo b > b.txt
            outs: [b.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    env.remove("a.txt");
    env.remove("b.txt");
    let out = env.pipe(&["checkout", "b"]).ok();
    assert_eq!(out.stdout, "restored b.txt\n");
    assert!(!env.exists("a.txt"));
}

#[test]
fn the_run_cache_records_each_fingerprint() {
    let env = outputs();
    env.pipe(&["repro"]).ok();
    let runs = env.path(".pipeline-cache/v1/runs");
    let count = walkdir_files(&runs);
    // `make` has an uncached output, so it cannot be restored from the
    // run cache: nothing to record.
    assert_eq!(count, 0);

    let env = TestEnv::new().pipeline(
        "
        stages:
          a:
            cmd: echo a > a.txt
            outs: [a.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(walkdir_files(&env.path(".pipeline-cache/v1/runs")), 1);
}

fn walkdir_files(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                walkdir_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn the_lock_is_deterministic_yaml_with_relative_paths() {
    let yaml = dedent(
        "
        stages:
          z_last:
            wdir: sub
            cmd: cat ../in.txt > out.txt
            deps: [../in.txt]
            outs: [out.txt]
          a_first:
            cmd: echo a > a.txt
            params: [b.y, a]
            outs: [a.txt]
        ",
    );
    let make = || {
        TestEnv::new()
            .file("in.txt", "in\n")
            .file("sub/.keep", "")
            .params("a: 1\nb: {y: 2, x: 3}\n")
            .file("pipeline.yaml", &yaml)
    };
    let one = make();
    let two = make();
    one.pipe(&["repro"]).ok();
    two.pipe(&["repro", "-j", "1"]).ok();
    let text = one.read("pipeline.lock");
    assert_eq!(text, two.read("pipeline.lock"), "same inputs, same bytes");
    assert!(
        !text.contains(&one.root().display().to_string()),
        "no absolute path in the lock:\n{text}"
    );
    // Running again rewrites nothing.
    one.pipe(&["repro", "-f"]).ok();
    assert_eq!(one.read("pipeline.lock"), text);
    let lock = one.lock();
    assert_eq!(lock["schema"], 2);
    assert_eq!(lock["stages"]["z_last"]["deps"][0]["path"], "in.txt");
    assert_eq!(lock["stages"]["z_last"]["outs"][0]["path"], "sub/out.txt");
    let _s = one.settings().bind_to_scope();
    insta::assert_snapshot!(text);
}

#[test]
fn the_lock_is_replaced_whole_and_leaves_no_temp_files() {
    let env = outputs();
    env.pipe(&["repro"]).ok();
    env.pipe(&["repro", "-f"]).ok();
    let stray: Vec<String> = env
        .tree()
        .into_keys()
        .filter(|p| !p.contains('/') && p.contains("pipeline.lock") && p != "pipeline.lock")
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn copy_mode_gives_independent_files() {
    let env = outputs().env("PIPE_CACHE_LINK", "copy");
    env.pipe(&["repro"]).ok();
    let object = env.object(&blake3_hex(b"result\n"));
    let meta = std::fs::symlink_metadata(env.path("result.txt")).unwrap();
    assert!(meta.file_type().is_file());
    assert_ne!(meta.ino(), std::fs::metadata(&object).unwrap().ino());
    env.remove("model");
    env.pipe(&["checkout"]).ok();
    assert_eq!(env.read("model/w.bin"), "w\n");
}

#[test]
fn a_stage_removed_from_the_pipeline_leaves_the_lock() {
    // The lock describes the pipeline as it is: the same pipeline.yaml and
    // results give the same pipeline.lock, whatever was declared before.
    let env = TestEnv::new().pipeline(
        "
        stages:
          keep:
            cmd: echo keep > keep.txt
            outs: [keep.txt]
          drop:
            cmd: echo drop > drop.txt
            outs: [drop.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    assert_eq!(env.locked_stages(), ["drop", "keep"]);
    let yaml = env.read("pipeline.yaml");
    let yaml = &yaml[..yaml.find("  drop:").unwrap()];
    env.write("pipeline.yaml", yaml);
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "0 ran, 0 restored, 1 up to date, 0 failed");
    assert_eq!(env.locked_stages(), ["keep"]);
}

#[test]
fn a_damaged_lock_is_refused_with_a_hint() {
    let env = outputs().file("pipeline.lock", "schema: 1\nstages: [oops\n");
    let before = env.tree();
    let out = env.pipe(&["repro"]).code(2);
    assert!(env.runs().is_empty());
    assert_eq!(env.pipe(&["status"]).code(2).stderr, out.stderr);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr);
    let written: Vec<_> = env
        .tree()
        .into_keys()
        .filter(|p| !before.contains_key(p))
        .collect();
    assert!(written.is_empty(), "a refused repro wrote {written:?}");
}

#[test]
fn a_moved_project_stays_up_to_date() {
    // Fingerprints hold no absolute paths and no mtimes: a copy of the
    // project elsewhere (new paths, new inodes, new mtimes) is up to date.
    let env = outputs();
    env.pipe(&["repro"]).ok();
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("moved");
    let status = std::process::Command::new("cp")
        .arg("-R")
        .arg(env.root())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let out = std::process::Command::new(crate::env::PIPE)
        .args(["status"])
        .current_dir(&copy)
        .env_remove("PIPE_CACHE_LINK")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Everything is up to date.\n"
    );
}
