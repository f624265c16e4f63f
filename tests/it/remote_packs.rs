//! Packs on a real S3-compatible server (moto): many small files of a
//! directory go up as a few large objects with the directory's places, come
//! back with ranged reads checked file by file, and are found missing,
//! pushed again and collected like any object.

use crate::env::TestEnv;
use crate::remote::{on_s3, teammate, SECRET};
use crate::services::{self, S3};

/// A directory of 300 small files (enough to be packed) and a file.
fn project() -> TestEnv {
    TestEnv::new()
        .pipeline(
            "
            stages:
              many:
                cmd: >-
                  mkdir -p files && for i in $(seq 1 300); do seq $i $((i + 40)) > files/$i.txt; done;
                  echo done > note.txt
                outs: [files/, note.txt]
            ",
        )
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
}

fn count(s3: &S3, bucket: &str, what: &str) -> usize {
    s3.keys(bucket, &format!("team/v1/{what}/")).len()
}

/// Changes the stage's command so that it writes `extra` after the rest.
fn also(env: &TestEnv, extra: &str) {
    let yaml = env.read("pipeline.yaml").replace(
        "echo done > note.txt",
        &format!("echo done > note.txt; {extra}"),
    );
    env.write("pipeline.yaml", &yaml);
}

#[test]
fn many_small_files_go_up_in_a_pack_and_come_back_checked() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    let bucket = on_s3(&env, s3, "packs");
    env.pipe(&["repro"]).ok();
    let push = env.pipe(&["push"]).ok();
    let mut s = env.settings();
    s.add_filter(r"in \d+\.\d+s", "in [ELAPSED]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(push.stderr, @"pushed 302 objects (77.0 kB) in [ELAPSED]; 0 already on origin");
    // One pack, the directory's places, its manifest and the file.
    assert_eq!(
        (
            count(s3, &bucket, "packs"),
            count(s3, &bucket, "places"),
            count(s3, &bucket, "objects")
        ),
        (1, 1, 2)
    );
    let other = teammate(&env);
    let pull = other.pipe(&["pull"]).ok();
    insta::assert_snapshot!(pull.stderr, @"fetched 302 objects (77.0 kB) in [ELAPSED]; 0 already in the cache");
    for i in [1, 150, 300] {
        let f = format!("files/{i}.txt");
        assert_eq!(other.read(&f), env.read(&f));
    }
    let status = other.pipe(&["status", "--cloud"]).ok();
    insta::assert_snapshot!(status.stdout, @"Every cached output of pipeline.lock is on remote origin (2 checked).");

    // One file changes: it alone goes up (as an object of its own), and the
    // new directory's places name the pack for the other 299.
    also(&env, "echo changed > files/7.txt");
    env.pipe(&["repro"]).ok();
    let second = env.pipe(&["push"]).ok();
    insta::assert_snapshot!(second.stderr, @"pushed 2 objects (31.1 kB) in [ELAPSED]; 300 already on origin");
    assert_eq!(
        (count(s3, &bucket, "packs"), count(s3, &bucket, "places")),
        (1, 2)
    );
    let other = teammate(&env);
    other.pipe(&["pull"]).ok();
    assert_eq!(other.read("files/7.txt"), "changed\n");
    assert_eq!(other.read("files/8.txt"), env.read("files/8.txt"));
}

