//! Tracked data: `pipe add`, `.dvc` files (pipe's and DVC's), `.dvcignore`,
//! `pipe import-url`/`update`, and tracked data in checkout, push/pull and
//! gc, on real git repositories (and real `dvc` where it is installed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::env::TestEnv;
use crate::services;

/// A project whose stage reads tracked data (`data/raw.csv`), in git.
fn project() -> TestEnv {
    TestEnv::new()
        .pipeline(
            "
            stages:
              count:
                cmd: echo count >> runs.log; wc -l < data/raw.csv > count.txt
                deps: [data/raw.csv]
                outs: [count.txt]
            ",
        )
        .git_init()
        .file("data/raw.csv", "a\nb\n")
}

/// `env`'s settings, with an import's stage md5 (which covers its source
/// URL or path, different on every run) as `[STAGE_MD5]`.
fn import_settings(env: &TestEnv) -> insta::Settings {
    let mut s = env.settings();
    s.add_filter(r"(?m)^md5: [0-9a-f]{32}$", "md5: [STAGE_MD5]");
    s
}

fn has_dvc() -> bool {
    Command::new("dvc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the real `dvc` in the project root.
fn dvc(env: &TestEnv, args: &[&str]) -> String {
    let out = Command::new("dvc")
        .args(args)
        .current_dir(env.root())
        .env("DVC_NO_ANALYTICS", "1")
        .output()
        .expect("run dvc");
    assert!(
        out.status.success(),
        "dvc {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn add_commit_change_add_again_and_checkout_an_older_version() {
    let env = project();
    let _s = env.settings().bind_to_scope();
    let out = env.pipe(&["add", "data/raw.csv"]).ok();
    insta::assert_snapshot!(out.stdout, @"Added data/raw.csv (4 B): data/raw.csv.dvc");
    insta::assert_snapshot!(out.stderr, @r"
    To track the changes with git, run:

        git add data/.gitignore data/raw.csv.dvc
    ");
    // DVC's own format; pipe's BLAKE3 in `meta`, which DVC leaves alone.
    insta::assert_snapshot!(env.read("data/raw.csv.dvc"), @r"
    outs:
    - md5: dd8c6a395b5dd36c56d23275028f526c
      size: 4
      hash: md5
      path: raw.csv
    meta:
      pipe:
        raw.csv:
          md5: dd8c6a395b5dd36c56d23275028f526c
          blake3: [HASH]
    ");
    assert_eq!(env.read("data/.gitignore"), "/raw.csv\n");
    // The stage that reads it runs as with any file.
    env.pipe(&["repro"]).ok();
    assert_eq!(env.read("count.txt").trim(), "2");
    let first = env.commit("track raw data");
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );

    env.write("data/raw.csv", "a\nb\nc\n");
    let status = env.pipe(&["status"]).ok();
    insta::assert_snapshot!(status.stdout, @r"
    count:
        dep data/raw.csv modified
    data/raw.csv.dvc:
        output data/raw.csv modified
    ");
    env.pipe(&["status", "-q"]).code(1);
    insta::assert_snapshot!(env.pipe(&["status", "--json", "data/raw.csv"]).ok().stdout, @r#"
        [
          {
            "stage": "data/raw.csv.dvc",
            "verdict": "changed",
            "reasons": [
              {
                "reason": "output_modified",
                "path": "data/raw.csv"
              }
            ]
          }
        ]
        "#);
    let again = env.pipe(&["add", "data/raw.csv"]).ok();
    insta::assert_snapshot!(again.stdout, @"Added data/raw.csv (6 B): data/raw.csv.dvc");
    let unchanged = env.pipe(&["add", "data/raw.csv"]).ok();
    insta::assert_snapshot!(unchanged.stdout, @"data/raw.csv is unchanged (6 B): data/raw.csv.dvc");
    env.commit("more data");

    env.git(&["checkout", "-q", &first]);
    let status = env.pipe(&["status", "data/raw.csv.dvc"]).ok();
    insta::assert_snapshot!(status.stdout, @r"
    data/raw.csv.dvc:
        output data/raw.csv modified
    ");
    let restored = env.pipe(&["checkout"]).ok();
    insta::assert_snapshot!(restored.stdout, @"restored data/raw.csv");
    assert_eq!(env.read("data/raw.csv"), "a\nb\n");
    env.git(&["checkout", "-q", "main"]);
    env.pipe(&["checkout", "data/raw.csv"]).ok();
    assert_eq!(env.read("data/raw.csv"), "a\nb\nc\n");

    // An edit the cache does not hold is kept unless forced.
    env.git(&["checkout", "-q", &first]);
    env.write("data/raw.csv", "mine\n");
    let kept = env.pipe(&["checkout", "data/raw.csv.dvc"]).code(1);
    insta::assert_snapshot!(kept.stdout, @"kept data/raw.csv: it was edited, and the cache has no copy of this version (record it with `pipe add data/raw.csv`, or replace it with `pipe checkout -f data/raw.csv.dvc`)");
    assert_eq!(env.read("data/raw.csv"), "mine\n");
}

#[test]
fn a_directory_is_tracked_as_a_whole_and_dvcignore_leaves_files_out() {
    let env = TestEnv::new()
        .pipeline(
            "
            stages:
              list:
                cmd: ls images > list.txt
                deps: [images]
                outs: [list.txt]
            ",
        )
        .file(".dvcignore", "*.tmp\n")
        .git_init()
        .file("images/a.png", "A")
        .file("images/sub/b.png", "B");
    let _s = env.settings().bind_to_scope();
    let out = env.pipe(&["add", "images/"]).ok();
    insta::assert_snapshot!(out.stdout, @"Added images (2 files, 2 B): images.dvc");
    // The same `.dir` md5 DVC computes for these files.
    insta::assert_snapshot!(env.read("images.dvc"), @r"
    outs:
    - md5: b14d3a2bc87bd77a6ca094f2bf46af89.dir
      size: 2
      nfiles: 2
      hash: md5
      path: images
    meta:
      pipe:
        images:
          md5: b14d3a2bc87bd77a6ca094f2bf46af89.dir
          blake3: [HASH]
    ");
    assert_eq!(env.read(".gitignore"), "/images\n");
    env.pipe(&["repro"]).ok();
    // An ignored file changes neither the data's hash nor the stage's dep.
    env.write("images/scratch.tmp", "noise");
    env.write("images/sub/more.tmp", "noise");
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    env.write("images/c.png", "C");
    insta::assert_snapshot!(env.pipe(&["status"]).ok().stdout, @r"
    list:
        dep images modified
    images.dvc:
        output images modified
    ");
    let again = env.pipe(&["add", "images"]).ok();
    insta::assert_snapshot!(again.stdout, @"Added images (3 files, 3 B): images.dvc");
    // Removed, it comes back from the cache without the ignored files.
    env.remove("images");
    env.pipe(&["checkout", "images.dvc"]).ok();
    assert_eq!(env.read("images/c.png"), "C");
    assert_eq!(env.read("images/sub/b.png"), "B");
    assert!(!env.exists("images/scratch.tmp"));
}

#[test]
fn dvc_files_written_by_hand_in_dvc_2_and_3_forms_are_read() {
    // md5("a\nb\n") as DVC 3 (`hash: md5`) and DVC 2 (no `hash:`) record it.
    let env = TestEnv::new()
        .file("pipeline.yaml", "stages: {}\n")
        .file("one.csv", "a\nb\n")
        .file("two.csv", "a\nb\n")
        .file(
            "one.csv.dvc",
            "outs:\n- md5: dd8c6a395b5dd36c56d23275028f526c\n  size: 4\n  hash: md5\n  path: one.csv\n",
        )
        .file(
            "two.csv.dvc",
            "outs:\n- md5: dd8c6a395b5dd36c56d23275028f526c\n  size: 4\n  path: two.csv\n",
        );
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    env.write("two.csv", "changed\n");
    insta::assert_snapshot!(env.pipe(&["status"]).ok().stdout, @r"
    two.csv.dvc:
        output two.csv modified
    ");
    env.remove("one.csv");
    insta::assert_snapshot!(env.pipe(&["status"]).ok().stdout, @r"
    one.csv.dvc:
        output one.csv missing
    two.csv.dvc:
        output two.csv modified
    ");

    // A broken `.dvc` file is named, with exit 2.
    env.write("bad.dvc", "outs:\n- size: 4\n");
    let bad = env.pipe(&["status"]).code(2);
    assert!(bad.stderr.contains("bad.dvc"), "{}", bad.stderr);
}

#[test]
fn real_dvc_add_is_read_and_its_cache_restores_what_pipe_never_saw() {
    if !has_dvc() {
        return services::missing("dvc");
    }
    let env = TestEnv::new()
        .file("pipeline.yaml", "stages: {}\n")
        .git_init()
        .file("data/data.xml", "<xml>1</xml>\n")
        .file("data/images/a.png", "A")
        .file("data/images/b/c.png", "C");
    dvc(&env, &["init", "-q"]);
    dvc(&env, &["add", "-q", "data/data.xml", "data/images"]);
    env.commit("dvc add");
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    // Removed before pipe ever hashed it: DVC's cache holds it, checked
    // against its md5 as it is copied into pipe's.
    env.remove("data/images");
    env.remove("data/data.xml");
    let out = env.pipe(&["checkout"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    restored data/data.xml
    restored data/images
    ");
    assert_eq!(env.read("data/images/b/c.png"), "C");
    assert_eq!(env.read("data/data.xml"), "<xml>1</xml>\n");
    // DVC reads pipe's `.dvc` file: its md5 is the workspace's (DVC's
    // own cache does not have it, pipe's does).
    env.write("data/data.xml", "<xml>2</xml>\n");
    env.pipe(&["add", "data/data.xml"]).ok();
    insta::assert_snapshot!(dvc(&env, &["status", "data/data.xml.dvc"]), @r"
    data/data.xml.dvc:
    	changed outs:
    		not in cache:       data/data.xml
    ");
    // And pipe's imports, stage md5 included (no "changed checksum").
    let source = TestEnv::new().file("export.csv", "x\n");
    let src = source.path("export.csv").display().to_string();
    env.pipe(&["import-url", &src, "data/export.csv"]).ok();
    insta::assert_snapshot!(dvc(&env, &["status", "data/export.csv.dvc"]), @r"
    data/export.csv.dvc:
    	changed outs:
    		not in cache:       data/export.csv
    ");
}

#[test]
fn push_and_pull_move_tracked_data() {
    let Some(s3) = services::s3() else { return };
    let env = project()
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_REGION", "us-east-1");
    let bucket = s3.bucket("track");
    env.write(
        "pipe.toml",
        &format!(
            "[core]\nremote = \"origin\"\n\n[remote.origin]\nurl = \"s3://{bucket}/team\"\nendpoint_url = \"{}\"\nallow_http = true\n",
            s3.endpoint
        ),
    );
    env.write("data/images/a.png", "A");
    env.pipe(&["add", "data/raw.csv", "data/images"]).ok();
    let before = env.pipe(&["status", "--cloud"]).ok();
    insta::assert_snapshot!(before.stdout, @r"
    not pushed: data/images (data/images.dvc)
    not pushed: data/raw.csv (data/raw.csv.dvc)
    run `pipe push` to upload them to remote origin
    ");
    let push = env.pipe(&["push"]).ok();
    let mut s = env.settings();
    s.add_filter(r"in \d+\.\d+s", "in [ELAPSED]");
    let _s = s.bind_to_scope();
    insta::assert_snapshot!(push.stderr, @"pushed 3 objects (118 B) in [ELAPSED]; 0 already on origin");
    let after = env.pipe(&["status", "--cloud"]).ok();
    insta::assert_snapshot!(after.stdout, @"Every cached output of pipeline.lock and all tracked data are on remote origin (2 checked).");

    let other = TestEnv::new()
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_REGION", "us-east-1");
    for f in [
        "pipeline.yaml",
        "pipe.toml",
        "data/raw.csv.dvc",
        "data/images.dvc",
    ] {
        other.write(f, &env.read(f));
    }
    let pull = other.pipe(&["pull", "data/images.dvc"]).ok();
    insta::assert_snapshot!(pull.stdout, @"restored data/images");
    assert!(!other.exists("data/raw.csv"));
    other.pipe(&["pull"]).ok();
    assert_eq!(other.read("data/raw.csv"), "a\nb\n");
    assert_eq!(other.read("data/images/a.png"), "A");
}

#[test]
fn gc_keeps_the_tracked_data_of_the_scopes_it_keeps() {
    let env = project();
    env.pipe(&["add", "data/raw.csv"]).ok();
    let first = env.commit("v1");
    env.write("data/raw.csv", "v2\n");
    env.pipe(&["add", "data/raw.csv"]).ok();
    env.commit("v2");
    // Workspace only: v1 goes.
    env.pipe(&["gc", "-w", "--dry"]).ok();
    env.pipe(&["gc", "-A", "-f"]).ok();
    env.git(&["checkout", "-q", &first]);
    env.remove("data/raw.csv");
    env.pipe(&["checkout"]).ok();
    assert_eq!(env.read("data/raw.csv"), "a\nb\n");
    env.git(&["checkout", "-q", "main"]);
    env.pipe(&["checkout"]).ok();
    env.pipe(&["gc", "-w", "-f"]).ok();
    env.git(&["checkout", "-q", &first]);
    let gone = env.pipe(&["checkout"]).code(1);
    insta::assert_snapshot!(gone.stdout, @"cannot restore data/raw.csv: not in the cache (`pipe pull data/raw.csv.dvc` fetches it from a remote)");
}

/// A tiny HTTP server on 127.0.0.1 that serves one body with an ETag of
/// its content, and logs each request's method.
pub struct Server {
    pub url: String,
    body: Arc<Mutex<Vec<u8>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(body: &str) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/data/reviews.tsv", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(body.as_bytes().to_vec()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (b, l) = (body.clone(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let method = first.split_whitespace().next().unwrap_or("").to_string();
                l.lock().unwrap().push(method.clone());
                let bytes = b.lock().unwrap().clone();
                let etag = blake3::hash(&bytes).to_hex()[..16].to_string();
                let mut stream = reader.into_inner();
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: \"{etag}\"\r\nConnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = stream.write_all(head.as_bytes());
                if method != "HEAD" {
                    let _ = stream.write_all(&bytes);
                }
                let _ = stream.flush();
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
            }
        });
        Server { url, body, log }
    }

    pub fn set(&self, body: &str) {
        *self.body.lock().unwrap() = body.as_bytes().to_vec();
    }

    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

#[test]
fn import_url_over_http_and_update_only_downloads_a_changed_source() {
    let server = Server::start("id\ttext\n1\tgood\n");
    let env = project();
    let _s = import_settings(&env).bind_to_scope();
    let out = env
        .pipe(&["import-url", &server.url, "data/reviews.tsv"])
        .ok();
    insta::assert_snapshot!(out.stdout, @"Imported data/reviews.tsv (15 B): data/reviews.tsv.dvc");
    assert_eq!(env.read("data/reviews.tsv"), "id\ttext\n1\tgood\n");
    let text = env
        .read("data/reviews.tsv.dvc")
        .replace(&server.url, "[URL]");
    insta::assert_snapshot!(text, @r#"
    md5: [STAGE_MD5]
    frozen: true
    deps:
    - etag: '"0ee57ebb442fafbe"'
      size: 15
      hash: md5
      path: [URL]
    outs:
    - md5: d52db1922a9bdb5958db24b1c6602150
      size: 15
      hash: md5
      path: reviews.tsv
    meta:
      pipe:
        reviews.tsv:
          md5: d52db1922a9bdb5958db24b1c6602150
          blake3: [HASH]
    "#);
    server.take_log();

    let same = env.pipe(&["update"]).ok();
    insta::assert_snapshot!(same.stdout, @"data/reviews.tsv is up to date with its source");
    assert_eq!(server.take_log(), ["HEAD"]);

    server.set("id\ttext\n1\tgood\n2\tbad\n");
    let changed = env.pipe(&["update", "data/reviews.tsv.dvc"]).ok();
    insta::assert_snapshot!(changed.stdout, @"Updated data/reviews.tsv (21 B): data/reviews.tsv.dvc");
    assert_eq!(server.take_log(), ["HEAD", "GET"]);
    assert_eq!(env.read("data/reviews.tsv"), "id\ttext\n1\tgood\n2\tbad\n");
}

#[test]
fn import_url_from_a_local_path_records_its_md5_and_updates_when_it_changes() {
    let env = project();
    let _s = import_settings(&env).bind_to_scope();
    let source = TestEnv::new().file("export/reviews.tsv", "one\n");
    let src = source.path("export/reviews.tsv").display().to_string();
    env.pipe(&["import-url", &src, "data/reviews.tsv"]).ok();
    let text = env.read("data/reviews.tsv.dvc").replace(&src, "[SRC]");
    insta::assert_snapshot!(text, @r"
    md5: [STAGE_MD5]
    frozen: true
    deps:
    - md5: 5bbf5a52328e7439ae6e719dfe712200
      size: 4
      hash: md5
      path: [SRC]
    outs:
    - md5: 5bbf5a52328e7439ae6e719dfe712200
      size: 4
      hash: md5
      path: reviews.tsv
    meta:
      pipe:
        reviews.tsv:
          md5: 5bbf5a52328e7439ae6e719dfe712200
          blake3: [HASH]
    ");
    // Exists: not replaced without -f.
    let again = env.pipe(&["import-url", &src, "data/reviews.tsv"]).code(2);
    insta::assert_snapshot!(again.stderr, @r"
    error: data/reviews.tsv exists; pipe import-url does not replace it
      hint: add -f to replace it (what is there is lost unless the cache holds it), or choose another path
    ");
    insta::assert_snapshot!(env.pipe(&["update"]).ok().stdout, @"data/reviews.tsv is up to date with its source");
    source.write("export/reviews.tsv", "two\n");
    insta::assert_snapshot!(env.pipe(&["update"]).ok().stdout, @"Updated data/reviews.tsv (4 B): data/reviews.tsv.dvc");
    assert_eq!(env.read("data/reviews.tsv"), "two\n");
}

/// A project whose stage reads tracked data and reports, as a metric, the
/// inode it saw and the lines it counted after appending to it.
fn exp_project(link: &str) -> TestEnv {
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              count:
                cmd: >-
                  inode=$(stat -c %i data/raw.csv);
                  if [ "${mode}" = write ]; then echo more >> data/raw.csv; fi;
                  echo "{\"inode\": $inode, \"lines\": $(wc -l < data/raw.csv)}" > m.json
                deps: [data/raw.csv]
                metrics:
                  - m.json: {cache: false}
            "#,
        )
        .params("mode: read\n")
        .env("PIPE_CACHE_LINK", link)
        .git_init();
    env.write("data/raw.csv", "a\nb\n");
    env.pipe(&["add", "data/raw.csv"]).ok();
    env.commit("track data");
    env
}

/// The metrics of the one experiment recorded.
fn exp_metrics(env: &TestEnv) -> serde_json::Value {
    let refs = env.git(&["for-each-ref", "--format=%(refname)", "refs/exps"]);
    let name = refs.lines().next().expect("an experiment ref");
    serde_json::from_str(&env.git(&["show", &format!("{name}:m.json")])).unwrap()
}

fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("stat").ino()
}

#[test]
fn an_experiment_links_tracked_data_from_the_cache_without_copying_it() {
    let env = exp_project("hardlink");
    let dvc: yaml_serde::Value = yaml_serde::from_str(&env.read("data/raw.csv.dvc")).unwrap();
    let blake3 = dvc["meta"]["pipe"]["raw.csv"]["blake3"]
        .as_str()
        .unwrap()
        .to_string();
    // The user's copy is elsewhere (not the cache object): the experiment
    // still gets the object itself.
    env.remove("data/raw.csv");
    env.write("data/raw.csv", "a\nb\n");
    env.pipe(&["exp", "run", "-n", "linked"]).ok();
    let m = exp_metrics(&env);
    assert_eq!(m["inode"], inode(&env.object(&blake3)), "{m}");
    assert_ne!(m["inode"], inode(&env.path("data/raw.csv")));
    assert_eq!(m["lines"], 2);
}

#[test]
fn a_stage_that_writes_its_tracked_data_in_an_experiment_leaves_the_users_alone() {
    let env = exp_project("reflink");
    let dvc: yaml_serde::Value = yaml_serde::from_str(&env.read("data/raw.csv.dvc")).unwrap();
    let blake3 = dvc["meta"]["pipe"]["raw.csv"]["blake3"]
        .as_str()
        .unwrap()
        .to_string();
    env.pipe(&["exp", "run", "-n", "writes", "-S", "mode=write"])
        .ok();
    let m = exp_metrics(&env);
    assert_eq!(m["lines"], 3, "the stage wrote its own copy: {m}");
    assert_ne!(m["inode"], inode(&env.path("data/raw.csv")));
    assert_ne!(m["inode"], inode(&env.object(&blake3)));
    assert_eq!(env.read("data/raw.csv"), "a\nb\n");
    assert_eq!(std::fs::read(env.object(&blake3)).unwrap(), b"a\nb\n");
    assert_eq!(
        env.pipe(&["status", "data/raw.csv.dvc"]).ok().stdout,
        "Everything is up to date.\n"
    );
}

#[test]
fn an_experiment_refuses_tracked_data_the_cache_does_not_have() {
    let env = exp_project("reflink");
    // Another version, recorded in git but never in this cache.
    let other = TestEnv::new().file("pipeline.yaml", "stages: {}\n");
    other.write("raw.csv", "x\n");
    other.pipe(&["add", "raw.csv"]).ok();
    env.write("data/raw.csv.dvc", &other.read("raw.csv.dvc"));
    env.commit("another version");
    let out = env.pipe(&["exp", "run", "-n", "missing"]).code(1);
    insta::assert_snapshot!(out.stderr, @r"
    Running experiment missing: params as they are
    error: experiment missing failed and was not recorded: the experiment needs data/raw.csv (the version data/raw.csv.dvc records at its start), and the cache does not have it
      hint: `pipe pull data/raw.csv.dvc` fetches it from a remote
      hint: fix it, then run it again: pipe exp run -n missing
    ");
    assert_eq!(env.read("data/raw.csv"), "a\nb\n");
}

#[test]
fn import_url_from_s3_records_the_etag_and_update_follows_the_object() {
    let Some(s3) = services::s3() else { return };
    let bucket = s3.bucket("import");
    let put = |body: &[u8]| {
        let (status, _) = services::http(s3, "PUT", &format!("/{bucket}/raw/reviews.tsv"), body);
        assert_eq!(status, 200);
    };
    put(b"one\n");
    let env = project()
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_REGION", "us-east-1");
    env.write(
        "pipe.toml",
        &format!(
            "[remote.store]\nurl = \"s3://{bucket}/cache\"\nendpoint_url = \"{}\"\nallow_http = true\n",
            s3.endpoint
        ),
    );
    let _s = import_settings(&env).bind_to_scope();
    let url = format!("s3://{bucket}/raw/reviews.tsv");
    env.pipe(&["import-url", &url, "data/reviews.tsv"]).ok();
    assert_eq!(env.read("data/reviews.tsv"), "one\n");
    let text = env
        .read("data/reviews.tsv.dvc")
        .replace(&bucket, "[BUCKET]");
    insta::assert_snapshot!(text, @r#"
    md5: [STAGE_MD5]
    frozen: true
    deps:
    - etag: '"5bbf5a52328e7439ae6e719dfe712200"'
      size: 4
      hash: md5
      path: s3://[BUCKET]/raw/reviews.tsv
    outs:
    - md5: 5bbf5a52328e7439ae6e719dfe712200
      size: 4
      hash: md5
      path: reviews.tsv
    meta:
      pipe:
        reviews.tsv:
          md5: 5bbf5a52328e7439ae6e719dfe712200
          blake3: [HASH]
    "#);
    insta::assert_snapshot!(env.pipe(&["update"]).ok().stdout, @"data/reviews.tsv is up to date with its source");
    put(b"one\ntwo\n");
    insta::assert_snapshot!(env.pipe(&["update"]).ok().stdout, @"Updated data/reviews.tsv (8 B): data/reviews.tsv.dvc");
    assert_eq!(env.read("data/reviews.tsv"), "one\ntwo\n");
}

#[test]
fn add_refuses_what_it_must_not_track_and_says_why() {
    let env = project();
    env.pipe(&["repro"]).ok();
    let _s = env.settings().bind_to_scope();
    env.write("notes.txt", "in git\n");
    env.commit("notes");
    let tracked = env.pipe(&["add", "notes.txt"]).code(2);
    insta::assert_snapshot!(tracked.stderr, @r"
    error: notes.txt is tracked by git already
      hint: stop tracking it with git first (`git rm -r --cached notes.txt`), then `pipe add notes.txt`
    ");
    let output = env.pipe(&["add", "count.txt"]).code(2);
    insta::assert_snapshot!(output.stderr, @r"
    error: count.txt overlaps the output count.txt of stage count
      hint: a stage's outputs are recorded in pipeline.lock when it runs; `pipe add` is for data no stage writes
    ");
    let missing = env.pipe(&["add", "nothing.csv"]).code(2);
    insta::assert_snapshot!(missing.stderr, @"error: cannot add nothing.csv: no such file or directory");
    let outside = env.pipe(&["add", "/etc/hostname"]).code(2);
    insta::assert_snapshot!(outside.stderr, @r"
    error: /etc/hostname is not inside the project ([ROOT])
      hint: pipe tracks data inside the project: copy it in first
    ");
    assert!(!env.exists("notes.txt.dvc") && !env.exists("count.txt.dvc"));
}

#[test]
fn a_dvc_repository_of_dvc_files_only_is_a_project_of_tracked_data() {
    // `dvc init; dvc add data.csv`: no pipeline file at all.
    let env = TestEnv::new()
        .file(".dvc/config", "")
        .file("data.csv", "a\nb\n")
        .file(
            "data.csv.dvc",
            "outs:\n- md5: dd8c6a395b5dd36c56d23275028f526c\n  size: 4\n  hash: md5\n  path: data.csv\n",
        );
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    env.write("data.csv", "a\nb\nc\n");
    insta::assert_snapshot!(env.pipe(&["status"]).ok().stdout, @r"
    data.csv.dvc:
        output data.csv modified
    ");
    env.pipe(&["add", "data.csv"]).ok();
    assert_eq!(
        env.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );
    // Without `.dvc/` or a pipeline file it is not a project.
    let bare = TestEnv::new().file("data.csv", "a\n");
    let out = bare.pipe(&["add", "data.csv"]).code(2);
    bare.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
        error: no pipeline.yaml (or dvc.yaml) in [ROOT] or any parent directory
          hint: create pipeline.yaml with a `stages:` mapping (see the README), or run pipe inside a project
        ");
    });
}

#[test]
fn a_directory_dvc_ran_is_taken_over_with_its_dvcignored_files_left_out() {
    if !has_dvc() {
        return services::missing("dvc");
    }
    let env = TestEnv::new()
        .file(
            "dvc.yaml",
            "stages:\n  gen:\n    cmd: mkdir -p out && echo a > out/a.txt && echo t > out/scratch.tmp && echo gen >> runs.log\n    outs: [out]\n",
        )
        .file(".dvcignore", "*.tmp\n")
        .git_init();
    dvc(&env, &["init", "-q"]);
    dvc(&env, &["repro", "-q"]);
    let repro = env.pipe(&["repro"]).ok();
    assert_eq!(repro.counts(), "0 ran, 0 restored, 1 up to date, 0 failed");
    assert_eq!(env.runs(), ["gen"]);
}

#[test]
fn data_dvc_records_by_md5_only_is_pulled_elsewhere_through_the_remote() {
    let Some(s3) = services::s3() else { return };
    let bucket = s3.bucket("md5link");
    let config = format!(
        "[core]\nremote = \"origin\"\n\n[remote.origin]\nurl = \"s3://{bucket}/team\"\nendpoint_url = \"{}\"\nallow_http = true\n",
        s3.endpoint
    );
    // `.dvc` files as DVC writes them: md5 only, no BLAKE3.
    let dvc_files = [
        (
            "data.csv.dvc",
            "outs:\n- md5: dd8c6a395b5dd36c56d23275028f526c\n  size: 4\n  hash: md5\n  path: data.csv\n",
        ),
        (
            "images.dvc",
            "outs:\n- md5: b14d3a2bc87bd77a6ca094f2bf46af89.dir\n  size: 2\n  nfiles: 2\n  hash: md5\n  path: images\n",
        ),
    ];
    let with_keys = |env: TestEnv| {
        env.env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_REGION", "us-east-1")
            .file("pipeline.yaml", "stages: {}\n")
            .file("pipe.toml", &config)
    };
    let mut env = with_keys(TestEnv::new())
        .file("data.csv", "a\nb\n")
        .file("images/a.png", "A")
        .file("images/sub/b.png", "B");
    let mut other = with_keys(TestEnv::new());
    for (name, text) in dvc_files {
        env = env.file(name, text);
        other = other.file(name, text);
    }
    env.pipe(&["push"]).ok();
    assert_eq!(
        s3.keys(&bucket, "team/v1/md5/"),
        [
            "team/v1/md5/b1/4d3a2bc87bd77a6ca094f2bf46af89.dir",
            "team/v1/md5/dd/8c6a395b5dd36c56d23275028f526c",
        ]
    );
    let pull = other.pipe(&["pull"]).ok();
    insta::assert_snapshot!(pull.stdout, @r"
    restored data.csv
    restored images
    ");
    assert_eq!(other.read("data.csv"), "a\nb\n");
    assert_eq!(other.read("images/sub/b.png"), "B");
    assert_eq!(
        other.pipe(&["status"]).ok().stdout,
        "Everything is up to date.\n"
    );

    // A link that lies is refused: its content's md5 is checked.
    let third = with_keys(TestEnv::new()).file(
        "x.csv.dvc",
        "outs:\n- md5: 00000000000000000000000000000000\n  size: 4\n  hash: md5\n  path: x.csv\n",
    );
    let (status, _) = services::http(
        s3,
        "PUT",
        &format!("/{bucket}/team/v1/md5/00/000000000000000000000000000000"),
        blake3::hash(b"a\nb\n").to_hex().as_bytes(),
    );
    assert_eq!(status, 200);
    let lie = third.pipe(&["pull"]).code(1);
    let _s = third.settings().bind_to_scope();
    insta::assert_snapshot!(lie.stderr, @r"
    fetched 1 object (4 B) in [ELAPSED]; 0 already in the cache
    failed: x.csv: what the remote links to its md5 has another md5; not used
    error: 1 object could not be moved
      hint: run the command again to retry; what was moved stays moved
    ");
    assert!(!third.exists("x.csv"));
}
