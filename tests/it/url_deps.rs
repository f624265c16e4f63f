//! Stage deps named by URL (`s3://…`, `https://…`): the object's version
//! (ETag, version id) enters the stage's fingerprint and `pipeline.lock`,
//! asked for with one `HEAD` request and never downloaded by pipe.

use crate::env::TestEnv;
use crate::services;
use crate::track::Server;

#[test]
fn an_http_dep_reruns_its_stage_only_when_the_object_changes() {
    let server = Server::start("v1\n");
    let env = TestEnv::new().pipeline(&format!(
        "
        stages:
          fetch:
            cmd: echo fetch >> runs.log; echo got > got.txt
            deps: [{}]
            outs: [got.txt]
        ",
        server.url
    ));
    let _s = env.settings().bind_to_scope();
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["fetch"]);
    let lock = env.read("pipeline.lock").replace(&server.url, "[URL]");
    insta::assert_snapshot!(lock, @r#"
    # Written by `pipe repro`: what each stage ran with and produced. Commit it; do not edit.
    schema: 2
    stages:
      fetch:
        cmd:
        - echo fetch >> runs.log; echo got > got.txt
        url_deps:
        - url: [URL]
          version:
            etag: '"893dcd398afaf0d2"'
            size: 3
        outs:
        - path: got.txt
          blake3: [HASH]
          size: 4
    # End of pipeline.lock (a lock without this last line is incomplete).
    "#);
    server.take_log();

    // Unchanged: one HEAD, no GET, nothing runs.
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    assert_eq!(server.take_log(), ["HEAD"]);
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["fetch"]);
    assert_eq!(server.take_log(), ["HEAD"]);

    server.set("v2\n");
    let status = env
        .pipe(&["status"])
        .ok()
        .stdout
        .replace(&server.url, "[URL]");
    insta::assert_snapshot!(status, @r"
    fetch:
        dep [URL] modified
    ");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["fetch", "fetch"]);
    assert!(!server.take_log().contains(&"GET".to_string()));
}

#[test]
fn an_s3_dep_takes_its_settings_from_the_remote_on_its_bucket() {
    let Some(s3) = services::s3() else { return };
    let bucket = s3.bucket("urldep");
    let (status, _) = services::http(s3, "PUT", &format!("/{bucket}/raw/reviews.tsv"), b"a\tb\n");
    assert_eq!(status, 200);
    let env = TestEnv::new()
        .pipeline(&format!(
            "
            stages:
              prepare:
                cmd: echo prepare >> runs.log; echo prepared > data.txt
                deps: [s3://{bucket}/raw/reviews.tsv]
                outs: [data.txt]
            "
        ))
        .file(
            "pipe.toml",
            &format!(
                "[remote.store]\nurl = \"s3://{bucket}/cache\"\nendpoint_url = \"{}\"\nallow_http = true\n",
                s3.endpoint
            ),
        )
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_REGION", "us-east-1");
    let _s = env.settings().bind_to_scope();
    env.pipe(&["repro"]).ok();
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare"]);
    let (status, _) = services::http(
        s3,
        "PUT",
        &format!("/{bucket}/raw/reviews.tsv"),
        b"a\tb\nc\td\n",
    );
    assert_eq!(status, 200);
    let out = env
        .pipe(&["status"])
        .ok()
        .stdout
        .replace(&bucket, "[BUCKET]");
    insta::assert_snapshot!(out, @r"
    prepare:
        dep s3://[BUCKET]/raw/reviews.tsv modified
    ");
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare", "prepare"]);
    // The same bytes again: the ETag is that of the content, nothing runs.
    let (status, _) = services::http(
        s3,
        "PUT",
        &format!("/{bucket}/raw/reviews.tsv"),
        b"a\tb\nc\td\n",
    );
    assert_eq!(status, 200);
    env.pipe(&["repro"]).ok();
    assert_eq!(env.runs(), ["prepare", "prepare"]);
}
