//! Fuzzing the readers of pipeline.yaml, params files and pipeline.lock.
//!
//! A proptest suite, in its own test binary so that it can cap the address
//! space of its process (`RLIMIT_AS`, [`MEMORY_LIMIT`]): an input that makes
//! a reader allocate without bound aborts the binary instead of the machine
//! running out of memory, and the run fails. Two kinds of input:
//!
//! - **structured** pipelines: stages built from pools of valid and invalid
//!   pieces (names, `cmd`, `uses`/`with`, deps, outs, params, `foreach`,
//!   `matrix`, `vars`, `wdir`, `${…}` templates, YAML anchors and aliases),
//!   with a params.yaml, a vars file and another params file beside them;
//! - **mutated** files: valid pipeline, params and lock files with random
//!   bytes flipped, inserted, deleted, repeated or cut.
//!
//! Each case calls the library as the commands do, in-process:
//! `spec::resolve::resolve` (then `graph::Dag::build` and a selection when
//! it resolves) and `lock::LockFile::from_text`, on a thread of its own, and
//! fails on a panic, or when no answer comes within [`DEADLINE`].
//!
//! The number of cases per test is `PROPTEST_CASES` when set, otherwise a
//! few hundred, about a minute in all with a debug build on two cores. To
//! search longer: `PROPTEST_CASES=100000 cargo test --release --test fuzz`.

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

use pipe::graph::{Dag, Selection};
use pipe::lock::LockFile;
use pipe::spec::resolve::resolve;

/// The most address space the process may take.
const MEMORY_LIMIT: u64 = 4 << 30;

/// How long one case may take.
const DEADLINE: Duration = Duration::from_secs(10);

fn limit_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let limit = libc::rlimit {
            rlim_cur: MEMORY_LIMIT,
            rlim_max: MEMORY_LIMIT,
        };
        // SAFETY: setrlimit reads the struct it is given and nothing else.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
        assert_eq!(
            rc,
            0,
            "setrlimit(RLIMIT_AS): {}",
            std::io::Error::last_os_error()
        );
    });
}

/// `cases` unless `PROPTEST_CASES` says otherwise.
fn config(cases: u32) -> Config {
    limit_memory();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        max_shrink_iters: 2000,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..Config::default()
    }
}

/// Runs `work` on a thread; panics if it panics or takes longer than
/// [`DEADLINE`], naming `input` either way.
fn bounded(input: &str, work: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("fuzz case".into())
        .spawn(move || {
            work();
            let _ = tx.send(());
        })
        .expect("a thread");
    match rx.recv_timeout(DEADLINE) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no answer within {DEADLINE:?} for:\n{input}")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let payload = worker.join().expect_err("the worker panicked");
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("panicked ({message}) on:\n{input}")
        }
    }
}

/// The files of one project.
#[derive(Debug, Clone)]
struct Project {
    pipeline: String,
    params: Option<String>,
    vars: Option<String>,
    other: Option<String>,
}

/// Resolves the project in a temporary directory, then builds and walks
/// its DAG; any `Err` is fine, a panic or a hang is not.
fn load(project: Project) {
    let shown = format!(
        "--- pipeline.yaml\n{}\n--- params.yaml\n{}\n--- vars.yaml\n{}\n--- other.yaml\n{}",
        project.pipeline,
        project.params.as_deref().unwrap_or("(none)"),
        project.vars.as_deref().unwrap_or("(none)"),
        project.other.as_deref().unwrap_or("(none)"),
    );
    bounded(&shown, move || {
        let dir = tempfile::tempdir().expect("a temp dir");
        for (name, text) in [
            ("params.yaml", &project.params),
            ("vars.yaml", &project.vars),
            ("other.yaml", &project.other),
        ] {
            if let Some(text) = text {
                std::fs::write(dir.path().join(name), text).expect("write");
            }
        }
        std::fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
        if let Ok(pipeline) = resolve(dir.path(), &project.pipeline) {
            if let Ok(dag) = Dag::build(&pipeline) {
                assert_eq!(dag.order().len(), pipeline.stages.len());
                for s in &pipeline.stages {
                    assert!(pipeline.stage(&s.name).is_some());
                }
                let first = pipeline.stages.first().map(|s| s.name.clone());
                for mode in [
                    Selection::WithUpstream,
                    Selection::Single,
                    Selection::WithDownstream,
                ] {
                    let _ = dag.select(
                        &pipeline,
                        &first.clone().into_iter().collect::<Vec<_>>(),
                        mode,
                    );
                }
            }
        }
    });
}

