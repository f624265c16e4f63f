//! Remotes against a real S3-compatible server (moto, see `services`) and a
//! directory on disk: push, fetch, pull, `repro --pull`, `status --cloud`,
//! concurrent and interrupted pushes, lying remotes, and the errors a user
//! meets (server down, no bucket, refused credentials) with no secret ever
//! shown.

use std::time::Duration;

use crate::env::{wait_until, TestEnv};
use crate::services::{self, S3};

/// The secret every test uses: it must never appear in any output.
pub(crate) const SECRET: &str = "s3cr3t-Pa55w0rd-never-shown";

/// A project with a file output, a directory output and a chained stage.
fn project() -> TestEnv {
    TestEnv::new()
        .pipeline(
            "
            stages:
              gen:
                cmd: >-
                  echo gen >> runs.log;
                  mkdir -p data && seq 1 3000 > data/a.txt && seq 1 6000 > data/b.txt;
                  seq 1 10 > one.txt
                outs: [data/, one.txt]
              count:
                cmd: echo count >> runs.log; cat data/* one.txt | wc -l > count.txt
                deps: [data, one.txt]
                outs: [count.txt]
            ",
        )
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
}

/// Points `env`'s default remote `origin` at a fresh bucket of `s3`.
pub(crate) fn on_s3(env: &TestEnv, s3: &S3, tag: &str) -> String {
    let bucket = s3.bucket(tag);
    env.write(
        "pipe.toml",
        &format!(
            "[core]\nremote = \"origin\"\n\n[remote.origin]\nurl = \"s3://{bucket}/team\"\nendpoint_url = \"{}\"\nallow_http = true\n",
            s3.endpoint
        ),
    );
    bucket
}

/// A teammate's clone: the files git would have, no cache, no outputs.
pub(crate) fn teammate(env: &TestEnv) -> TestEnv {
    let mut other = TestEnv::new()
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1");
    for file in ["pipeline.yaml", "pipe.toml", "pipeline.lock"] {
        if env.exists(file) {
            other = other.file(file, &env.read(file));
        }
    }
    other
}

pub(crate) fn no_secret(texts: &[&str]) {
    for t in texts {
        assert!(!t.contains(SECRET), "a secret was shown:\n{t}");
    }
}

#[test]
fn push_then_pull_elsewhere_round_trips_files_and_directories() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    let bucket = on_s3(&env, s3, "roundtrip");
    env.pipe(&["repro"]).ok();
    let push = env.pipe(&["push"]).ok();
    let mut s = env.settings();
    s.add_filter(r"in \d+\.\d+s", "in [ELAPSED]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(push.stderr, @"pushed 5 objects (43.0 kB) in [ELAPSED]; 0 already on origin");
    // The layout: content-addressed under a versioned prefix.
    let keys = s3.keys(&bucket, "team/");
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.starts_with("team/v1/objects/")),
        "{keys:?}"
    );
    assert_eq!(keys.iter().filter(|k| k.ends_with(".dir")).count(), 1);

    let other = teammate(&env);
    let pull = other.pipe(&["pull"]).ok();
    no_secret(&[&push.stdout, &push.stderr, &pull.stdout, &pull.stderr]);
    for file in ["data/a.txt", "data/b.txt", "one.txt", "count.txt"] {
        assert_eq!(other.read(file), env.read(file), "{file}");
    }
    assert_eq!(
        other.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    // Nothing new: a push asks the remote nothing and sends nothing.
    let again = env.pipe(&["push"]).ok();
    insta::assert_snapshot!(again.stderr, @"pushed 0 objects (0 B) in [ELAPSED]; 5 already on origin");
    // A directory whose manifest the remote is known to hold is not even
    // opened (its files went up before it): with the manifest gone from the
    // local cache, a push of nothing new is the same.
    let mut manifests = Vec::new();
    for fan in std::fs::read_dir(env.path(".pipeline-cache/v1/objects")).unwrap() {
        for f in std::fs::read_dir(fan.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|x| x == "dir") {
                manifests.push(path);
            }
        }
    }
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    std::fs::remove_file(&manifests[0]).unwrap();
    let known = env.pipe(&["push"]).ok();
    insta::assert_snapshot!(known.stderr, @"pushed 0 objects (0 B) in [ELAPSED]; 5 already on origin");
    // `--verify` asks the remote instead, and needs the manifest.
    let verify = env.pipe(&["push", "--verify"]).code(1);
    insta::assert_snapshot!(verify.stderr, @r"
    pushed 0 objects (0 B) in [ELAPSED]; 2 already on origin
    missing: data: not in the local cache
    error: 1 object could not be moved
      hint: the content is on neither side: rerun the stages that write it (`pipe repro`), or fetch it from a remote that has it
    ");
}

#[test]
fn repro_pull_restores_what_ci_computed_without_running_it() {
    let Some(s3) = services::s3() else { return };
    let ci = project();
    on_s3(&ci, s3, "pull");
    ci.pipe(&["repro"]).ok();
    ci.pipe(&["push", "--run-cache"]).ok();
    let dev = teammate(&ci);
    dev.remove("pipeline.lock");
    let out = dev.pipe(&["repro", "--pull"]).ok();
    assert!(dev.runs().is_empty(), "nothing ran: {:?}", dev.runs());
    assert_eq!(dev.read("count.txt"), ci.read("count.txt"));
    assert_eq!(dev.read("pipeline.lock"), ci.read("pipeline.lock"));
    let _s = dev.settings().bind_to_scope();
    insta::assert_snapshot!(out.stderr, @r"
    Pulled stage gen from the run cache of remote origin
    ✓ gen    restored  [ELAPSED]
    Pulled stage count from the run cache of remote origin
    ✓ count  restored  [ELAPSED]
    0 ran, 2 restored, 0 up to date, 0 failed in [ELAPSED]
    ");
    // Without --pull the stages run.
    let fresh = teammate(&ci);
    fresh.remove("pipeline.lock");
    fresh.pipe(&["repro"]).ok();
    assert_eq!(fresh.runs(), ["gen", "count"]);
}

#[test]
fn status_cloud_names_what_is_not_pushed() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    on_s3(&env, s3, "status");
    env.pipe(&["repro"]).ok();
    let before = env.pipe(&["status", "--cloud"]).ok();
    insta::assert_snapshot!(before.stdout, @r"
    not pushed: count.txt (stage count)
    not pushed: data (stage gen)
    not pushed: one.txt (stage gen)
    run `pipe push` to upload them to remote origin
    ");
    env.pipe(&["push", "gen"]).ok();
    let after = env.pipe(&["status", "--cloud"]).ok();
    insta::assert_snapshot!(after.stdout, @r"
    not pushed: count.txt (stage count)
    run `pipe push` to upload them to remote origin
    ");
}

#[test]
fn a_file_gone_from_the_remote_is_named_by_status_cloud_and_pushed_again() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    let bucket = on_s3(&env, s3, "gone");
    env.pipe(&["repro"]).ok();
    env.pipe(&["push"]).ok();
    // Someone removes one file of the directory from the bucket; its
    // manifest stays.
    let hex = blake3::hash(env.read("data/a.txt").as_bytes()).to_hex();
    let key = format!("/{bucket}/team/v1/objects/{}/{}", &hex[..2], &hex[2..]);
    assert_eq!(services::http(s3, "DELETE", &key, b"").0, 204);
    let status = env.pipe(&["status", "--cloud"]).ok();
    insta::assert_snapshot!(status.stdout, @r"
    not pushed: data (stage gen)
    run `pipe push` to upload them to remote origin
    ");
    // What status --cloud learnt reaches the next push: the directory is
    // not taken as whole any more.
    let push = env.pipe(&["push"]).ok();
    let mut s = env.settings();
    s.add_filter(r"in \d+\.\d+s", "in [ELAPSED]");
    s.bind(|| insta::assert_snapshot!(push.stderr, @"pushed 1 object (13.9 kB) in [ELAPSED]; 4 already on origin"));
    let after = env.pipe(&["status", "--cloud"]).ok();
    insta::assert_snapshot!(after.stdout, @"Every cached output of pipeline.lock is on remote origin (3 checked).");
}

#[test]
fn a_large_file_goes_up_in_parts_and_comes_back_whole() {
    let Some(s3) = services::s3() else { return };
    // 40 MiB: three parts of 16 MiB, several in flight at once.
    let env = TestEnv::new()
        .pipeline(
            "
            stages:
              big:
                cmd: head -c 41943040 /dev/urandom > big.bin
                outs: [big.bin]
            ",
        )
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1");
    let bucket = on_s3(&env, s3, "large");
    env.pipe(&["repro"]).ok();
    let push = env.pipe(&["push"]).ok();
    let mut s = env.settings();
    s.add_filter(r"in \d+\.\d+s", "in [ELAPSED]");
    s.bind(|| {
        insta::assert_snapshot!(push.stderr, @"pushed 1 object (41.9 MB) in [ELAPSED]; 0 already on origin");
    });
    assert_eq!(s3.keys(&bucket, "team/v1/objects/").len(), 1);
    // S3 gives an object uploaded in N parts an ETag ending in `-N`.
    let (status, listing) = services::http(
        s3,
        "GET",
        &format!("/{bucket}?list-type=2&prefix=team/v1/objects/"),
        b"",
    );
    let listing = String::from_utf8_lossy(&listing);
    assert_eq!(status, 200);
    assert!(
        listing.contains("-3&quot;</ETag>") || listing.contains("-3\"</ETag>"),
        "{listing}"
    );
    let other = teammate(&env);
    other.pipe(&["pull"]).ok();
    let hash = |e: &TestEnv| blake3::hash(&std::fs::read(e.path("big.bin")).unwrap());
    assert_eq!(hash(&other), hash(&env));
}

#[test]
fn two_pushes_of_the_same_outputs_at_once_both_succeed() {
    let Some(s3) = services::s3() else { return };
    let a = project();
    let bucket = on_s3(&a, s3, "race");
    a.pipe(&["repro"]).ok();
    let b = teammate(&a);
    b.pipe(&["repro"]).ok();
    let first = a.spawn(&["push", "-j", "2"]);
    let second = b.spawn(&["push", "-j", "2"]);
    first.wait(Duration::from_secs(60)).ok();
    second.wait(Duration::from_secs(60)).ok();
    assert_eq!(s3.keys(&bucket, "team/").len(), 5);
    let c = teammate(&a);
    c.pipe(&["pull"]).ok();
    assert_eq!(c.read("data/b.txt"), a.read("data/b.txt"));
}

#[test]
fn an_interrupted_push_leaves_both_sides_valid_and_resumes() {
    let Some(s3) = services::s3() else { return };
    // 400 files of 256 KB: 13 packs of 8 MB (32 files each).
    let env = TestEnv::new()
        .pipeline(
            "
            stages:
              many:
                cmd: mkdir -p files && for i in $(seq 1 400); do head -c 262144 /dev/urandom > files/$i.bin; done
                outs: [files/]
            ",
        )
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1");
    let bucket = on_s3(&env, s3, "resume");
    env.pipe(&["repro"]).ok();
    let lock = env.read("pipeline.lock");
    let mut push = env.spawn(&["push", "-j", "1"]);
    assert!(
        wait_until(Duration::from_secs(30), || !s3
            .keys(&bucket, "team/v1/packs/")
            .is_empty()),
        "the push started"
    );
    push.kill();
    let _ = push.wait(Duration::from_secs(10));
    let sent = s3.keys(&bucket, "team/v1/packs/").len();
    assert!(sent < 13, "killed before the end ({sent} packs)");
    assert!(
        s3.keys(&bucket, "team/v1/objects/").is_empty()
            && s3.keys(&bucket, "team/v1/places/").is_empty(),
        "no manifest, nor places, before all the files"
    );
    assert_eq!(env.read("pipeline.lock"), lock);
    let resumed = env.pipe(&["push", "--json"]).ok();
    let report: serde_json::Value = serde_json::from_str(&resumed.stdout).unwrap();
    assert_eq!(
        report["moved"].as_u64().unwrap() + report["present"].as_u64().unwrap(),
        401,
        "{report}"
    );
    assert!(
        report["present"].as_u64().unwrap() >= 32,
        "what went up before is not sent again: {report}"
    );
    let packs = s3.keys(&bucket, "team/v1/packs/");
    assert_eq!(packs.len(), 13, "each pack once: {packs:?}");
    assert_eq!(s3.keys(&bucket, "team/v1/places/").len(), 1);
    let other = teammate(&env);
    other.pipe(&["pull"]).ok();
    assert_eq!(
        other.read_bytes("files/400.bin"),
        env.read_bytes("files/400.bin")
    );
}

#[test]
fn a_remote_object_with_wrong_bytes_is_rejected_and_nothing_of_it_is_used() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    let bucket = on_s3(&env, s3, "lies");
    env.pipe(&["repro"]).ok();
    env.pipe(&["push"]).ok();
    let hash = env.locked_out_hash("gen", "one.txt");
    let key = format!("/{bucket}/team/v1/objects/{}/{}", &hash[..2], &hash[2..]);
    let (status, body) = services::http(s3, "PUT", &key, b"not what it should be\n");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let other = teammate(&env);
    let out = other.pipe(&["pull"]).code(1);
    assert!(
        !other.exists("one.txt"),
        "the bad bytes never reach the workspace"
    );
    assert!(!other.object(&hash).exists(), "nor the cache");
    assert_eq!(
        other.read("data/a.txt"),
        env.read("data/a.txt"),
        "the rest arrived"
    );
    let mut s = other.settings();
    s.add_filter(r"in \d+\.\d+s", "in [ELAPSED]");
    s.add_filter(&bucket, "[BUCKET]");
    s.add_filter(r"[0-9a-f]{2}/[0-9a-f]{62}", "[OBJECT]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(out.stderr, @r"
    fetched 4 objects (43.0 kB) in [ELAPSED]; 0 already in the cache
    failed: remote `origin`: s3://[BUCKET]/team/v1/objects/[OBJECT] is damaged: its content does not match its name (got [HASH]); it was not used
    error: 1 object could not be moved
      hint: run the command again to retry; what was moved stays moved
    ");
}

#[test]
fn a_server_that_is_down_a_missing_bucket_and_refused_credentials_are_named() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    env.pipe(&["repro"]).ok();
    let closed = services::free_port();
    env.write(
        "pipe.toml",
        &format!("[remote.origin]\nurl = \"s3://b/p\"\nendpoint_url = \"http://127.0.0.1:{closed}\"\nallow_http = true\n"),
    );
    let down = env.pipe(&["push"]).code(1);
    env.write(
        "pipe.toml",
        &format!("[remote.origin]\nurl = \"s3://no-such-bucket/p\"\nendpoint_url = \"{}\"\nallow_http = true\n", s3.endpoint),
    );
    let nobucket = env.pipe(&["push"]).code(1);
    let mut s = env.settings();
    s.add_filter(&closed.to_string(), "[PORT]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(format!("{}{}", down.stderr, nobucket.stderr), @r"
    error: remote `origin` (s3://b/p) cannot be reached: connection refused at http://127.0.0.1:[PORT]
      hint: is the server running? check `endpoint_url` (`pipe remote list`) and the network; the transfer can be run again and moves only what is missing
    error: remote `origin` (s3://no-such-bucket/p): the bucket or container does not exist
      hint: create the bucket, or fix the remote's URL: `pipe remote modify NAME url s3://BUCKET/prefix`
    ");
    // A server that checks credentials refuses unknown ones.
    let Some(strict) = services::start_moto(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]) else {
        return services::missing("a second moto server");
    };
    env.write(
        "pipe.toml",
        &format!(
            "[remote.origin]\nurl = \"s3://b/p\"\nendpoint_url = \"{}\"\nallow_http = true\n",
            strict.endpoint
        ),
    );
    let refused = env.pipe(&["push"]).code(1);
    no_secret(&[&down.stderr, &nobucket.stderr, &refused.stderr]);
    insta::assert_snapshot!(refused.stderr, @r"
    error: remote `origin` (s3://b/p) refused the credentials: InvalidAccessKeyId (The AWS Access Key Id you provided does not exist in our records.)
      hint: check the credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the `profile` option, or `pipe remote modify --local NAME access_key_id …`
    ");
}

#[test]
fn secrets_stay_out_of_output_and_out_of_git() {
    let Some(s3) = services::s3() else { return };
    let env = TestEnv::new()
        .pipeline("stages:\n  gen:\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n");
    env.git(&["init", "-q", "-b", "main"]);
    let bucket = s3.bucket("secrets");
    env.pipe(&["remote", "add", "-d", "origin", &format!("s3://{bucket}/p")])
        .ok();
    for (k, v) in [
        ("endpoint_url", s3.endpoint.as_str()),
        ("allow_http", "true"),
        ("region", "us-east-1"),
    ] {
        env.pipe(&["remote", "modify", "origin", k, v]).ok();
    }
    env.pipe(&["remote", "modify", "origin", "access_key_id", "AKIDEXAMPLE"])
        .ok();
    let set = env
        .pipe(&["remote", "modify", "origin", "secret_access_key", SECRET])
        .ok();
    assert_eq!(
        set.stdout,
        "set origin.secret_access_key in pipe.local.toml\n"
    );
    env.pipe(&["repro"]).ok();
    let outputs = [
        env.pipe(&["push"]).ok(),
        env.pipe(&["status", "--cloud"]).ok(),
        env.pipe(&["remote", "list"]).ok(),
    ];
    for out in &outputs {
        no_secret(&[&out.stdout, &out.stderr]);
    }
    insta::assert_snapshot!(outputs[2].stdout.replace(&bucket, "[BUCKET]").replace(&s3.endpoint, "[ENDPOINT]"), @"origin	s3://[BUCKET]/p	access_key_id=(set)	allow_http=true	endpoint_url=[ENDPOINT]	region=us-east-1	secret_access_key=(set)	(default)");
    assert!(!env.read("pipe.toml").contains(SECRET));
    assert!(!env.read("pipeline.lock").contains(SECRET));
    let ignored = env.git(&["check-ignore", "pipe.local.toml"]);
    assert_eq!(ignored, "pipe.local.toml\n");
}

#[test]
fn a_directory_on_a_shared_disk_is_a_remote_too() {
    let shared = tempfile::tempdir().unwrap();
    let env = project();
    env.pipe(&[
        "remote",
        "add",
        "-d",
        "disk",
        &shared.path().display().to_string(),
    ])
    .ok();
    env.pipe(&["repro"]).ok();
    env.pipe(&["push", "--run-cache"]).ok();
    let other = teammate(&env);
    other.pipe(&["pull"]).ok();
    assert_eq!(other.read("count.txt"), env.read("count.txt"));
    let fresh = teammate(&env);
    fresh.remove("pipeline.lock");
    fresh.pipe(&["repro", "--pull"]).ok();
    assert!(fresh.runs().is_empty());
}

#[test]
fn a_run_entry_that_names_paths_outside_the_project_is_refused() {
    let Some(s3) = services::s3() else { return };
    let ci = project();
    let bucket = on_s3(&ci, s3, "evil");
    ci.pipe(&["repro", "gen"]).ok();
    ci.pipe(&["push", "--run-cache"]).ok();
    let runs: Vec<String> = s3.keys(&bucket, "team/v1/runs/").into_iter().collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let hash = ci.locked_out_hash("gen", "one.txt");
    let evil = format!(
        r#"{{"stage": "gen", "outs": [{{"path": "../escaped.txt", "blake3": "{hash}", "size": 21}}]}}"#
    );
    let (status, _) = services::http(
        s3,
        "PUT",
        &format!("/{bucket}/{}", runs[0]),
        evil.as_bytes(),
    );
    assert_eq!(status, 200);
    let dev = teammate(&ci);
    dev.remove("pipeline.lock");
    let out = dev.pipe(&["repro", "--pull", "gen"]).ok();
    assert_eq!(dev.runs(), ["gen"], "the stage ran instead");
    assert!(!dev.root().parent().unwrap().join("escaped.txt").exists());
    let mut s = dev.settings();
    s.add_filter(&bucket, "[BUCKET]");
    s.add_filter(r"[0-9a-f]{2}/[0-9a-f]{62}", "[OBJECT]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(out.stderr, @r"
    warning: stage gen: remote `origin`: s3://[BUCKET]/team/v1/runs/[OBJECT]: not a valid run-cache entry (`../escaped.txt` points outside the project (it climbs above the project root with `..`) at line 1 column 51); it was not used; running the stage instead
    Running stage gen: never run
    ✓ gen  ran  [ELAPSED]
    1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
    ");
}

#[test]
fn gc_cloud_removes_only_what_no_kept_lock_records_after_a_dry_run() {
    let Some(s3) = services::s3() else { return };
    let env = project();
    let bucket = on_s3(&env, s3, "gc");
    env.pipe(&["repro"]).ok();
    env.pipe(&["push", "--run-cache"]).ok();
    // A new version of one.txt (and so of count.txt): the old ones and the
    // old stage runs are used by no lock any more.
    let yaml = env
        .read("pipeline.yaml")
        .replace("seq 1 10 >", "seq 1 20 >");
    env.write("pipeline.yaml", &yaml);
    env.pipe(&["repro"]).ok();
    env.pipe(&["push", "--run-cache"]).ok();
    let before = s3.keys(&bucket, "team/");
    assert_eq!(before.len(), 7 + 4, "{before:?}");

    let mut s = env.settings();
    s.add_filter(r"\d+(\.\d+)? (B|kB)", "[SIZE]");
    let _s = s.bind_to_scope();
    // Just pushed: a teammate's push could be under way, nothing goes.
    let young = env.pipe(&["gc", "-w", "--cloud", "--dry"]).ok();
    insta::assert_snapshot!(young.stdout, @r"
    Would remove 2 objects ([SIZE]) and 2 run-cache entries from the cache, keeping 5 objects used by the workspace.
    Left on remote origin: 2 unused run-cache entries younger than 1h (--min-age; a push may be under way).
    ");
    let dry = env
        .pipe(&["gc", "-w", "--cloud", "--min-age", "0", "--dry"])
        .ok();
    insta::assert_snapshot!(dry.stdout, @"Would remove 2 objects ([SIZE]) and 2 run-cache entries from the cache and 2 objects ([SIZE]) and 2 run-cache entries from remote origin, keeping 5 objects used by the workspace.");
    assert_eq!(
        s3.keys(&bucket, "team/"),
        before,
        "a dry run removes nothing"
    );
    // Without -f on no terminal: refused, nothing removed.
    let refused = env.pipe(&["gc", "-w", "--cloud", "--min-age", "0"]).code(2);
    insta::assert_snapshot!(refused.stderr, @r"
    error: pipe gc would remove 2 objects ([SIZE]) and 2 run-cache entries from the cache and 2 objects ([SIZE]) and 2 run-cache entries from remote origin, keeping only what is used by the workspace; it asks before it removes anything, and there is no terminal to ask on
      hint: add -f to remove them; --dry only says what would go; -a, -T, -A or --rev keep more
    ");
    assert_eq!(s3.keys(&bucket, "team/"), before);
    let done = env
        .pipe(&["gc", "-w", "--cloud", "--min-age", "0", "-f"])
        .ok();
    insta::assert_snapshot!(done.stdout, @r"
    Removed 2 objects ([SIZE]) and 2 run-cache entries from the cache; kept 5 objects.
    Removed 2 objects ([SIZE]) and 2 run-cache entries from remote origin; kept 5 objects there.
    ");
    let after = s3.keys(&bucket, "team/");
    assert_eq!(after.len(), 5 + 2, "{after:?}");

    // What is left is whole: a teammate pulls it, and gets the stages from
    // the run cache without running them.
    let other = teammate(&env);
    other.pipe(&["pull"]).ok();
    assert_eq!(other.read("one.txt"), env.read("one.txt"));
    let fresh = teammate(&env);
    fresh.remove("pipeline.lock");
    fresh.pipe(&["repro", "--pull"]).ok();
    assert!(fresh.runs().is_empty(), "{:?}", fresh.runs());
    // Once more: nothing to remove.
    let again = env
        .pipe(&["gc", "-w", "--cloud", "--min-age", "0", "-f"])
        .ok();
    insta::assert_snapshot!(again.stdout, @"Nothing to remove: everything in the cache and on remote origin is used by the workspace.");
}

/// A project with a param, committed and pushed to a bare repository
/// (`origin`) that teammates clone.
fn shared_repo(s3: &S3, tag: &str) -> (TestEnv, tempfile::TempDir) {
    let env = TestEnv::new()
        .params("c: 1\n")
        .pipeline(
            "
            stages:
              train:
                cmd: >-
                  echo train >> runs.log; echo model ${c} > model.txt;
                  echo '{\"score\": ${c}}' > score.json
                params: [c]
                outs: [model.txt]
                metrics:
                  - score.json: {cache: false}
            ",
        )
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1");
    on_s3(&env, s3, tag);
    env.write(".gitignore", "runs.log\n");
    let env = env.git_init();
    env.pipe(&["repro"]).ok();
    env.commit("trained");
    let bare = tempfile::tempdir().unwrap();
    let bare_path = bare.path().display().to_string();
    env.git(&["init", "-q", "--bare", "-b", "main", &bare_path]);
    env.git(&["remote", "add", "origin", &bare_path]);
    env.git(&["push", "-q", "origin", "main"]);
    (env, bare)
}

fn clone_of(bare: &tempfile::TempDir) -> TestEnv {
    let other = TestEnv::new()
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1");
    other.git(&["clone", "-q", &bare.path().display().to_string(), "."]);
    other
}

#[test]
fn exp_push_and_pull_move_experiments_between_clones() {
    let Some(s3) = services::s3() else { return };
    let (env, bare) = shared_repo(s3, "exp-share");
    env.pipe(&["exp", "run", "-n", "big-c", "-S", "c=7"]).ok();
    env.pipe(&["exp", "run", "-n", "small-c", "-S", "c=2"]).ok();
    let pushed = env.pipe(&["exp", "push", "origin", "big-c"]).ok();
    let mut s = env.settings();
    s.add_filter(r"\d+(\.\d+)? (B|kB)", "[SIZE]");
    s.add_filter(r"\b[0-9a-f]{7}\b", "[REV]");
    s.add_filter(r"\d{4}-\d\d-\d\dT[\d:]+Z", "[TIME]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(pushed.stderr, @r"
    Outputs: pushed 1 object ([SIZE]) in [ELAPSED]; 0 already on origin
    Pushed experiment big-c to origin
    ");

    let other = clone_of(&bare);
    let missing = other.pipe(&["exp", "pull", "origin", "small-c"]).code(1);
    insta::assert_snapshot!(missing.stderr, @r"
    error: git remote `origin` has no experiment named `small-c`
      hint: it has: big-c
    ");
    let pulled = other.pipe(&["exp", "pull", "origin", "big-c"]).ok();
    insta::assert_snapshot!(pulled.stderr, @r"
    Pulled experiment big-c from origin
    Outputs: fetched 1 object ([SIZE]) in [ELAPSED]; 0 already in the cache
    ");
    let shown = other.pipe(&["exp", "show", "--csv"]).ok();
    insta::assert_snapshot!(shown.stdout, @r"
    Experiment,Rev,Baseline,Created,score,c
    workspace,,,,1,1
    main,[REV],,[TIME],1,1
    big-c,[REV],[REV],[TIME],7,7
    ");
    // Its outputs came with it: apply restores them without running.
    other.pipe(&["exp", "apply", "big-c"]).ok();
    assert_eq!(other.read("model.txt"), "model 7\n");
    assert!(other.runs().is_empty(), "{:?}", other.runs());

    // The same name run again elsewhere is another experiment: not
    // replaced without -f.
    other.pipe(&["exp", "remove", "big-c"]).ok();
    other.pipe(&["exp", "run", "-n", "big-c", "-S", "c=8"]).ok();
    let clash = other.pipe(&["exp", "push", "origin", "big-c"]).code(1);
    insta::assert_snapshot!(clash.stderr, @r"
    error: git remote `origin` has another run of experiment big-c (same name and baseline, other results)
      hint: run yours again under another name (-n) to keep both, or -f to replace theirs
    ");
    let nowhere = other.pipe(&["exp", "push", "nowhere", "big-c"]).code(2);
    insta::assert_snapshot!(nowhere.stderr, @r"
    error: listing the experiments of git remote `nowhere` failed: 'nowhere' does not appear to be a git repository Could not read from remote repository. Please make sure you have the correct access rights and the repository exists.
      hint: check the remote with `git remote -v` and that `git fetch` works with it
    ");
    other.pipe(&["exp", "push", "-f", "origin", "big-c"]).ok();
    let again = env.pipe(&["exp", "pull", "-f", "origin", "big-c"]).ok();
    no_secret(&[&pushed.stderr, &pulled.stderr, &again.stderr, &clash.stderr]);
    env.pipe(&["exp", "apply", "big-c"]).ok();
    assert_eq!(env.read("model.txt"), "model 8\n");
}

#[test]
fn exp_run_pull_restores_what_ci_computed_for_those_params() {
    let Some(s3) = services::s3() else { return };
    let log = tempfile::NamedTempFile::new().unwrap();
    let log_path = log.path().display().to_string();
    let env = TestEnv::new()
        .params("c: 1\n")
        .pipeline(
            "
            stages:
              train:
                cmd: echo train >> $RUNS_LOG; echo model ${c} > model.txt
                params: [c]
                outs: [model.txt]
            ",
        )
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("RUNS_LOG", &log_path);
    on_s3(&env, s3, "exp-run-pull");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    // CI computed c=7 and shared its run cache; this machine keeps nothing
    // of it.
    env.write("params.yaml", "c: 7\n");
    env.pipe(&["repro"]).ok();
    env.pipe(&["push", "--run-cache"]).ok();
    env.git(&["checkout", "-q", "--", "params.yaml", "pipeline.lock"]);
    env.pipe(&["checkout"]).ok();
    let gc = env.pipe(&["gc", "-w", "-f"]).ok();
    let mut s = env.settings();
    s.add_filter(r"\d+(\.\d+)? (B|kB)", "[SIZE]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(gc.stdout, @"Removed 1 object ([SIZE]) and 1 run-cache entry; kept 1 object.");
    let runs = || std::fs::read_to_string(log.path()).unwrap().lines().count();
    assert_eq!(runs(), 2);

    env.pipe(&["exp", "run", "--pull", "-n", "seven", "-S", "c=7"])
        .ok();
    assert_eq!(runs(), 2, "the experiment's stage was restored, not run");
    env.pipe(&["exp", "run", "--pull", "-n", "eight", "-S", "c=8"])
        .ok();
    assert_eq!(runs(), 3, "what the remote does not hold runs");
    env.pipe(&["exp", "apply", "seven"]).ok();
    assert_eq!(env.read("model.txt"), "model 7\n");
}
