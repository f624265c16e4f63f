//! `pipe plots show` and `pipe plots diff`: the page's SVG, the `--json`
//! data and Vega-Lite specs, DVC's plot definitions, revisions and
//! experiments, and every kind of bad input.

use std::path::Path;

use serde_json::Value as Json;

use crate::env::TestEnv;

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The repository's own demo, run.
pub fn demo() -> TestEnv {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut env = TestEnv::new();
    for file in ["pipeline.yaml", "params.yaml"] {
        env = env.file(
            file,
            &std::fs::read_to_string(repository.join(file)).unwrap(),
        );
    }
    env.pipe(&["repro"]).ok();
    env
}

/// The `<section>` of plot `id` on `page`.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id} in\n{page}"));
    let end = page[start..].find("</section>").unwrap() + start;
    &page[start..end]
}

/// Every match of the first group of `re` in `text`.
fn all(re: &str, text: &str) -> Vec<String> {
    regex::Regex::new(re)
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

#[test]
fn the_demo_page_draws_the_roc_curve_and_the_confusion_matrix() {
    let env = demo();
    let out = env.pipe(&["plots", "show"]).ok();
    assert_eq!(
        out.stdout,
        format!("file://{}/pipe_plots/index.html\n", env.root().display())
    );
    assert_eq!(out.stderr, "");
    let page = env.read("pipe_plots/index.html");
    assert!(page.len() < 200_000, "{} bytes", page.len());
    let data: Json = serde_json::from_str(&env.read("plots/score.json")).unwrap();
    let metrics: Json = serde_json::from_str(&env.read("metrics.json")).unwrap();

    // ROC: one line through every point, the AUC in the legend.
    let roc = section(&page, "plots/score.json:roc");
    let paths = all(r#"<path d="([^"]*)""#, roc);
    assert_eq!(paths.len(), 1);
    let vertices = paths[0].matches(['M', 'L']).count();
    assert_eq!(vertices, data["roc"].as_array().unwrap().len());
    // From (0, 0) at the bottom left to (1, 1) at the top right.
    assert!(paths[0].starts_with("M72.0,368.0"), "{}", &paths[0][..40]);
    assert!(paths[0].ends_with("L616.0,44.0"), "{}", paths[0]);
    let auc = metrics["roc_auc"].as_f64().unwrap();
    assert_eq!(
        all(r#"<g class="legend">.*?<title>([^<]*)</title>"#, roc),
        [format!("workspace (AUC {auc:.3})")]
    );
    assert!(roc.contains("false positive rate") && roc.contains("true positive rate"));

    // The confusion matrix: one cell per (actual, predicted), its count.
    let confusion = section(&page, "plots/score.json:confusion");
    let cells = all(
        r#"<rect class="cell"[^>]*><title>([^<]*)</title>"#,
        confusion,
    );
    let expected: Vec<String> = data["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "workspace\nactual {}, predicted {}: {}",
                c["actual"], c["predicted"], c["count"]
            )
        })
        .collect();
    assert_eq!(cells, expected);
}

#[test]
fn json_of_the_demo_has_the_data_and_a_vega_lite_spec_per_plot() {
    let env = demo();
    let out = env.pipe(&["plots", "show", "--json"]).ok();
    let json: Json = serde_json::from_str(&out.stdout).unwrap();
    let plots = json["plots"].as_array().unwrap();
    let summary: Vec<(String, String, usize, String)> = plots
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["template"].as_str().unwrap().to_string(),
                p["series"][0]["points"].as_array().unwrap().len(),
                p["vega_lite"]["mark"]["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let data: Json = serde_json::from_str(&env.read("plots/score.json")).unwrap();
    assert_eq!(
        summary,
        [
            (
                "plots/score.json:roc".to_string(),
                "simple".to_string(),
                data["roc"].as_array().unwrap().len(),
                "line".to_string()
            ),
            (
                "plots/score.json:confusion".to_string(),
                "confusion".to_string(),
                4,
                "rect".to_string()
            ),
        ]
    );
    // The confusion matrix in full (the counts come from the demo's data).
    env.settings()
        .bind(|| insta::assert_json_snapshot!("demo_confusion", plots[1]));
}

/// DVC's `example-get-started` plots: named plots whose `y` maps a train
/// and a test file to a column, and an image.
fn get_started() -> TestEnv {
    let roc = |a: f64| {
        format!(
            r#"{{"roc": [{{"fpr": 0.0, "tpr": 0.0, "threshold": 2.0}}, {{"fpr": 0.1, "tpr": {a}, "threshold": 0.5}}, {{"fpr": 1.0, "tpr": 1.0, "threshold": 0.0}}]}}"#
        )
    };
    let cm = |wrong: usize| {
        let mut rows = Vec::new();
        for i in 0..6 {
            let actual = i % 2;
            let predicted = if i < wrong { 1 - actual } else { actual };
            rows.push(format!(
                r#"{{"actual": "{actual}", "predicted": "{predicted}"}}"#
            ));
        }
        format!("[{}]", rows.join(", "))
    };
    TestEnv::new()
        .pipeline(
            "
            stages:
              evaluate:
                cmd: echo evaluated
            plots:
              - ROC:
                  template: simple
                  x: fpr
                  y:
                    eval/plots/sklearn/roc/train.json: tpr
                    eval/plots/sklearn/roc/test.json: tpr
              - Confusion-Matrix:
                  template: confusion
                  x: actual
                  y:
                    eval/plots/sklearn/cm/train.json: predicted
                    eval/plots/sklearn/cm/test.json: predicted
              - Precision-Recall:
                  template: simple
                  x: recall
                  y:
                    eval/plots/sklearn/prc/train.json: precision
                    eval/plots/sklearn/prc/test.json: precision
              - eval/plots/images/importance.png
            ",
        )
        .file("eval/plots/sklearn/roc/train.json", &roc(0.9))
        .file("eval/plots/sklearn/roc/test.json", &roc(0.7))
        .file("eval/plots/sklearn/cm/train.json", &cm(1))
        .file("eval/plots/sklearn/cm/test.json", &cm(2))
        .file(
            "eval/plots/sklearn/prc/train.json",
            r#"{"prc": [{"precision": 1.0, "recall": 0.0}, {"precision": 0.8, "recall": 0.5}, {"precision": 0.5, "recall": 1.0}]}"#,
        )
        .file(
            "eval/plots/sklearn/prc/test.json",
            r#"{"prc": [{"precision": 1.0, "recall": 0.0}, {"precision": 0.6, "recall": 0.5}, {"precision": 0.5, "recall": 1.0}]}"#,
        )
}

#[test]
fn example_get_started_definitions_draw_one_series_per_file() {
    let env = get_started();
    std::fs::create_dir_all(env.path("eval/plots/images")).unwrap();
    std::fs::write(env.path("eval/plots/images/importance.png"), PNG).unwrap();
    let out = env.pipe(&["plots", "show", "--json"]).ok();
    assert_eq!(out.stderr, "");
    let json: Json = serde_json::from_str(&out.stdout).unwrap();
    env.settings()
        .bind(|| insta::assert_json_snapshot!("get_started_json", json));

    let out = env.pipe(&["plots", "show", "-o", "out"]).ok();
    assert_eq!(
        out.stdout,
        format!("file://{}/out/index.html\n", env.root().display())
    );
    let page = env.read("out/index.html");
    let roc = section(&page, "ROC");
    assert_eq!(all(r#"<path d="([^"]*)""#, roc).len(), 2);
    assert_eq!(
        all(
            r#"<rect x="[^"]*" y="[^"]*" width="12" height="12" fill="[^"]*"/><text [^>]*><title>([^<]*)</title>"#,
            roc
        ),
        [
            "eval/plots/sklearn/roc/train.json: tpr",
            "eval/plots/sklearn/roc/test.json: tpr"
        ]
    );
    // Two matrices, counted from the records.
    let cm = section(&page, "Confusion-Matrix");
    assert_eq!(
        all(r#"<rect class="cell"[^>]*><title>([^<]*)</title>"#, cm),
        [
            "eval/plots/sklearn/cm/train.json: predicted\npredicted 0, actual 0: 2",
            "eval/plots/sklearn/cm/train.json: predicted\npredicted 0, actual 1: 0",
            "eval/plots/sklearn/cm/train.json: predicted\npredicted 1, actual 0: 1",
            "eval/plots/sklearn/cm/train.json: predicted\npredicted 1, actual 1: 3",
            "eval/plots/sklearn/cm/test.json: predicted\npredicted 0, actual 0: 2",
            "eval/plots/sklearn/cm/test.json: predicted\npredicted 0, actual 1: 1",
            "eval/plots/sklearn/cm/test.json: predicted\npredicted 1, actual 0: 1",
            "eval/plots/sklearn/cm/test.json: predicted\npredicted 1, actual 1: 2",
        ]
    );
    // The image as it is, inline.
    let image = section(&page, "eval/plots/images/importance.png");
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(PNG);
    assert!(
        image.contains(&format!(r#"src="data:image/png;base64,{encoded}""#)),
        "{image}"
    );
    // A target: only that plot.
    let out = env.pipe(&["plots", "show", "--json", "ROC"]).ok();
    let json: Json = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["plots"].as_array().unwrap().len(), 1);
    let out = env.pipe(&["plots", "show", "RCO"]).code(2);
    assert_eq!(
        out.stderr,
        "error: no plot is named `RCO` or reads it\n  hint: the pipeline's plots: ROC, Confusion-Matrix, Precision-Recall, eval/plots/images/importance.png\n"
    );
}

#[test]
fn every_template_and_data_format() {
    let env = TestEnv::new()
        .pipeline(
            "
            stages:
              noop:
                cmd: echo
            plots:
              - loss.csv: {x: step, y: [train, val], template: linear, title: Loss}
              - simple.tsv: {x: step, template: simple}
              - points.yaml: {x: a, y: b, template: scatter}
              - noisy.csv: {y: v, template: smooth}
              - preds.csv: {x: actual, y: predicted, template: confusion}
              - Normalized: {template: confusion_normalized, x: actual, y: {preds.csv: predicted}}
              - importance.json: {x: importance, y: feature, template: bar_horizontal}
              - Sorted: {template: bar_horizontal_sorted, x: importance, y: {importance.json: feature}}
            ",
        )
        .file("loss.csv", "step,train,val\n0,1.0,1.2\n1,0.5,0.7\n2,0.25,0.5\n")
        .file("simple.tsv", "step\tloss\n0\t3\n1\t2\n2\t1.5\n")
        .file("points.yaml", "- {a: 1, b: 2}\n- {a: 2, b: 1}\n- {a: 3, b: 3}\n")
        .file(
            "noisy.csv",
            &format!(
                "v\n{}",
                (0..40)
                    .map(|i| format!("{}\n", i % 7))
                    .collect::<String>()
            ),
        )
        .file("preds.csv", "actual,predicted\ncat,cat\ncat,dog\ndog,dog\ndog,dog\ncat,cat\ncat,cat\n")
        .file(
            "importance.json",
            r#"{"features": [{"feature": "a", "importance": 0.2}, {"feature": "b", "importance": 0.5}, {"feature": "c", "importance": 0.3}]}"#,
        );
    let out = env.pipe(&["plots", "show"]).ok();
    assert_eq!(out.stderr, "");
    let page = env.read("pipe_plots/index.html");
    let count = |id: &str, what: &str| section(&page, id).matches(what).count();
    // linear: lines and points; simple: a line (points only for hover);
    // scatter: points; smooth: faint points and a line.
    assert_eq!(
        (
            count("loss.csv", "<path"),
            count("loss.csv", r##"r="3" fill="#"##)
        ),
        (2, 6)
    );
    assert_eq!(
        (
            count("simple.tsv", "<path"),
            count("simple.tsv", r#"fill="transparent""#)
        ),
        (1, 3)
    );
    assert_eq!(
        (
            count("points.yaml", "<path"),
            count("points.yaml", "<circle")
        ),
        (0, 3)
    );
    assert_eq!(
        (
            count("noisy.csv", "<path"),
            count("noisy.csv", r#"fill-opacity="0.35""#)
        ),
        (1, 40)
    );
    assert_eq!(
        all(
            r#"<rect class="cell"[^>]*><title>[^<]*: ([^<]*)</title>"#,
            section(&page, "preds.csv")
        ),
        ["3", "0", "1", "2"]
    );
    assert_eq!(
        all(
            r#"<rect class="cell"[^>]*><title>[^<]*: ([^<]*)</title>"#,
            section(&page, "Normalized")
        ),
        ["1.000", "0.000", "0.333", "0.667"]
    );
    let bars = |id: &str| {
        all(
            r#"<rect class="bar"[^>]*><title>[^\n]*\n([^<]*)</title>"#,
            section(&page, id),
        )
    };
    assert_eq!(bars("importance.json"), ["a: 0.2", "b: 0.5", "c: 0.3"]);
    assert_eq!(bars("Sorted"), ["b: 0.5", "c: 0.3", "a: 0.2"]);
    env.settings()
        .bind(|| insta::assert_snapshot!("templates_page", page));
}

/// A stage whose cached plot file `loss.csv` depends on `lr`, run and
/// committed with lr 0.1.
fn trained() -> TestEnv {
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              train:
                cmd: >-
                  awk 'BEGIN { print "step,loss"; for (i = 0; i < 3; i++) printf "%d,%.2f\n", i, ${lr} * (3 - i) }' > loss.csv
                params: [lr]
                plots:
                  - loss.csv: {x: step, y: loss}
            "#,
        )
        .params("lr: 0.1\n")
        .git_init();
    env.pipe(&["repro"]).ok();
    env.commit("lr 0.1");
    env
}

/// Each series of `--json` output: (plot id, name, the y values).
fn series(stdout: &str) -> Vec<(String, String, Vec<f64>)> {
    let json: Json = serde_json::from_str(stdout).unwrap();
    let mut out = Vec::new();
    for plot in json["plots"].as_array().unwrap() {
        for s in plot["series"].as_array().unwrap() {
            out.push((
                plot["id"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
                s["points"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["y"].as_f64().unwrap())
                    .collect(),
            ));
        }
    }
    out
}

#[test]
fn diff_draws_one_series_per_commit_from_git_and_the_cache() {
    let env = trained();
    assert_eq!(env.git(&["ls-files", "loss.csv"]), "", "cached, not in git");
    env.write("params.yaml", "lr: 0.2\n");
    env.pipe(&["repro"]).ok();
    env.commit("lr 0.2");
    env.write("params.yaml", "lr: 0.3\n");
    env.pipe(&["repro"]).ok();

    // HEAD and the workspace by default.
    let out = env.pipe(&["plots", "diff", "--json"]).ok();
    assert_eq!(out.stderr, "");
    let s = |name: &str, ys: [f64; 3]| ("loss.csv".to_string(), name.to_string(), ys.to_vec());
    assert_eq!(
        series(&out.stdout),
        [s("HEAD", [0.6, 0.4, 0.2]), s("workspace", [0.9, 0.6, 0.3])]
    );
    // Two commits; the older one's file comes from the cache.
    let out = env
        .pipe(&["plots", "diff", "HEAD~1", "main", "--json"])
        .ok();
    assert_eq!(
        series(&out.stdout),
        [s("HEAD~1", [0.3, 0.2, 0.1]), s("main", [0.6, 0.4, 0.2])]
    );
    // The page: two lines, a legend naming the revisions, its title.
    let out = env.pipe(&["plots", "diff", "HEAD~1", "main"]).ok();
    assert_eq!(
        out.stdout,
        format!("file://{}/pipe_plots/index.html\n", env.root().display())
    );
    let page = env.read("pipe_plots/index.html");
    assert!(page.contains("<title>Plots: HEAD~1 vs main</title>"));
    let plot = section(&page, "loss.csv");
    assert_eq!(plot.matches("<path").count(), 2);
    assert_eq!(
        all(r#"<g class="series" data-name="([^"]*)""#, plot),
        ["HEAD~1", "main"]
    );

    let out = env.pipe(&["plots", "diff", "nosuch"]).code(2);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
}

#[test]
fn diff_of_two_experiments() {
    let env = trained();
    env.pipe(&["exp", "run", "-S", "lr=0.5", "-n", "fast"]).ok();
    env.pipe(&["exp", "run", "-S", "lr=0.05", "-n", "slow"])
        .ok();
    let out = env
        .pipe(&["plots", "diff", "--exp", "fast", "--exp", "slow", "--json"])
        .ok();
    let s = |name: &str, ys: [f64; 3]| ("loss.csv".to_string(), name.to_string(), ys.to_vec());
    assert_eq!(
        series(&out.stdout),
        [s("fast", [1.5, 1.0, 0.5]), s("slow", [0.15, 0.1, 0.05])]
    );
    let out = env.pipe(&["plots", "diff", "--exp", "nosuch"]).code(2);
    assert!(out.stderr.contains("nosuch"), "{}", out.stderr);
}

#[test]
fn bad_input_warns_for_that_plot_and_the_rest_renders() {
    let mut big = String::from("step,v\n");
    for i in 0..1_000_000 {
        big.push_str(&format!("{i},{}\n", (i % 1000) as f64 / 10.0));
    }
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              noop:
                cmd: echo
            plots:
              - missing.csv
              - broken.json
              - columns.csv: {x: step, y: los}
              - mixed.csv: {x: step, y: v}
              - big.csv: {x: step, y: v}
              - good.csv:
                  x: step
                  y: v
                  title: "<script>alert('title')</script>"
                  x_label: "<img src=x onerror=alert(1)>"
              - injected.csv: {x: step}
            "#,
        )
        .file("broken.json", "{\"a\": [1, 2")
        .file("columns.csv", "step,loss\n0,1\n")
        .file("mixed.csv", "step,v\n0,1\n1,oops\n2,3\n")
        .file("big.csv", &big)
        .file("good.csv", "step,v\n0,1\n1,2\n")
        .file(
            "injected.csv",
            "step,\"</title><script>alert(2)</script>\"\n0,1\n1,2\n",
        );
    let out = env.pipe(&["plots", "show"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stderr, @r"
        warning: plot missing.csv: missing.csv: no such file
        warning: plot broken.json: broken.json: not valid JSON: EOF while parsing a list at line 1 column 11
        warning: plot columns.csv: columns.csv: no column `los` (its columns: step, loss); did you mean `loss`?
        warning: plot mixed.csv: mixed.csv: column `v` mixes numbers and text: 1 of 3 rows left out
        warning: plot big.csv: big.csv: 1000000 points, down-sampled to 1996 for drawing (each bucket keeps its first, lowest and highest point)
        ");
    });
    let page = env.read("pipe_plots/index.html");
    assert!(page.len() < 1_000_000, "{} bytes", page.len());
    // Every warning is on the page too, in its plot's section.
    for line in out.stderr.lines() {
        let (id, warning) = line
            .strip_prefix("warning: plot ")
            .unwrap()
            .split_once(": ")
            .unwrap();
        let warning = warning.replace('\'', "&#39;");
        assert!(
            section(&page, id).contains(&format!("<p class=\"warning\">warning: {warning}</p>")),
            "{id}: {warning}"
        );
    }
    // What could be drawn is.
    assert_eq!(section(&page, "mixed.csv").matches("<circle").count(), 2);
    assert_eq!(section(&page, "big.csv").matches("<circle").count(), 1996);
    assert_eq!(section(&page, "good.csv").matches("<circle").count(), 2);
    // Text from files and definitions is escaped: no script anywhere.
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img src=x"));
    assert!(page.contains("&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;"));
    assert!(page.contains("&lt;/title&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
}

/// A project whose metric `acc` depends on `lr` through a stage, with
/// three experiments whose `lr` spans four decades.
fn experiments() -> TestEnv {
    let env = TestEnv::new()
        .pipeline(
            r#"
            stages:
              train:
                cmd: >-
                  awk 'BEGIN { printf "{\"acc\": %.4f}\n", 1 / (1 + ${lr}) }' > metrics.json
                params: [lr]
                metrics:
                  - metrics.json: {cache: false}
            "#,
        )
        .params("lr: 1\n");
    env.pipe(&["repro"]).ok();
    let env = env.git_init();
    for (name, lr) in [("tiny", "0.01"), ("big", "100"), ("x10", "10")] {
        env.pipe(&["exp", "run", "-S", &format!("lr={lr}"), "-n", name])
            .ok();
    }
    env
}

#[test]
fn exp_show_html_has_a_sortable_table_and_a_chart_on_a_log_scale() {
    let env = experiments();
    let out = env.pipe(&["exp", "show", "--html", "--x", "lr", "--y", "acc"]);
    let out = out.ok();
    assert_eq!(
        out.stdout,
        format!(
            "file://{}/pipe_plots/experiments.html\n",
            env.root().display()
        )
    );
    let page = env.read("pipe_plots/experiments.html");
    assert!(page.contains("<p class=\"meta\">x: lr (log scale)</p>"));
    let mut points = all(r#"<circle [^>]*><title>([^<]*)</title>"#, &page);
    points.sort();
    assert_eq!(
        points,
        [
            "big\nlr: 100\nacc: 0.0099",
            "tiny\nlr: 0.01\nacc: 0.9901",
            "workspace, main\nlr: 1\nacc: 0.5",
            "x10\nlr: 10\nacc: 0.0909",
        ]
    );
    // The table: one row per experiment, numbers kept for sorting.
    let rows = all(r"<tr><td>([^<]*)</td>", &page);
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(page.contains(r#"<td data-v="0.01">0.01</td>"#));
    // The only script is the table's own sorting.
    assert_eq!(page.matches("<script").count(), 1);
    assert!(page.contains(r#"heads[i].addEventListener("click""#));

    // The defaults choose the only param and metric; a wrong name says so.
    let out = env.pipe(&["exp", "show", "--html", "-o", "exps.html"]).ok();
    assert_eq!(
        out.stdout,
        format!("file://{}/exps.html\n", env.root().display())
    );
    assert!(env.read("exps.html").contains("acc against lr"));
    let out = env.pipe(&["exp", "show", "--html", "--x", "rl"]).code(2);
    assert_eq!(
        out.stderr,
        "error: --x rl: no metric or param of that name\n  hint: did you mean `lr`?\n"
    );
}

/// The browser to look at pages with, or `None` (said, or a failure under
/// `PIPE_REQUIRE_SERVICES`).
fn chromium() -> Option<String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            return Some(name.to_string());
        }
    }
    crate::services::missing("chromium (headless, for looking at the plots page)");
    None
}

/// Renders `page` in headless Chromium with the network disabled: the
/// screenshot's pixels and what the browser's console said.
fn screenshot(browser: &str, page: &Path) -> (Vec<[u8; 3]>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("shot.png");
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("net::ERR_"))
        .map(str::to_string)
        .collect();
    let bytes = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}):\n{log}"));
    (pixels(&bytes), console)
}

/// The pixels of an 8-bit RGB or RGBA PNG (as Chromium writes them).
fn pixels(png: &[u8]) -> Vec<[u8; 3]> {
    use std::io::Read;
    let mut at = 8;
    let (mut width, mut channels, mut idat) = (0usize, 0usize, Vec::new());
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "8-bit");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = width * channels;
    let mut prev = vec![0u8; stride];
    let mut out = Vec::new();
    for line in raw.chunks(stride + 1) {
        let (filter, data) = (line[0], &line[1..]);
        let mut cur = vec![0u8; stride];
        for i in 0..stride {
            let a = if i >= channels { cur[i - channels] } else { 0 } as i16;
            let b = prev[i] as i16;
            let c = if i >= channels { prev[i - channels] } else { 0 } as i16;
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => (a + b) / 2,
                _ => {
                    let p = a + b - c;
                    let (pa, pb, pc) = ((p - a).abs(), (p - b).abs(), (p - c).abs());
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
            };
            cur[i] = data[i].wrapping_add(predicted as u8);
        }
        out.extend(cur.chunks(channels).map(|p| [p[0], p[1], p[2]]));
        prev = cur;
    }
    out
}

#[test]
fn the_pages_render_in_a_headless_browser_offline_without_errors() {
    let Some(browser) = chromium() else {
        return;
    };
    let env = demo();
    env.pipe(&["plots", "show"]).ok();
    let (pixels, console) = screenshot(&browser, &env.path("pipe_plots/index.html"));
    assert_eq!(console, Vec::<String>::new());
    let inked = |pixels: &[[u8; 3]]| pixels.iter().filter(|p| p.iter().any(|c| *c < 200)).count();
    // Not blank: the curve, the axes, the text and the matrix's dark cells.
    assert!(inked(&pixels) > 20_000, "{} dark pixels", inked(&pixels));
    // The matrix's darkest blue is there (its diagonal).
    assert!(
        pixels.iter().any(|p| p[2] > 90 && p[0] < 40 && p[1] < 80),
        "no dark blue cell"
    );

    let env = get_started();
    std::fs::create_dir_all(env.path("eval/plots/images")).unwrap();
    std::fs::write(env.path("eval/plots/images/importance.png"), PNG).unwrap();
    env.pipe(&["plots", "show"]).ok();
    let (pixels, console) = screenshot(&browser, &env.path("pipe_plots/index.html"));
    assert_eq!(console, Vec::<String>::new());
    assert!(inked(&pixels) > 20_000);
}
