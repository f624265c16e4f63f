//! Slurm jobs on nodes that share no filesystem with the project
//! (`[executor] files = "remote"`): the job downloads the stage's inputs
//! from the remote (a real S3 server, moto) into a scratch directory, runs
//! there, and uploads its outputs and run-cache entry; `pipe` brings them
//! back. The single-node cluster shares the disk, so the tests prove the
//! job used only what the remote gave it: it lists its directory.

use crate::env::TestEnv;
use crate::services::{self, S3};
use crate::slurm::{on_cluster, settings, steady, submitted};

const SECRET: &str = "s3cr3t-staged-never-shown";

/// A project on the test cluster whose jobs go through a fresh bucket.
fn staged(yaml: &str, tag: &str) -> Option<(TestEnv, &'static S3, String)> {
    let s3 = services::s3()?;
    let (env, _) = on_cluster(yaml)?;
    let env = env
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_REGION", "us-east-1");
    let bucket = s3.bucket(tag);
    env.write(
        "pipe.toml",
        &format!(
            "[core]\nremote = \"origin\"\n\n[remote.origin]\nurl = \"s3://{bucket}/team\"\nendpoint_url = \"{}\"\nallow_http = true\n\n[executor]\nkind = \"slurm\"\nfiles = \"remote\"\n",
            s3.endpoint
        ),
    );
    // The secret key is a local setting: it reaches the job through the
    // environment Slurm passes on, never through a file.
    env.write(
        "pipe.local.toml",
        &format!("[remote.origin]\nsecret_access_key = \"{SECRET}\"\n"),
    );
    Some((env, s3, bucket))
}

