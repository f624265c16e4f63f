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

/// Flips one byte of a (read-only) cache object, as a disk error would.
fn damage(object: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(object, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(object).unwrap();
    bytes[10] ^= 1;
    std::fs::write(object, bytes).unwrap();
}

#[test]
fn a_damaged_object_is_never_restored_and_the_stage_runs_instead() {
    let env = counting();
    env.pipe(&["repro"]).ok();
    let good = env.read("out.txt");
    let hash = env.locked_out_hash("gen", "out.txt");
    damage(&env.object(&hash));
    env.remove("out.txt");

    let out = env.pipe(&["checkout"]).code(1);
    assert!(
        !env.exists("out.txt"),
        "nothing damaged reaches the workspace"
    );
    insta::assert_snapshot!(out.stdout, @"cannot restore out.txt: the cache's copy is damaged and was moved aside (run `pipe repro gen`)");

    // The object was set aside: repro runs the stage (a restore from the
    // run cache is impossible) and stores a good copy.
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 1 up to date, 0 failed");
    assert_eq!(env.read("out.txt"), good);
    assert_eq!(
        env.runs(),
        ["gen", "use", "gen"],
        "use ran on the good bytes only"
    );
    assert_eq!(env.locked_out_hash("gen", "out.txt"), hash);
    env.remove("out.txt");
    env.pipe(&["checkout"]).ok();
    assert_eq!(env.read("out.txt"), good);
}

#[test]
fn a_run_cache_hit_on_a_damaged_object_runs_the_stage_and_says_why() {
    let env = counting();
    env.pipe(&["repro"]).ok();
    let hash = env.locked_out_hash("gen", "out.txt");
    damage(&env.object(&hash));
    env.remove("pipeline.lock");
    env.remove("out.txt");
    let out = env.pipe(&["repro", "gen"]).ok();
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr, @r"
    Restoring stage gen: never run
    warning: stage gen: cache: the stored copy of `out.txt` is damaged (its bytes no longer match their hash [HASH]); it was moved aside to .pipeline-cache/v1/quarantine/[HASH]; running the stage instead
    Running stage gen: never run
    ✓ gen  ran  [ELAPSED]
    1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
    ");
    assert_eq!(env.read("out.txt").lines().count(), 1000);
}

#[test]
fn a_forced_run_replaces_a_damaged_object() {
    let env = counting();
    env.pipe(&["repro"]).ok();
    let hash = env.locked_out_hash("gen", "out.txt");
    damage(&env.object(&hash));
    env.pipe(&["repro", "-f", "gen"]).ok();
    assert_eq!(
        blake3::hash(&std::fs::read(env.object(&hash)).unwrap())
            .to_hex()
            .to_string(),
        hash,
        "the object is good again"
    );
    let out = env.pipe(&["cache", "verify"]).ok();
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stdout, @"Checked 2 objects (3.9 kB) and 0 directory manifests in [ELAPSED]: all intact.");
}

#[test]
fn cache_verify_names_the_damaged_outputs_and_sets_them_aside() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          gen:
            cmd: mkdir -p model && seq 1 100 > model/a.txt && seq 1 200 > model/b.txt && seq 1 300 > out.txt
            outs: [model/, out.txt]
        ",
    );
    env.pipe(&["repro"]).ok();
    let b = blake3::hash(&std::fs::read(env.path("model/b.txt")).unwrap())
        .to_hex()
        .to_string();
    damage(&env.object(&b));
    let out = env.pipe(&["cache", "verify"]).code(1);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(format!("{}{}", out.stdout, out.stderr), @r"
    Checked 3 objects (2.1 kB) and 1 directory manifests in [ELAPSED]: 1 damaged.
    damaged object 4942a10e54a2… (gen: model/b.txt): moved aside to .pipeline-cache/v1/quarantine/[HASH]
    error: the cache held damaged objects; they were moved aside and will not be used
      hint: run `pipe repro` to compute the damaged outputs again (`pipe repro -f STAGE` for one that is up to date in the workspace)
    ");
    let json = env.pipe(&["cache", "verify", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["objects"], 2);
    assert_eq!(report["damaged"], serde_json::json!([]));
}

/// A directory beside the project (in the same parent) holding data that
/// pipe must never touch; `name()` is its file name.
struct Victim(tempfile::TempDir);

impl Victim {
    fn new(env: &TestEnv) -> Victim {
        let dir = tempfile::Builder::new()
            .prefix("victim.")
            .tempdir_in(env.root().parent().unwrap())
            .unwrap();
        std::fs::write(dir.path().join("data.txt"), "precious\n").unwrap();
        std::fs::write(dir.path().join("out.txt"), "also precious\n").unwrap();
        Victim(dir)
    }

    fn name(&self) -> String {
        self.0
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    /// Every file with its bytes and inode: a link replacing one shows.
    fn state(&self) -> Vec<(String, String, u64)> {
        use std::os::unix::fs::MetadataExt;
        let mut out: Vec<_> = std::fs::read_dir(self.0.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let meta = std::fs::symlink_metadata(e.path()).unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap_or_default(),
                    meta.ino() * 1000 + meta.nlink(),
                )
            })
            .collect();
        out.sort();
        out
    }
}