// ------------------------------------------------------------ structured

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(items).prop_map(str::to_string)
}

/// Paths, valid and not.
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => pick(&[
            "data/raw.csv", "out", "out/a.txt", "out/b.txt", "model/", "model/w.bin",
            "metrics.json", "a", "a/b", "a/b/c", "sub/x", "data", "data2/x", "\"${item}.txt\"",
            "\"out/${key}.txt\"", "\"${dir}/m.bin\"", "params.yaml",
        ]),
        1 => pick(&[
            "../x", "/abs/path", ".", "./", "a/../..", ".git", ".git/config", "pipeline.yaml",
            "pipeline.lock", ".pipeline-cache/v1", "sub/.gitignore", ".dvc/x", "dvc.yaml", "\"\"",
            "\"${nope}\"", "\"${item.a.b.c}\"", "a//b/./c/", "\"é/ü\"", "\"a b\"", "\"${\"",
            "\"\\\\${x}\"", "[a, b]", "{a: 1}", "~", "1", "true",
        ]),
        1 => (1usize..400).prop_map(|n| "n".repeat(n)),
        1 => (1usize..2200).prop_map(|n| vec!["d"; n].join("/")),
    ]
}

fn command() -> impl Strategy<Value = String> {
    prop_oneof![
        pick(&[
            "echo hi > out/a.txt",
            "\"echo ${item} > out/${item}.txt\"",
            "\"python t.py ${fit.C}\"",
            "\"echo ${item.model} ${item.lr}\"",
            "\"echo ${key}\"",
            "\"echo \\\\${HOME}\"",
            "\"echo ${\"",
            "\"echo ${}\"",
            "\"echo ${fit}\"",
            "\"echo ${list}\"",
            "\"${name}\"",
            "[a, b]",
            "[]",
            "[\"\"]",
            "\"\"",
            "{a: 1}",
            "~",
            "12",
            "[echo a, [nested]]",
        ]),
        "[a-z ${}.>]{0,30}".prop_map(|s| format!("{s:?}")),
    ]
}

fn params_entry() -> impl Strategy<Value = String> {
    pick(&[
        "fit",
        "fit.C",
        "nokey",
        "split",
        "synth",
        "vectorize",
        "\"{other.yaml: [a]}\"",
        "{other.yaml: [a, b.c]}",
        "{other.yaml: }",
        "{missing.yaml: [x]}",
        "other.yaml",
        "vars.yaml",
        "\"${name}\"",
        "[a]",
        "{a: 1, b: 2}",
        "\"\"",
        "list.0",
        "fit.C.D",
        "{../up.yaml: [a]}",
        "\"{/abs.yaml: [a]}\"",
    ])
}

fn list_of<S: Strategy<Value = String>>(s: S, max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(s, 0..max).prop_map(|v| format!("[{}]", v.join(", ")))
}