#[test]
fn a_pack_with_wrong_bytes_is_rejected_and_nothing_of_it_is_used() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    let bucket = on_s3(&env, s3, "packlies");
    env.pipe(&["repro"]).ok();
    env.pipe(&["push"]).ok();
    // Someone overwrites the pack with as many wrong bytes.
    let key = s3.keys(&bucket, "team/v1/packs/").remove(0);
    let (_, body) = services::http(s3, "GET", &format!("/{bucket}/{key}"), b"");
    let wrong: Vec<u8> = body.iter().map(|b| b ^ 1).collect();
    let (status, _) = services::http(s3, "PUT", &format!("/{bucket}/{key}"), &wrong);
    assert_eq!(status, 200);
    let other = teammate(&env);
    let out = other.pipe(&["pull"]).code(1);
    let mut s = other.settings();
    s.add_filter(r"in \d+\.\d+s", "in [ELAPSED]");
    s.add_filter(&bucket, "[BUCKET]");
    s.add_filter(r"[0-9a-f]{2}/[0-9a-f]{62}", "[PACK]");
    s.add_filter(r"got [0-9a-f]{64}", "got [HASH]");
    s.add_filter(
        r"bytes \d+\.\.\d+, for files/\d+\.txt",
        "bytes [RANGE], for [FILE]",
    );
    s.bind(|| insta::assert_snapshot!(out.stderr, @r"
        fetched 2 objects (31.1 kB) in [ELAPSED]; 0 already in the cache
        failed: remote `origin`: s3://[BUCKET]/team/v1/packs/[PACK] (bytes [RANGE], for [FILE]) is damaged: its content does not match its name (got [HASH]); it was not used
        error: 1 object could not be moved
          hint: run the command again to retry; what was moved stays moved
    "));
    assert!(
        !other.exists("files"),
        "nothing of it reaches the workspace"
    );
    assert_eq!(other.read("note.txt"), "done\n", "the rest arrived");
    let hash = blake3::hash(env.read("files/1.txt").as_bytes()).to_hex();
    assert!(!other.object(&hash).exists(), "nor the cache");
}

#[test]
fn a_pack_gone_from_the_remote_is_named_by_status_cloud_and_pushed_again() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    let bucket = on_s3(&env, s3, "packgone");
    env.pipe(&["repro"]).ok();
    env.pipe(&["push"]).ok();
    let key = s3.keys(&bucket, "team/v1/packs/").remove(0);
    assert_eq!(
        services::http(s3, "DELETE", &format!("/{bucket}/{key}"), b"").0,
        204
    );
    let status = env.pipe(&["status", "--cloud"]).ok();
    insta::assert_snapshot!(status.stdout, @r"
        not pushed: files (stage many)
        run `pipe push` to upload them to remote origin
    ");
    let push = env.pipe(&["push"]).ok();
    let mut s = env.settings();
    s.add_filter(r"in \d+\.\d+s", "in [ELAPSED]");
    s.bind(|| insta::assert_snapshot!(push.stderr, @"pushed 300 objects (45.9 kB) in [ELAPSED]; 2 already on origin"));
    assert_eq!(s3.keys(&bucket, "team/v1/packs/"), vec![key]);
    let other = teammate(&env);
    other.pipe(&["pull"]).ok();
    assert_eq!(other.read("files/300.txt"), env.read("files/300.txt"));
}

#[test]
fn gc_cloud_keeps_a_pack_while_a_kept_directory_names_it() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    let bucket = on_s3(&env, s3, "packgc");
    env.pipe(&["repro"]).ok();
    env.pipe(&["push"]).ok();
    // The next version shares 299 files with the first: its places name
    // the first's pack.
    also(&env, "echo changed > files/7.txt");
    env.pipe(&["repro"]).ok();
    env.pipe(&["push"]).ok();
    let mut s = env.settings();
    s.add_filter(r"\d+(\.\d+)? (B|kB)", "[SIZE]");
    let _s = s.bind_to_scope();
    let gc = env
        .pipe(&["gc", "-w", "--cloud", "--min-age", "0", "-f"])
        .ok();
    insta::assert_snapshot!(gc.stdout, @r"
        Removed 2 objects ([SIZE]) and 1 run-cache entry from the cache; kept 302 objects.
        Removed 2 objects ([SIZE]) from remote origin; kept 5 objects there.
    ");
    assert_eq!(
        (
            count(s3, &bucket, "packs"),
            count(s3, &bucket, "places"),
            count(s3, &bucket, "objects")
        ),
        (1, 1, 3),
        "the pack, the new places, manifest, changed file and note.txt"
    );
    let other = teammate(&env);
    other.pipe(&["pull"]).ok();
    assert_eq!(other.read("files/8.txt"), env.read("files/8.txt"));

    // A version sharing nothing: the old pack is named by nothing kept.
    let yaml = env
        .read("pipeline.yaml")
        .replace("seq $i $((i + 40))", "seq $((i * 7)) $((i * 7 + 40))");
    env.write("pipeline.yaml", &yaml);
    env.pipe(&["repro"]).ok();
    env.pipe(&["push"]).ok();
    let gc = env
        .pipe(&["gc", "-w", "--cloud", "--min-age", "0", "-f"])
        .ok();
    insta::assert_snapshot!(gc.stdout, @r"
        Removed 260 objects ([SIZE]) and 1 run-cache entry from the cache; kept 302 objects.
        Removed 3 objects ([SIZE]) from remote origin; kept 5 objects there.
    ");
    assert_eq!(
        (count(s3, &bucket, "packs"), count(s3, &bucket, "places")),
        (1, 1)
    );
    let other = teammate(&env);
    other.pipe(&["pull"]).ok();
    assert_eq!(other.read("files/2.txt"), env.read("files/2.txt"));
}

#[test]
fn a_file_that_is_also_an_output_of_its_own_stays_an_object_of_its_own() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    // note.txt has the content of a file in the packed directory.
    also(&env, "cp files/5.txt note.txt");
    let bucket = on_s3(&env, s3, "packtwice");
    env.pipe(&["repro"]).ok();
    env.pipe(&["push"]).ok();
    let hex = blake3::hash(env.read("note.txt").as_bytes()).to_hex();
    assert!(
        s3.keys(&bucket, "team/v1/objects/").contains(&format!(
            "team/v1/objects/{}/{}",
            &hex[..2],
            &hex[2..]
        )),
        "note.txt is an object of its own"
    );
    // Without the pack, the directory cannot come back, but the file does.
    let pack = s3.keys(&bucket, "team/v1/packs/").remove(0);
    assert_eq!(
        services::http(s3, "DELETE", &format!("/{bucket}/{pack}"), b"").0,
        204
    );
    let other = teammate(&env);
    let pull = other.pipe(&["pull"]).code(1);
    assert_eq!(
        other.read("note.txt"),
        env.read("files/5.txt"),
        "{}",
        pull.stderr
    );
    assert!(!other.exists("files"));
}