#[test]
fn a_job_works_in_a_scratch_directory_with_only_what_the_remote_gave_it() {
    let Some((env, s3, bucket)) = staged(
        r#"
        stages:
          st_prepare:
            cmd: mkdir -p data && cp raw.txt data/a.txt && echo "$SLURM_JOB_ID" > data/job.txt
            deps: [raw.txt]
            outs: [data/]
          st_count:
            cmd:
              - files=$(find . -path ./.pipeline-cache -prune -o -type f -print | sort); echo "$files" > listing.txt
              - pwd > where.txt
              - wc -l < data/a.txt > count.txt
              - 'echo "{\"lines\": $(cat count.txt)}" > score.json; echo "counted with $(cat params.yaml)"'
            deps: [data]
            params: [threshold]
            outs: [count.txt, listing.txt, where.txt]
            metrics:
              - score.json: {cache: false}
        "#,
        "scratch",
    ) else {
        return;
    };
    env.write("raw.txt", "one\ntwo\nthree\n");
    env.write("params.yaml", "threshold: 3\n");
    env.write("unrelated.txt", "not an input\n");
    let out = env.pipe(&["repro"]).ok();
    let prepare = submitted(&out, "st_prepare");
    settings(&env).bind(|| {
        insta::assert_snapshot!(out.stdout, @r#"
        > mkdir -p data && cp raw.txt data/a.txt && echo "$SLURM_JOB_ID" > data/job.txt
        > files=$(find . -path ./.pipeline-cache -prune -o -type f -print | sort); echo "$files" > listing.txt
        > pwd > where.txt
        > wc -l < data/a.txt > count.txt
        > echo "{\"lines\": $(cat count.txt)}" > score.json; echo "counted with $(cat params.yaml)"
        [st_count] counted with threshold: 3
        "#);
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage st_prepare: never run
        Stage st_prepare: submitted as Slurm job [JOB]
        ✓ st_prepare  ran  [ELAPSED]
        Running stage st_count: never run
        Stage st_count: submitted as Slurm job [JOB]
        ✓ st_count    ran  [ELAPSED]
        2 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
        ");
    });
    // The job saw its deps and params file, nothing else of the project.
    assert_eq!(
        env.read("listing.txt"),
        "./data/a.txt\n./data/job.txt\n./params.yaml\n"
    );
    let scratch = env.read("where.txt");
    assert!(
        !scratch.starts_with(&env.root().display().to_string()) && scratch.contains("/pipe-job-"),
        "{scratch}"
    );
    // ... and was removed as the job ended.
    assert!(!std::path::Path::new(scratch.trim()).exists());
    assert_eq!(env.read("data/job.txt"), format!("{prepare}\n"));
    assert_eq!(env.read("count.txt"), "3\n");
    assert_eq!(env.read("score.json"), "{\"lines\": 3}\n");
    assert_eq!(env.read("raw.txt"), "one\ntwo\nthree\n");
    let status = env.pipe(&["status"]).ok();
    assert_eq!(status.stdout, "Everything is up to date.\n");
    // The results were read and deleted; the run cache has the stage that
    // it serves (st_count writes an uncached metric).
    assert_eq!(s3.keys(&bucket, "team/v1/jobs/"), Vec::<String>::new());
    assert_eq!(s3.keys(&bucket, "team/v1/runs/").len(), 1);
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(SECRET), "{text}");
    }

    // A teammate restores what the cluster computed without running it.
    let other = TestEnv::new()
        .env("AWS_ACCESS_KEY_ID", services::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .file("pipeline.yaml", &env.read("pipeline.yaml"))
        .file("pipe.toml", &env.read("pipe.toml"))
        .file("raw.txt", "one\ntwo\nthree\n")
        .file("params.yaml", "threshold: 3\n");
    let pulled = other
        .pipe(&["repro", "--pull", "--executor", "local", "st_prepare"])
        .ok();
    settings(&other).bind(|| {
        insta::assert_snapshot!(pulled.stderr, @r"
        Pulled stage st_prepare from the run cache of remote origin
        ✓ st_prepare  restored  [ELAPSED]
        0 ran, 1 restored, 0 up to date, 0 failed in [ELAPSED]
        ");
    });
    assert_eq!(other.read("data/job.txt"), format!("{prepare}\n"));
}

#[test]
fn a_job_that_fails_on_its_node_says_why_with_its_output() {
    let Some((env, s3, bucket)) = staged(
        r#"
        stages:
          st_undeclared:
            cmd: [echo starting, cat notes.txt > copy.txt]
            outs: [copy.txt]
        "#,
        "fails",
    ) else {
        return;
    };
    // In the project, but not a dep: the node does not get it.
    env.write("notes.txt", "hello\n");
    let out = env.pipe(&["repro"]).code(1);
    settings(&env).bind(|| {
        insta::assert_snapshot!(steady(&out.stderr), @r#"
        Running stage st_undeclared: never run
        Stage st_undeclared: submitted as Slurm job [JOB]
        [st_undeclared] cat: notes.txt: No such file or directory
        ✗ st_undeclared  failed: `cat notes.txt > copy.txt` exited with code 1 (Slurm job [JOB], on its node)
            hint: with files = "remote" the job has only the stage's deps and params files: a file its commands read must be a dep
        0 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
        "#);
    });
    assert!(env.locked_stages().is_empty());
    assert!(!env.exists("copy.txt"));
    assert_eq!(s3.keys(&bucket, "team/v1/jobs/"), Vec::<String>::new());
}

#[test]
fn a_remote_that_cannot_be_reached_fails_the_stage_before_anything_is_submitted() {
    let Some((env, _, _)) = staged(
        r#"
        stages:
          st_unreachable:
            cmd: echo hi > hi.txt
            outs: [hi.txt]
        "#,
        "down",
    ) else {
        return;
    };
    let port = services::free_port();
    env.write(
        "pipe.toml",
        &format!("[remote.origin]\nurl = \"s3://nobucket/team\"\nendpoint_url = \"http://127.0.0.1:{port}\"\nallow_http = true\n\n[executor]\nkind = \"slurm\"\nfiles = \"remote\"\n"),
    );
    let out = env.pipe(&["repro"]).code(1);
    let mut s = settings(&env);
    s.add_filter(&format!("127.0.0.1:{port}"), "127.0.0.1:[PORT]");
    s.bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
        Running stage st_unreachable: never run
        ✗ st_unreachable  failed: remote `origin` (s3://nobucket/team) cannot be reached: connection refused at http://127.0.0.1:[PORT]
            hint: is the server running? check `endpoint_url` (`pipe remote list`) and the network; the transfer can be run again and moves only what is missing
        0 ran, 0 restored, 0 up to date, 1 failed in [ELAPSED]
        ");
    });
    assert!(!out.stderr.contains("submitted"));
}

#[test]
fn built_in_stages_run_on_the_node_with_their_params() {
    let yaml = "
        stages:
          sb_synth:
            uses: synth
            with: {out: data/reviews.tsv}
            params: [synth]
          sb_split:
            uses: split
            with: {input: data/reviews.tsv, train: data/train.parquet, test: data/test.parquet}
            params: [split]
        ";
    let params = "synth: {rows: 300, seed: 3, noise: 0.05}\nsplit: {text_column: Phrase, label_column: Sentiment, classes: {0: 0, 4: 1}, test_size: 0.3, seed: 7}\n";
    let Some((env, _, _)) = staged(yaml, "builtin") else {
        return;
    };
    env.write("params.yaml", params);
    let out = env.pipe(&["repro"]).ok();
    submitted(&out, "sb_split");
    let local = TestEnv::new().pipeline(yaml).file("params.yaml", params);
    local.pipe(&["repro"]).ok();
    assert_eq!(env.read("data/reviews.tsv"), local.read("data/reviews.tsv"));
    // The same outputs, byte for byte, and the same fingerprints.
    assert_eq!(env.read("pipeline.lock"), local.read("pipeline.lock"));
}

#[test]
fn after_kill_9_the_next_run_brings_back_what_the_job_left() {
    let Some((env, s3, bucket)) = staged("stages: {}\n", "adopted") else {
        return;
    };
    // The node has no view of the project; the test's single node does, so
    // the job waits on absolute paths for the test to let it go.
    let root = env.root().display().to_string();
    env.write(
        "pipeline.yaml",
        &format!(
            "stages:\n  sk_train:\n    cmd: >-\n      echo \"$SLURM_JOB_ID\" > {root}/job.id;\n      while [ ! -e {root}/go ]; do sleep 0.1; done; echo trained > model.txt\n    outs: [model.txt]\n"
        ),
    );
    let mut repro = env.spawn(&["repro"]);
    assert!(
        crate::env::wait_until(crate::slurm::JOB, || std::fs::read_to_string(
            env.path("job.id")
        )
        .is_ok_and(|id| id.ends_with('\n'))),
        "the job never started"
    );
    repro.kill();
    let _ = repro.wait(crate::slurm::JOB);
    env.write("go", "");
    let out = env.pipe(&["repro"]).ok();
    settings(&env).bind(|| {
        insta::assert_snapshot!(steady(&out.stderr), @r"
        Running stage sk_train: never run
        Stage sk_train: following Slurm job [JOB], submitted by an earlier run that was stopped
        ✓ sk_train  ran  [ELAPSED]
        1 ran, 0 restored, 0 up to date, 0 failed in [ELAPSED]
        ");
    });
    assert_eq!(env.read("model.txt"), "trained\n");
    assert_eq!(env.locked_stages(), ["sk_train"]);
    assert_eq!(s3.keys(&bucket, "team/v1/jobs/"), Vec::<String>::new());
}

#[test]
fn a_persistent_output_starts_on_the_node_from_what_it_held() {
    let Some((env, _, _)) = staged(
        r#"
        stages:
          sp_log:
            cmd: echo "run $(wc -l < history.txt)" >> history.txt
            outs:
              - history.txt: {persist: true, cache: false}
        "#,
        "persist",
    ) else {
        return;
    };
    env.write("history.txt", "started\n");
    env.pipe(&["repro"]).ok();
    env.pipe(&["repro", "-f"]).ok();
    assert_eq!(env.read("history.txt"), "started\nrun 1\nrun 2\n");
}