/// A stage body, indented by `indent`: some of cmd/uses/with/deps/outs/…
fn stage_body(indent: &'static str) -> impl Strategy<Value = String> {
    let with = prop_oneof![
        Just("{out: data/r.tsv}".to_string()),
        Just("{input: data/r.tsv, train: tr.parquet, test: te.parquet}".to_string()),
        Just("{ot: x}".to_string()),
        Just("{out: \"${item}.tsv\"}".to_string()),
        Just("{out: [a]}".to_string()),
        Just("{out: .git/x}".to_string()),
        path().prop_map(|p| format!("{{out: {p}}}")),
    ];
    (
        proptest::option::of(command()),
        proptest::option::of(pick(&[
            "synth",
            "split",
            "vectorize",
            "fit",
            "score",
            "nope",
            "\"${name}\"",
        ])),
        proptest::option::of(with),
        proptest::option::of(list_of(path(), 4)),
        proptest::option::of(list_of(path(), 4)),
        proptest::option::of(list_of(params_entry(), 3)),
        proptest::option::of(pick(&[
            "sub",
            ".",
            "..",
            "\"${item}\"",
            "/abs",
            "sub/deeper",
        ])),
        proptest::option::of(list_of(path(), 2)),
        proptest::option::of(pick(&["true", "false", "maybe"])),
        proptest::option::of(pick(&[
            "cache: false",
            "persist: true",
            "cahce: 1",
            "desc: x",
        ])),
    )
        .prop_map(
            move |(cmd, uses, with, deps, outs, params, wdir, metrics, frozen, out_opts)| {
                let mut s = String::new();
                let mut field = |k: &str, v: Option<String>| {
                    if let Some(v) = v {
                        s.push_str(&format!("{indent}{k}: {v}\n"));
                    }
                };
                field("cmd", cmd);
                field("uses", uses);
                field("with", with);
                field("deps", deps);
                field("outs", outs);
                field("params", params);
                field("wdir", wdir);
                field("metrics", metrics);
                field("frozen", frozen);
                if let Some(o) = out_opts {
                    s.push_str(&format!("{indent}plots:\n{indent}  - p.csv: {{{o}}}\n"));
                }
                s
            },
        )
}

/// The generator fields of a stage: none, `foreach` + `do`, or `matrix`.
fn generator() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        2 => prop_oneof![
            pick(&["[a, b]", "[1, 2, 3]", "\"${list}\"", "\"${models}\"", "{x: {n: 1}, y: {n: 2}}",
                   "[]", "{}", "12", "\"${nope}\"", "[[1, 2], {a: b}]", "[a, a]", "\"${fit}\""]),
            (0usize..300_000).prop_map(|n| format!("[{}]", "x,".repeat(n % 2000).trim_end_matches(','))),
        ]
        .prop_flat_map(|items| stage_body("      ").prop_map(move |body| {
            format!("    foreach: {items}\n    do:\n{body}")
        })),
        // Small grids, or ones far past the stage limit (refused at once):
        // tens of thousands of stages are allowed but slow in a debug build.
        2 => prop_oneof![(1usize..4, 0usize..6), (6usize..12, 10usize..20)].prop_map(|(keys, values)| {
            let mut s = String::from("    matrix:\n");
            for k in 0..keys {
                let vals: Vec<String> = (0..values).map(|v| format!("v{v}")).collect();
                s.push_str(&format!("      k{k}: [{}]\n", vals.join(", ")));
            }
            s
        }),
        1 => pick(&["    matrix: {model: \"${models}\", lr: [0.1, 0.01]}\n",
                    "    matrix: {a: [1, {b: 2}], c: [[1]]}\n", "    matrix: []\n",
                    "    matrix: {a: 1}\n", "    do: {cmd: x}\n"]),
    ]
}

fn stage() -> impl Strategy<Value = String> {
    (
        pick(&[
            "a", "b", "c", "train", "prepare", "s@x", "a/b", "\"\"", "\"x y\"", "é", "stages", "a",
        ]),
        generator(),
        stage_body("    "),
    )
        .prop_map(|(name, gen, body)| format!("  {name}:\n{gen}{body}"))
}

fn vars() -> impl Strategy<Value = String> {
    proptest::option::of(list_of(
        pick(&[
            "vars.yaml",
            "vars.yaml:name,dir",
            "vars.yaml:nope",
            "missing.yaml",
            "{name: m, dir: out}",
            "{list: [a, b]}",
            "1",
            "../x.yaml",
            "other.yaml",
            "\"vars.yaml:\"",
        ]),
        3,
    ))
    .prop_map(|v| v.map(|v| format!("vars: {v}\n")).unwrap_or_default())
}

