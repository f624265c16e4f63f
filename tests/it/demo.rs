//! The repository's own demo (`pipeline.yaml`, `params.yaml`): its lock,
//! metrics and `.gitignore` files are committed, so that a fresh clone
//! that runs it is left exactly as git has it.

use std::path::Path;

use crate::env::TestEnv;

/// What a clone of the repository holds of the demo.
const COMMITTED: &[&str] = &[
    ".gitignore",
    "pipeline.yaml",
    "params.yaml",
    "pipeline.lock",
    "metrics.json",
    "data/.gitignore",
    "model/.gitignore",
    "plots/.gitignore",
];

#[test]
fn a_fresh_clone_that_runs_the_demo_is_left_as_git_has_it() {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut env = TestEnv::new();
    for file in COMMITTED {
        let text = std::fs::read_to_string(repository.join(file))
            .unwrap_or_else(|e| panic!("read the repository's {file}: {e}"));
        env = env.file(file, &text);
    }
    let env = env.git_init();
    let out = env.pipe(&["repro"]).ok();
    assert_eq!(
        out.counts(),
        "5 ran, 0 restored, 0 up to date, 0 failed",
        "{}",
        out.stderr
    );
    let status = env.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert_eq!(
        status,
        "",
        "the demo no longer produces what the repository commits (a built-in \
         or params.yaml changed?): run `pipe repro` in the repository and \
         commit pipeline.lock and metrics.json\n{}",
        env.git(&["diff"])
    );
}
