//! `pipe serve`: the real binary on a loopback port, with a model the demo
//! pipeline fits in the test, asked by a small HTTP/1.1 client over plain
//! sockets (so that a test can also send what no well-behaved client would:
//! broken JSON, invalid UTF-8, half a request).
//!
//! The contract is mlseries' API (its tests: the 201 and 200 answers, the
//! two 422 bodies byte for byte), answers identical to `pipe predict`, the
//! model swap under load, bad input, slow clients and the drain on SIGTERM.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::env::{wait_until, TestEnv};

const DEMO_PIPELINE: &str = include_str!("../../pipeline.yaml");
const DEMO_PARAMS: &str = include_str!("../../params.yaml");
const MODEL: &str = "model/model.json";

const POSITIVE: &str = "a masterpiece , brilliant";
const NEGATIVE: &str = "the plot is dreadful and a waste of time .";

const MIN_LENGTH_BODY: &str = r#"{"detail":[{"loc":["body","text"],"msg":"min_length:4","type":"value_error.any_str.min_length","ctx":{"limit_value":4}}]}"#;
const NUMBER_BODY: &str = r#"{"detail":"Review cannot be a number"}"#;

/// The demo project (a small corpus) after `pipe repro`.
fn demo() -> TestEnv {
    let env = TestEnv::new().file("pipeline.yaml", DEMO_PIPELINE);
    env.write(
        "params.yaml",
        &DEMO_PARAMS.replace("rows: 20000", "rows: 2000"),
    );
    assert!(env.read("params.yaml").contains("rows: 2000"));
    env.pipe(&["repro"]).ok();
    env
}

/// A response: status, headers (names lowercased) and body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Json {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// `STATUS BODY`, for comparing whole answers.
    fn line(&self) -> String {
        format!("{} {}", self.status, self.body)
    }
}