fn params_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        pick(&[
            "fit: {C: 0.5, max_iter: 100, tol: 0.0001}\nsplit: {test_size: 0.2, seed: 42}\nsynth: {rows: 10}\nlist: [a, b]\nmodels: [cnn, xgb]\nname: demo\n",
            "fit: {C: -1, max_iter: -5, tol: .nan}\nsplit: {test_size: 2.5, classes: {0: 0, 4: 1, 5: 1}}\nvectorize: {ngram_range: [3, 1], min_df: -1, max_df: 7}\n",
            "synth: {rows: 1e308, noise: .inf}\nsplit: {test_size: -1, stratify: maybe}\nvectorize: {max_features: 0, ngram_range: [1]}\n",
            "split: {classes: [], text_column: 1, label_column: {a: b}}\nfit: {C: 0}\n",
            "[1, 2]\n", "\"just text\"\n", "fit: {C: 1\n", "a: &a [1, 2]\nb: [*a, *a]\n", "",
            "fit:\n  C: !!float 1\nlist: !tag [a]\n",
        ]),
        (1usize..200).prop_map(|d| format!("{}1{}\n", "{a: ".repeat(d), "}".repeat(d))),
        Just(format!("a: &a [{}]\nb: &b [{}]\nc: [{}]\n", vec!["x"; 3000].join(","), vec!["*a"; 60].join(","), vec!["*b"; 60].join(","))),
    ])
}

fn structured() -> impl Strategy<Value = Project> {
    (
        vars(),
        proptest::collection::vec(stage(), 0..5),
        params_text(),
        proptest::option::of(pick(&["name: v\ndir: d\n", "- 1\n", "name: {a: b}\n", ""])),
        proptest::option::of(pick(&["a: 1\nb: {c: 2}\n", "a: [\n"])),
        proptest::sample::select(&[0u8, 0, 0, 1, 2, 3][..]),
    )
        .prop_map(|(vars, stages, params, vars_file, other, twist)| {
            let mut pipeline = format!("{vars}stages:\n{}", stages.concat());
            match twist {
                // A stage written as a flow mapping, an anchor and alias
                // shared by two stages, a duplicate stage.
                1 => pipeline.push_str("  flow: {cmd: echo x, outs: [f.txt]}\n"),
                2 => pipeline.push_str("  anchored: &st\n    cmd: echo a\n  aliased: *st\n"),
                3 => pipeline.push_str("  a:\n    cmd: again\n"),
                _ => {}
            }
            Project {
                pipeline,
                params,
                vars: vars_file,
                other,
            }
        })
}

// ------------------------------------------------------------ mutations

const PIPELINE: &str = "vars:\n  - name: model\nstages:\n  prepare:\n    cmd: echo ${fit.C} > data/prep.csv\n    deps: [data/raw.csv]\n    params: [fit.C]\n    outs: [data/prep.csv]\n  train:\n    foreach: [a, b]\n    do:\n      cmd: echo ${item} > out/${item}.txt\n      deps: [data/prep.csv]\n      outs: [\"out/${item}.txt\"]\n  grid:\n    matrix: {m: [cnn, xgb], lr: [0.1, 0.01]}\n    cmd: echo ${item.m} ${item.lr}\n  gen:\n    uses: synth\n    with: {out: data/raw.csv}\n    params: [synth]\n  score:\n    cmd: [echo a, echo b]\n    wdir: sub\n    deps: [../out/a.txt]\n    metrics: [m.json]\n    plots:\n      - p.csv: {cache: false}\n";

const PARAMS: &str =
    "fit:\n  C: 0.5\n  max_iter: 100\nsynth:\n  rows: 10\n  seed: 42\nlist: [a, b]\n";