#[test]
fn a_symlink_out_of_the_project_inside_an_output_directory_is_kept_as_a_link() {
    for mode in ["reflink", "copy", "hardlink", "symlink"] {
        let env = TestEnv::new().env("PIPE_CACHE_LINK", mode);
        let victim = Victim::new(&env);
        let before = victim.state();
        env.write(
            "pipeline.yaml",
            &format!(
                "stages:\n  make:\n    cmd: mkdir -p outdir && ln -s ../../{} outdir/ext && echo own > outdir/own.txt\n    outs: [outdir/]\n",
                victim.name()
            ),
        );
        env.pipe(&["repro"]).ok();
        assert_eq!(victim.state(), before, "{mode}: the victim is untouched");
        let lock = env.lock();
        assert_eq!(lock["stages"]["make"]["outs"][0]["nfiles"], 2, "{mode}");
        env.pipe(&["status"]).ok();
        assert_eq!(
            env.pipe(&["status"]).stdout,
            "Everything is up to date.\n",
            "{mode}"
        );

        env.remove("outdir");
        env.pipe(&["checkout"]).ok();
        assert_eq!(
            std::fs::read_link(env.path("outdir/ext"))
                .unwrap()
                .to_string_lossy(),
            format!("../../{}", victim.name()),
            "{mode}: restored as the same link"
        );
        assert_eq!(env.read("outdir/own.txt"), "own\n");
        // Removing the output (a forced run) removes the link, not the data.
        env.pipe(&["repro", "-f"]).ok();
        env.remove("outdir");
        assert_eq!(victim.state(), before, "{mode}: the victim is untouched");
    }
}

#[test]
fn an_output_below_a_symlink_out_of_the_project_is_refused_and_nothing_outside_is_deleted() {
    for mode in ["reflink", "copy", "hardlink", "symlink"] {
        let env = TestEnv::new().env("PIPE_CACHE_LINK", mode);
        let victim = Victim::new(&env);
        let before = victim.state();
        env.write(
            "pipeline.yaml",
            &format!(
                "stages:\n  up:\n    cmd: ln -s ../{} sub && echo done > marker.txt\n    outs: [marker.txt]\n  down:\n    cmd: echo down >> runs.log\n    deps: [marker.txt]\n    outs: [sub/out.txt]\n",
                victim.name()
            ),
        );
        let out = env.pipe(&["repro"]).code(1);
        assert_eq!(
            victim.state(),
            before,
            "{mode}: nothing outside was deleted"
        );
        assert!(env.runs().is_empty(), "{mode}: the stage did not run");
        let mut s = env.settings();
        s.add_filter(&victim.name(), "[VICTIM]");
        let _s = s.bind_to_scope();
        insta::allow_duplicates! {
            insta::assert_snapshot!(out.stderr, @r"
            Running stage up: never run
            ✓ up    ran  [ELAPSED]
            ✗ down  failed: cannot read `sub/out.txt`: it leads outside the project through the symlink `sub` (-> ../[VICTIM]); pipe does not follow links out of the project: copy the data in, or make the link point inside
            1 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
            ");
        }
    }
}

#[test]
fn an_output_that_is_a_symlink_to_elsewhere_is_refused() {
    let env = TestEnv::new().pipeline(
        "
        stages:
          make:
            cmd: echo data > data.txt && ln -s data.txt out.txt
            outs: [out.txt]
        ",
    );
    let out = env.pipe(&["repro"]).code(1);
    let _s = env.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr, @r"
    Running stage make: never run
    ✗ make  failed: cannot read `out.txt`: the output is a symlink (-> data.txt); pipe stores the files a stage writes, not links to elsewhere: write or copy the file itself
    0 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
    ");
}

#[test]
fn a_dependency_through_a_symlink_out_of_the_project_is_refused() {
    let env = TestEnv::new();
    let victim = Victim::new(&env);
    env.write(
        "pipeline.yaml",
        &format!(
            "stages:\n  up:\n    cmd: mkdir -p data && ln -s ../../{}/data.txt data/ext.txt && echo x > data/own.txt\n    outs: [data/]\n  down:\n    cmd: cat data/* > all.txt\n    deps: [data]\n    outs: [all.txt]\n",
            victim.name()
        ),
    );
    let out = env.pipe(&["repro"]).code(1);
    let mut s = env.settings();
    s.add_filter(&victim.name(), "[VICTIM]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(out.stderr, @r"
    Running stage up: never run
    ✓ up    ran  [ELAPSED]
    ✗ down  failed: cannot read `data/ext.txt`: it leads outside the project through the symlink `data/ext.txt` (-> ../../[VICTIM]/data.txt); pipe does not follow links out of the project: copy the data in, or make the link point inside
    1 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
    ");
}

/// A 1 MB tmpfs mounted on a directory while it lives (root only).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path) -> Option<SmallDisk> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_leaves_no_partial_file_and_says_how_much_space_is_needed() {
    let env = TestEnv::new();
    let Some(_disk) = SmallDisk::mount(env.root()) else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root); the full-disk case is not tested");
        return;
    };
    // 700 kB fit on the 1 MB disk once, not twice (the cache's copy).
    env.write(
        "pipeline.yaml",
        "stages:\n  big:\n    cmd: head -c ${size} /dev/zero > big.bin\n    outs: [big.bin]\n",
    );
    env.write("params.yaml", "size: 700000\n");
    let out = env.pipe(&["repro"]).code(1);
    let tmp = env.path(".pipeline-cache/v1/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "staging files left behind: {left:?}");
    let mut s = env.settings();
    s.add_filter(r"\d+\.\d kB free", "[FREE] free");
    s.add_filter(r"free at least \d+\.\d kB", "free at least [NEEDED]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(out.stderr, @r"
    Running stage big: never run
    ✗ big  failed: cache: no space left to store `big.bin` in .pipeline-cache/v1: it needs 700.0 kB, [FREE] free
        hint: free at least [NEEDED] on that disk (`pipe gc -a` removes what no branch uses), then run the command again
    0 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
    ");
    // Nothing of the failed store takes space: a smaller output fits.
    env.write("params.yaml", "size: 300000\n");
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(out.counts(), "1 ran, 0 restored, 0 up to date, 0 failed");
}