/// Parses one HTTP/1.1 response from all the bytes the server sent.
fn parse(bytes: &[u8]) -> Response {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete response: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

/// A running `pipe serve`; killed on drop if still running.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    /// Starts `pipe serve --addr 127.0.0.1:0 ARGS…` and waits until it
    /// listens.
    fn start(env: &TestEnv, args: &[&str]) -> Server {
        let log = env.path(&format!("serve-{}.log", unique()));
        let mut all = vec!["serve", "--addr", "127.0.0.1:0"];
        all.extend(args);
        let child = env
            .command(&all)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .expect("start pipe serve");
        let mut server = Server {
            child,
            port: 0,
            log,
        };
        let listening = wait_until(Duration::from_secs(20), || {
            let log = server.log();
            // The first line names the address, in text or JSON.
            let Some((first, _)) = log.split_once('\n') else {
                return false;
            };
            let addr = match serde_json::from_str::<Json>(first) {
                Ok(event) => event["addr"].as_str().expect("addr").to_string(),
                Err(_) => first
                    .rsplit_once(" on http://")
                    .expect("an address")
                    .1
                    .into(),
            };
            server.port = addr.rsplit_once(':').unwrap().1.parse().expect("a port");
            true
        });
        assert!(listening, "pipe serve did not start:\n{}", server.log());
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// Sends raw bytes on a new connection, reads the answer to the end.
    fn raw(&self, request: &[u8]) -> Response {
        let mut s = self.connect();
        // The server may answer (413) before it read everything.
        let _ = s.write_all(request);
        let mut bytes = Vec::new();
        let _ = s.read_to_end(&mut bytes);
        parse(&bytes)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Response {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("content-type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes)
    }

    fn post(&self, path: &str, body: &Json) -> Response {
        self.post_raw(path, body.to_string().as_bytes())
    }

    fn post_raw(&self, path: &str, body: &[u8]) -> Response {
        self.request("POST", path, Some("application/json"), body)
    }

    fn get(&self, path: &str) -> Response {
        self.request("GET", path, None, b"")
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    /// Waits for the process to exit (at most 30 s).
    fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "pipe serve did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unique() -> usize {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `pipe predict`'s (prediction, score) of each text.
fn pipe_predict(env: &TestEnv, texts: &[&str]) -> Vec<(String, f64)> {
    let mut args = vec!["predict", "--model", MODEL];
    args.extend(texts);
    env.pipe(&args)
        .ok()
        .stdout
        .lines()
        .map(|l| {
            let v: Json = serde_json::from_str(l).unwrap();
            (
                v["prediction"].as_str().unwrap().to_string(),
                v["prediction_score"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn answer(r: &Response) -> (String, f64) {
    let v = r.json();
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["prediction", "prediction_score"],
        "{}",
        r.body
    );
    (
        v["prediction"].as_str().unwrap().to_string(),
        v["prediction_score"].as_f64().unwrap(),
    )
}

// ---------------------------------------------------------------------
// The mlseries API
// ---------------------------------------------------------------------

#[test]
fn mlseries_endpoints_answer_as_its_tests_expect_and_as_pipe_predict_does() {
    let env = demo();
    let server = Server::start(&env, &["--model", MODEL]);
    let texts = [
        POSITIVE,
        NEGATIVE,
        "very pleasant. highly recommend",
        "A MASTERPIECE , BRILLIANT",
        "he said \"unwatchable\" \\ twice — ✓",
    ];
    let want = pipe_predict(&env, &texts);
    let version = env.locked_out_hash("fit", MODEL);
    for (text, want) in texts.iter().zip(&want) {
        let r = server.post("/prediction_job/", &json!({ "text": text }));
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(&answer(&r), want, "{text}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-model-version"), Some(version.as_str()));
        let r = server.post("/review_sentiment/", &json!({ "text": text }));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(&answer(&r), want, "{text}");
    }
    assert_eq!(want[0].0, "positive");
    assert_eq!(want[1].0, "negative");
    // The text is lowercased first.
    assert_eq!(want[0], want[3]);
    // mlseries' three decimals.
    for (_, score) in &want {
        assert_eq!(*score, (score * 1000.0).round() / 1000.0);
    }

    // Both 422 bodies of mlseries' tests, byte for byte.
    for path in ["/prediction_job/", "/review_sentiment/"] {
        let r = server.post(path, &json!({"text": "abc"}));
        assert_eq!(r.line(), format!("422 {MIN_LENGTH_BODY}"), "{path}");
    }
    for number in [json!("1234"), json!("-98765"), json!(1234)] {
        let r = server.post("/review_sentiment/", &json!({ "text": number }));
        assert_eq!(r.line(), format!("422 {NUMBER_BODY}"), "{number}");
    }
    // The ML service itself has no number rule (as in mlseries).
    assert_eq!(
        server
            .post("/prediction_job/", &json!({"text": "1234"}))
            .status,
        201
    );
    // Without the final slash too.
    assert_eq!(
        answer(&server.post("/prediction_job", &json!({ "text": POSITIVE }))),
        want[0]
    );
}

#[test]
fn the_batch_endpoint_answers_every_text_in_order() {
    let env = demo();
    let server = Server::start(&env, &["--model", MODEL]);
    let texts = [POSITIVE, NEGATIVE, "", "zzzz qqqq", "great"];
    let want = pipe_predict(&env, &texts);
    let r = server.post("/predict", &json!({ "texts": texts }));
    assert_eq!(r.status, 200, "{}", r.body);
    let got: Vec<(String, f64)> = r.json()["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["prediction"].as_str().unwrap().to_string(),
                p["prediction_score"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let r = server.post("/predict", &json!({"texts": ["good film", true]}));
    assert_eq!(
        r.line(),
        r#"422 {"detail":[{"loc":["body","texts",1],"msg":"str type expected","type":"type_error.str"}]}"#
    );
    let r = server.post("/predict", &json!({"texts": []}));
    assert_eq!(r.line(), r#"200 {"predictions":[]}"#);
}

#[test]
fn health_metrics_and_openapi() {
    let env = demo();
    let server = Server::start(&env, &["--model", MODEL]);
    let mut health = server.get("/health").json();
    assert_eq!(
        health["model"]["version"],
        env.locked_out_hash("fit", MODEL)
    );
    for volatile in ["loaded_at", "version"] {
        health["model"][volatile] = json!("[…]");
    }
    health["uptime_seconds"] = json!("[…]");
    insta::assert_json_snapshot!(health, @r#"
    {
      "model": {
        "classes": [
          0,
          1
        ],
        "converged": true,
        "labels": [
          "negative",
          "positive"
        ],
        "loaded_at": "[…]",
        "n_iter": 15,
        "params": {
          "fit": {
            "C": 100000.0,
            "max_iter": 1000,
            "tol": 0.0001
          },
          "vectorize": {
            "max_df": 1.0,
            "max_features": null,
            "min_df": 1,
            "ngram_range": [
              1,
              1
            ],
            "sublinear_tf": false
          }
        },
        "path": "model/model.json",
        "version": "[…]",
        "vocabulary_size": 404
      },
      "reloads": {
        "failed": 0,
        "last_error": null,
        "ok": 0
      },
      "status": "ok",
      "uptime_seconds": "[…]"
    }
    "#);

    server.post("/prediction_job/", &json!({ "text": POSITIVE }));
    server.post("/prediction_job/", &json!({ "text": NEGATIVE }));
    server.post("/review_sentiment/", &json!({"text": "abc"}));
    server.get("/nowhere/../etc");
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    // Series come in no fixed order: sorted.
    let mut wanted: Vec<&str> = metrics
        .body
        .lines()
        .filter(|l| {
            l.starts_with("pipe_serve_requests_total")
                || l.starts_with("pipe_serve_predictions_total")
                || l.starts_with("pipe_serve_request_duration_seconds_count")
                || l.starts_with("pipe_serve_model_info")
        })
        .collect();
    wanted.sort_unstable();
    let version = env.locked_out_hash("fit", MODEL);
    insta::assert_snapshot!(wanted.join("\n").replace(&version, "[HASH]"), @r#"
    pipe_serve_model_info{version="[HASH]"} 1
    pipe_serve_predictions_total{prediction="negative"} 1
    pipe_serve_predictions_total{prediction="positive"} 1
    pipe_serve_request_duration_seconds_count{endpoint="/health"} 1
    pipe_serve_request_duration_seconds_count{endpoint="/prediction_job/"} 2
    pipe_serve_request_duration_seconds_count{endpoint="/review_sentiment/"} 1
    pipe_serve_request_duration_seconds_count{endpoint="other"} 1
    pipe_serve_requests_total{endpoint="/health",status="200"} 1
    pipe_serve_requests_total{endpoint="/prediction_job/",status="201"} 2
    pipe_serve_requests_total{endpoint="/review_sentiment/",status="422"} 1
    pipe_serve_requests_total{endpoint="other",status="404"} 1
    "#);

    let openapi = server.get("/openapi.json");
    assert_eq!(openapi.status, 200);
    let paths: Vec<String> = openapi.json()["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        paths,
        [
            "/health",
            "/metrics",
            "/openapi.json",
            "/predict",
            "/prediction_job/",
            "/review_sentiment/"
        ]
    );
}

// ---------------------------------------------------------------------
// Starting: the default model, and what stops it
// ---------------------------------------------------------------------

#[test]
fn serves_the_fit_stage_model_by_default() {
    let env = demo();
    let server = Server::start(&env, &[]);
    assert!(
        server.log().starts_with("Serving model model/model.json ("),
        "{}",
        server.log()
    );
    assert_eq!(
        server
            .post("/prediction_job/", &json!({ "text": POSITIVE }))
            .status,
        201
    );
}

#[test]
fn a_port_in_use_or_a_bad_model_is_one_line_and_exit_2() {
    let env = demo();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = env
        .pipe(&["serve", "--model", MODEL, "--addr", &addr])
        .code(2);
    assert_eq!(
        out.stderr.replace(&addr, "[ADDR]"),
        "error: cannot listen on [ADDR]: Address already in use (os error 98)\n  hint: another process listens there: stop it, or choose another port with --addr\n"
    );
    let out = env
        .pipe(&[
            "serve",
            "--model",
            "model/nope.json",
            "--addr",
            "127.0.0.1:0",
        ])
        .code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: failed to read `model/nope.json`: No such file or directory (os error 2)
      hint: `pipe repro` writes the model with the `fit` stage; or pass a model file with --model
    ");
    env.write("broken.json", "{\"format\": \"pipe-model\", ");
    let out = env
        .pipe(&["serve", "--model", "broken.json", "--addr", "127.0.0.1:0"])
        .code(2);
    insta::assert_snapshot!(out.stderr, @r"
    error: `broken.json` is not a pipe model file: it is not JSON (EOF while parsing a value at line 1 column 25)
      hint: `pipe repro` writes the model with the `fit` stage; or pass a model file with --model
    ");
}

// ---------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------

#[test]
fn bad_input_gets_a_clear_4xx_and_the_service_goes_on() {
    let env = demo();
    let server = Server::start(&env, &["--model", MODEL, "--max-body", "65536"]);
    let job = "/prediction_job/";
    let cases: Vec<(&str, Response)> = vec![
        ("malformed JSON", server.post_raw(job, b"{\"text\": \"good")),
        (
            "missing text",
            server.post(job, &json!({"txet": "good film"})),
        ),
        (
            "text not a string",
            server.post(job, &json!({"text": ["good film"]})),
        ),
        ("text null", server.post(job, &json!({ "text": null }))),
        ("not an object", server.post(job, &json!("good film"))),
        (
            "wrong content type",
            server.request(
                "POST",
                job,
                Some("text/plain"),
                b"{\"text\": \"good film\"}",
            ),
        ),
        ("empty body", server.post_raw(job, b"")),
        (
            "invalid UTF-8",
            server.post_raw(job, b"{\"text\": \"caf\xe9 au lait\"}"),
        ),
        (
            "over the limit",
            server.post(job, &json!({ "text": "a".repeat(70_000) })),
        ),
        (
            "10 MB",
            server.post(job, &json!({ "text": "good ".repeat(2 << 20) })),
        ),
        (
            "unknown path",
            server.post("/nowhere", &json!({"text": "good film"})),
        ),
        ("wrong method", server.get(job)),
    ];
    let shown: String = cases
        .iter()
        .map(|(what, r)| format!("{what}: {}\n", r.line()))
        .collect();
    insta::assert_snapshot!(shown, @r#"
    malformed JSON: 422 {"detail":[{"loc":["body"],"msg":"the body is not valid JSON: EOF while parsing a string at line 1 column 14","type":"value_error.jsondecode","ctx":{"column":14,"line":1}}]}
    missing text: 422 {"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"}]}
    text not a string: 422 {"detail":[{"loc":["body","text"],"msg":"str type expected","type":"type_error.str"}]}
    text null: 422 {"detail":[{"loc":["body","text"],"msg":"none is not an allowed value","type":"type_error.none.not_allowed"}]}
    not an object: 422 {"detail":[{"loc":["body"],"msg":"value is not a valid dict","type":"type_error.dict"}]}
    wrong content type: 415 {"detail":"the body must be JSON (Content-Type: application/json), not text/plain"}
    empty body: 422 {"detail":[{"loc":["body"],"msg":"field required","type":"value_error.missing"}]}
    invalid UTF-8: 422 {"detail":[{"loc":["body",13],"msg":"the body is not valid UTF-8 (at byte 13)","type":"value_error.jsondecode"}]}
    over the limit: 413 {"detail":"the request body is larger than the limit of 65536 bytes"}
    10 MB: 413 {"detail":"the request body is larger than the limit of 65536 bytes"}
    unknown path: 404 {"detail":"Not Found"}
    wrong method: 405 {"detail":"Method Not Allowed"}
    "#);
    for (what, r) in &cases {
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
    }
    // A body sent in chunks, with no length announced, over the limit.
    let mut chunked = b"POST /prediction_job/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 8192, "a".repeat(8192)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(server.raw(&chunked).status, 413);
    // Garbage that is not HTTP at all.
    let mut s = server.connect();
    let _ = s.write_all(b"\x16\x03\x01 hello\r\n\r\n");
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    // Still answering.
    assert_eq!(
        server
            .post("/prediction_job/", &json!({ "text": POSITIVE }))
            .status,
        201
    );
    assert!(!server.log().contains(" 500 "), "{}", server.log());
}

#[test]
fn ten_thousand_slow_clients_time_out_with_408_and_do_not_hold_up_others() {
    let env = demo();
    let server = Server::start(&env, &["--model", MODEL, "--read-timeout", "8", "--quiet"]);
    // 10,000 clients that send part of a request and then nothing.
    let slow: Vec<TcpStream> = (0..10_000)
        .map(|i| {
            let mut s = server.connect();
            let part: &[u8] = if i % 2 == 0 {
                b"POST /prediction_job/ HTTP/1.1\r\nhost: x\r\n"
            } else {
                b"POST /prediction_job/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"text\":"
            };
            s.write_all(part).unwrap();
            s
        })
        .collect();
    // Others are answered meanwhile, while the slow ones still wait.
    for _ in 0..20 {
        let r = server.post("/prediction_job/", &json!({ "text": POSITIVE }));
        assert_eq!(r.status, 201);
    }
    // (The last ones to connect: their timer started last.)
    for s in [&slow[9_998], &slow[9_999]] {
        s.set_nonblocking(true).unwrap();
        let e = (&*s).read(&mut [0; 1]).expect_err("no answer yet");
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        s.set_nonblocking(false).unwrap();
    }
    // Each slow client is told, after the read timeout.
    let mut answers = std::collections::BTreeMap::new();
    for mut s in slow {
        let mut bytes = Vec::new();
        let _ = s.read_to_end(&mut bytes);
        *answers.entry(parse(&bytes).line()).or_insert(0) += 1;
    }
    insta::assert_debug_snapshot!(answers, @r#"
    {
        "408 {\"detail\":\"the request body did not arrive within 8 s\"}": 5000,
        "408 {\"detail\":\"the request headers did not arrive within 8 s\"}": 5000,
    }
    "#);
}

// ---------------------------------------------------------------------
// Model updates
// ---------------------------------------------------------------------

#[test]
fn a_new_model_is_swapped_in_while_requests_run_and_a_bad_one_is_refused() {
    let env = demo();
    let old_version = env.locked_out_hash("fit", MODEL);
    let server = Server::start(&env, &["--watch-interval", "0.05", "--quiet"]);
    let before = answer(&server.post("/prediction_job/", &json!({ "text": NEGATIVE })));

    // Requests run all along, on 4 connections.
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut versions = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let body = json!({ "text": NEGATIVE }).to_string();
                    write!(s, "POST /prediction_job/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).unwrap();
                    let mut bytes = Vec::new();
                    s.read_to_end(&mut bytes).unwrap();
                    let r = parse(&bytes);
                    assert_eq!(r.status, 201, "{}", r.body);
                    let v = r.header("x-model-version").unwrap().to_string();
                    if versions.last() != Some(&v) {
                        versions.push(v);
                    }
                }
                versions
            })
        })
        .collect();

    // A new model: `pipe repro` after a change of params replaces the file.
    std::thread::sleep(Duration::from_millis(200));
    env.write(
        "params.yaml",
        &env.read("params.yaml").replace("C: 100000.0", "C: 0.5"),
    );
    env.pipe(&["repro"]).ok();
    let new_version = env.locked_out_hash("fit", MODEL);
    assert_ne!(new_version, old_version);
    let swapped = wait_until(Duration::from_secs(10), || {
        server.get("/health").json()["model"]["version"] == new_version
    });
    assert!(swapped, "{}", server.log());
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        let versions = client.join().expect("no request failed");
        // Each client saw the old model, then the new one, and no other.
        assert_eq!(versions.first(), Some(&old_version));
        assert_eq!(versions.last(), Some(&new_version));
        assert!(versions.len() <= 2, "{versions:?}");
    }
    let after = answer(&server.post("/prediction_job/", &json!({ "text": NEGATIVE })));
    assert_ne!(after, before, "a weaker C gives another score");
    assert_eq!(after, pipe_predict(&env, &[NEGATIVE])[0]);

    // A file that is not a model: reported, the new model serves on.
    std::fs::write(env.path(MODEL), "{\"format\": 1").unwrap();
    assert!(wait_until(Duration::from_secs(10), || server
        .log()
        .contains("is not a pipe model file")));
    let r = server.post("/prediction_job/", &json!({ "text": NEGATIVE }));
    assert_eq!((r.status, answer(&r)), (201, after.clone()));
    let health = server.get("/health").json();
    assert_eq!(health["model"]["version"], new_version);
    assert!(
        health["reloads"]["failed"].as_u64().unwrap() >= 1,
        "{health}"
    );

    // SIGHUP reloads on demand (here: the model of the lock, restored).
    env.pipe(&["checkout", "-f"]).ok();
    let _ = std::fs::metadata(env.path(MODEL)).unwrap();
    server.signal(libc::SIGHUP);
    assert!(wait_until(Duration::from_secs(10), || server
        .get("/health")
        .json()["model"]["version"]
        == new_version
        && server.log().contains("(SIGHUP)")));
    let log = server
        .log()
        .replace(&old_version[..12], "[OLD]")
        .replace(&new_version[..12], "[NEW]");
    let lines: Vec<&str> = log.lines().skip(1).collect();
    // One swap, one refusal of the broken file, the reload on SIGHUP (the
    // lock's model again), and nothing else (`pipe repro` may have been
    // seen with no model file for a moment: said, the old model served on).
    let swap = "Model model/model.json reloaded (file changed): [OLD] -> [NEW]";
    assert_eq!(lines.iter().filter(|l| **l == swap).count(), 1, "{log}");
    let broken = "warning: cannot reload the model model/model.json: `model/model.json` is not a pipe model file: ";
    let refused: Vec<&&str> = lines.iter().filter(|l| l.starts_with(broken)).collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused[0].ends_with("; still serving [NEW]"), "{log}");
    for line in &lines {
        let missing = line.starts_with("warning: cannot reload the model model/model.json: failed to read `model/model.json`: No such file")
            && line.ends_with("; still serving [OLD]");
        let hup = *line == "Model model/model.json unchanged (SIGHUP): still [NEW]";
        assert!(
            *line == swap || line.starts_with(broken) || missing || hup,
            "{line}\n{log}"
        );
    }
}

// ---------------------------------------------------------------------
// Stopping, logs, the front server
// ---------------------------------------------------------------------

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let env = demo();
    let mut server = Server::start(&env, &["--model", MODEL]);
    // A request whose body is still coming when the signal arrives.
    let body = json!({ "text": POSITIVE }).to_string();
    let mut s = server.connect();
    write!(s, "POST /prediction_job/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}", body.len(), &body[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    server.signal(libc::SIGTERM);
    assert!(wait_until(Duration::from_secs(5), || server
        .log()
        .contains("SIGTERM")));
    // No new connections.
    assert!(wait_until(Duration::from_secs(5), || TcpStream::connect((
        "127.0.0.1",
        server.port
    ))
    .is_err()));
    s.write_all(&body.as_bytes()[5..]).unwrap();
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).unwrap();
    let r = parse(&bytes);
    assert_eq!(r.status, 201, "{}", r.body);
    let status = server.wait();
    assert_eq!(status.code(), Some(0), "{}", server.log());
    let log = server.log();
    let tail: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split_once(' ').map_or(l, |x| x.1))
        .collect();
    assert_eq!(tail.len(), 3, "{log}");
    assert!(tail[1].starts_with("POST /prediction_job/ 201 "), "{log}");
    assert_eq!(
        [tail[0], tail[2]],
        ["finishing the requests of 1 open connection(s)", "Stopped"]
    );
}

#[test]
fn logs_are_json_lines_or_nothing_with_quiet() {
    let env = demo();
    let mut server = Server::start(&env, &["--model", MODEL, "--log-format", "json"]);
    server.post("/prediction_job/", &json!({ "text": POSITIVE }));
    server.get("/health?token=s3cret");
    server.signal(libc::SIGINT);
    assert_eq!(server.wait().code(), Some(0));
    let events: Vec<Json> = server
        .log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let shown: Vec<String> = events
        .iter()
        .map(|e| match e["event"].as_str().unwrap() {
            "request" => format!(
                "request {} {} {} {}",
                e["method"],
                e["path"],
                e["status"],
                e["latency_ms"].is_f64()
            ),
            other => other.to_string(),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "listening",
            r#"request "POST" "/prediction_job/" 201 true"#,
            r#"request "GET" "/health" 200 true"#,
            "draining",
            "stopped"
        ]
    );
    assert!(!server.log().contains("s3cret"));

    let mut server = Server::start(&env, &["--model", MODEL, "--quiet"]);
    server.post("/prediction_job/", &json!({ "text": POSITIVE }));
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait().code(), Some(0));
    let log = server.log();
    // Whether the server has seen the client's close yet when SIGTERM
    // comes is a race: the count of open connections is 0 or 1.
    let lines: Vec<String> = log
        .lines()
        .skip(1)
        .map(|l| l.replace(" of 1 open", " of 0 open"))
        .collect();
    assert_eq!(
        lines,
        [
            "SIGTERM: finishing the requests of 0 open connection(s)",
            "Stopped"
        ]
    );
}

#[test]
fn a_front_server_validates_and_forwards_to_the_ml_service() {
    let env = demo();
    let ml = Server::start(&env, &["--model", MODEL, "--quiet"]);
    let url = format!("http://127.0.0.1:{}", ml.port);
    let front = Server::start(&env, &["--upstream", &url, "--quiet"]);
    let direct = answer(&ml.post("/review_sentiment/", &json!({ "text": POSITIVE })));
    let r = front.post("/review_sentiment/", &json!({ "text": POSITIVE }));
    assert_eq!((r.status, answer(&r)), (200, direct));
    assert_eq!(
        front
            .post("/review_sentiment/", &json!({"text": "1234"}))
            .line(),
        format!("422 {NUMBER_BODY}")
    );
    assert_eq!(
        front
            .post("/review_sentiment/", &json!({"text": "abc"}))
            .line(),
        format!("422 {MIN_LENGTH_BODY}")
    );
    assert_eq!(
        front
            .post("/prediction_job/", &json!({"text": "good film"}))
            .status,
        404
    );
    drop(ml);
    let r = front.post("/review_sentiment/", &json!({ "text": POSITIVE }));
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.body.starts_with(&format!(
            "{{\"detail\":\"the prediction service at {url}/ failed: "
        )),
        "{}",
        r.body
    );
}

#[test]
fn past_max_connections_a_client_gets_503_and_the_others_are_served() {
    let env = demo();
    let server = Server::start(
        &env,
        &["--model", MODEL, "--max-connections", "2", "--quiet"],
    );
    let mut held: Vec<TcpStream> = (0..2).map(|_| server.connect()).collect();
    // The two are accepted (and counted) before the third comes.
    let body = json!({ "text": POSITIVE }).to_string();
    for s in &mut held {
        write!(s, "POST /prediction_job/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).unwrap();
        let mut buf = [0; 4096];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 201"));
    }
    let r = server.get("/health");
    assert_eq!(
        (r.line(), r.header("retry-after")),
        (
            r#"503 {"detail":"the service has 2 open connections, its limit: try again later"}"#
                .to_string(),
            Some("1")
        )
    );
    drop(held);
    assert!(wait_until(Duration::from_secs(10), || {
        server.get("/health").status == 200
    }));
}
