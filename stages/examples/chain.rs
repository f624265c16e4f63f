//! Runs the built-in chain split → vectorize → fit → score on a table, one
//! step or all, and prints the time of each step. For benchmarks: run each
//! step under `/usr/bin/time -v` to see its peak memory.
//!
//! ```text
//! cargo run -p pipe-stages --release --example chain -- STEP INPUT.tsv OUTDIR [C]
//! ```
//!
//! STEP is `split`, `vectorize`, `fit`, `score` or `all`; the split keeps
//! Sentiment 0 and 4 as classes 0 and 1 (test_size 0.2, seed 42); C
//! defaults to 1 (max_iter 1000).

use std::path::Path;
use std::time::Instant;

use pipe_stages::logistic::LogisticParams;
use pipe_stages::split::{run_split, SplitParams};
use pipe_stages::stage::{run_fit, run_score, run_vectorize};
use pipe_stages::vectorize::VectorizeParams;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        return Err("usage: chain STEP INPUT.tsv OUTDIR [C]".into());
    }
    let (step, input, out) = (args[0].as_str(), Path::new(&args[1]), Path::new(&args[2]));
    let c: f64 = args.get(3).map_or(Ok(1.0), |s| s.parse())?;
    let p = |name: &str| out.join(name);
    let all = step == "all";
    let split = SplitParams::from_json(&serde_json::from_str(r#"{"classes": {"0": 0, "4": 1}}"#)?)?;
    if all || step == "split" {
        let t = Instant::now();
        let r = run_split(input, None, &p("train.parquet"), &p("test.parquet"), &split)?;
        println!(
            "split {:.3} s: {}",
            t.elapsed().as_secs_f64(),
            serde_json::to_string(&r)?
        );
    }
    if all || step == "vectorize" {
        let t = Instant::now();
        let r = run_vectorize(
            &p("train.parquet"),
            &p("test.parquet"),
            &p("vectorizer.json"),
            &p("train.features"),
            &p("test.features"),
            "Phrase",
            &VectorizeParams::default(),
        )?;
        println!(
            "vectorize {:.3} s: {}",
            t.elapsed().as_secs_f64(),
            serde_json::to_string(&r)?
        );
    }
    if all || step == "fit" {
        let t = Instant::now();
        let params = LogisticParams {
            c,
            max_iter: 1000,
            tol: 1e-4,
        };
        let r = run_fit(
            &p("train.features"),
            &p("vectorizer.json"),
            &p("model.json"),
            &params,
        )?;
        println!(
            "fit {:.3} s: {}",
            t.elapsed().as_secs_f64(),
            serde_json::to_string(&r)?
        );
    }
    if all || step == "score" {
        let t = Instant::now();
        let r = run_score(
            &p("model.json"),
            &p("test.features"),
            &p("metrics.json"),
            &p("plots.json"),
        )?;
        println!(
            "score {:.3} s: {}",
            t.elapsed().as_secs_f64(),
            serde_json::to_string(&r)?
        );
    }
    Ok(())
}