const LOCK: &str = "# Written by `pipe repro`.\nschema: 1\nstages:\n  gen:\n    uses: synth\n    version: 1\n    with:\n      out: data/raw.csv\n    params:\n      params.yaml:\n        synth: {rows: 10, seed: 42}\n    outs:\n    - path: data/raw.csv\n      blake3: 148f02f92554e6acdee4cc513b5cd4e13883a1726b9dca02b19fe9a95c79a369\n      size: 2\n  prepare:\n    cmd:\n    - echo 0.5 > data/prep.csv\n    wdir: sub\n    deps:\n    - path: data/raw.csv\n      blake3: 148f02f92554e6acdee4cc513b5cd4e13883a1726b9dca02b19fe9a95c79a369\n      size: 2\n    - path: data\n      blake3: 50cc1102b1c612e6962547aacdcef9a400d4416ef8dd9388e885991853c400c9\n      size: 20\n      nfiles: 3\n";

/// One edit of a text.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Repeat(usize, usize, usize),
    Cut(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let byte = prop_oneof![
        3 => proptest::sample::select(&b":-[]{}&*!%\"'\n #|>@$,.?~\\\t0a/"[..]),
        1 => any::<u8>(),
    ];
    let edit = prop_oneof![
        3 => (any::<usize>(), byte.clone()).prop_map(|(at, b)| Edit::Flip(at, b)),
        3 => (any::<usize>(), byte).prop_map(|(at, b)| Edit::Insert(at, b)),
        2 => (any::<usize>(), 1usize..20).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => (any::<usize>(), 1usize..80, 1usize..200).prop_map(|(at, n, times)| Edit::Repeat(at, n, times)),
        1 => any::<usize>().prop_map(Edit::Cut),
    ];
    proptest::collection::vec(edit, 1..8)
}

fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Flip(at, b) if !bytes.is_empty() => bytes[at % len] = b,
            Edit::Flip(..) => {}
            Edit::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
            Edit::Delete(at, n) if !bytes.is_empty() => {
                let from = at % len;
                bytes.drain(from..(from + n).min(bytes.len()));
            }
            Edit::Delete(..) => {}
            Edit::Repeat(at, n, times) if !bytes.is_empty() => {
                let from = at % len;
                let piece = bytes[from..(from + n).min(bytes.len())].to_vec();
                for _ in 0..times {
                    bytes.splice(from..from, piece.iter().copied());
                }
            }
            Edit::Repeat(..) => {}
            Edit::Cut(at) => bytes.truncate(at % (bytes.len() + 1)),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

// ------------------------------------------------------------ the tests

proptest! {
    #![proptest_config(config(800))]

    #[test]
    fn structured_pipelines_resolve_or_are_refused(project in structured()) {
        load(project);
    }
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn mutated_pipelines_resolve_or_are_refused(edits in edits()) {
        load(Project {
            pipeline: mutate(PIPELINE, &edits),
            params: Some(PARAMS.to_string()),
            vars: None,
            other: None,
        });
    }

    #[test]
    fn mutated_params_files_are_read_or_refused(edits in edits()) {
        load(Project {
            pipeline: PIPELINE.to_string(),
            params: Some(mutate(PARAMS, &edits)),
            vars: None,
            other: None,
        });
    }

    #[test]
    fn mutated_locks_are_read_or_refused(edits in edits()) {
        let text = mutate(LOCK, &edits);
        let shown = text.clone();
        bounded(&shown, move || {
            if let Ok(lock) = LockFile::from_text(&text) {
                let _ = LockFile::from_text(&lock.to_text());
            }
        });
    }
}

#[test]
fn the_samples_are_valid() {
    // Mutations start from files that load: otherwise they test little.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("params.yaml"), PARAMS).unwrap();
    let pipeline = resolve(dir.path(), PIPELINE).unwrap();
    assert_eq!(pipeline.stages.len(), 9);
    Dag::build(&pipeline).unwrap();
    assert_eq!(LockFile::from_text(LOCK).unwrap().stages.len(), 2);
}
