//! Small commands and flags a DVC user reaches for: `pipe completions`,
//! `pipe init`, `pipe status -q`, and `metrics diff` / `params diff` with
//! nothing to show.

use std::process::Command;

use crate::env::{TestEnv, PIPE};

#[test]
fn bash_completion_completes_subcommands_and_flags() {
    // The script is sourced into a real bash and its completion function
    // asked, as bash asks it on Tab.
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let script = format!(
            "source <({PIPE} completions bash)\n\
             COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT={point}\n\
             _pipe pipe '{cur}' '{prev}'\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words = words.join(" "),
            cword = words.len() - 1,
            point = line.len(),
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        );
        let out = Command::new("bash")
            .args(["-c", &script])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("pipe rep"), "repro\n");
    assert_eq!(complete("pipe gc --all-c"), "--all-commits\n");
}

#[test]
fn completion_scripts_for_other_shells_and_unknown_ones() {
    let env = TestEnv::new();
    let first_lines: Vec<String> = ["zsh", "fish", "powershell"]
        .iter()
        .map(|shell| {
            let out = env.pipe(&["completions", shell]).ok();
            let first = out.stdout.lines().find(|l| !l.trim().is_empty());
            first.unwrap_or_default().to_string()
        })
        .collect();
    insta::assert_snapshot!(first_lines.join("\n"), @r"
        #compdef pipe
        # Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
        using namespace System.Management.Automation
        ");
    let out = env.pipe(&["completions", "tcsh"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
        error: invalid value 'tcsh' for '<SHELL>'
          [possible values: bash, elvish, fish, powershell, zsh]

          tip: a similar value exists: 'zsh'

        For more information, try '--help'.
        ");
}

#[test]
fn init_makes_a_project_and_never_overwrites() {
    let env = TestEnv::new();
    let out = env.pipe(&["init"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stdout, @r"
            Initialized a pipe project in [ROOT]:
              pipeline.yaml     where the stages go (a template with an example)
              .pipeline-cache/  the cache (its own .gitignore keeps it out of git)
            Next: declare a stage in pipeline.yaml, then run `pipe repro`.
            ");
    });
    insta::assert_snapshot!(env.read("pipeline.yaml"), @r"
        # The pipeline: its stages, what each one reads and writes. The field
        # names are those of dvc.yaml. `pipe repro` runs what is stale, `pipe
        # status` says why, `pipe dag` draws the graph. Declare the stages under
        # `stages:`; to start from this example, remove the `# ` before its lines:
        stages:
          # prepare:
          #   cmd: python prepare.py
          #   deps: [prepare.py, data/raw.csv]
          #   params: [prepare.seed]        # keys of params.yaml
          #   outs: [data/prepared.csv]
          # train:
          #   cmd: python train.py
          #   deps: [train.py, data/prepared.csv]
          #   outs: [model.pkl]
          #   metrics: [metrics.json]
        ");
    assert_eq!(
        env.read(".pipeline-cache/.gitignore"),
        "# Created by pipe: the cache is not for git.\n*\n"
    );
    // The template declares no stage yet: pipe says what to do.
    let out = env.pipe(&["status"]).code(2);
    insta::assert_snapshot!(out.stderr, @r"
        error: pipeline.yaml: no stages are declared
          hint: add at least one stage under `stages:`
        ");

    let tree = env.tree();
    let out = env.pipe(&["init"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stdout, @r"[ROOT] is a pipe project already: nothing was written.");
    });
    assert_eq!(env.tree(), tree, "nothing was written");
}

#[test]
fn init_keeps_an_existing_pipeline_and_suggests_committing_in_git() {
    let env = TestEnv::new()
        .pipeline(
            "
            stages:
              hello:
                cmd: echo hello > hello.txt
                outs: [hello.txt]
            ",
        )
        .git_init();
    let pipeline = env.read("pipeline.yaml");
    let out = env.pipe(&["init"]).ok();
    env.settings().bind(|| {
        insta::assert_snapshot!(out.stdout, @r"
            Initialized a pipe project in [ROOT]:
              pipeline.yaml     kept as it was
              .pipeline-cache/  the cache (its own .gitignore keeps it out of git)
            Next: run `pipe repro`; commit pipeline.yaml with git.
            ");
    });
    assert_eq!(env.read("pipeline.yaml"), pipeline);
    assert!(env.exists(".pipeline-cache/.gitignore"));
}

#[test]
fn status_quiet_says_nothing_and_exits_1_while_a_stage_is_stale() {
    let env = TestEnv::new().file("in.txt", "a\n").pipeline(
        "
        stages:
          copy:
            cmd: cp in.txt out.txt
            deps: [in.txt]
            outs: [out.txt]
        ",
    );
    let out = env.pipe(&["status", "-q"]).code(1);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    env.pipe(&["repro"]).ok();
    let out = env.pipe(&["status", "--quiet"]).code(0);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    env.write("in.txt", "b\n");
    let out = env.pipe(&["status", "-q"]).code(1);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
}

#[test]
fn diffs_with_nothing_changed_say_so_on_stderr() {
    let env = TestEnv::new()
        .params("lr: 0.1\n")
        .pipeline(
            "
            stages:
              train:
                cmd: >-
                  echo '{\"acc\": 0.5}' > metrics.json
                params: [lr]
                metrics:
                  - metrics.json: {cache: false}
            ",
        )
        .git_init();
    env.pipe(&["repro"]).ok();
    env.commit("run");
    for command in ["metrics", "params"] {
        let out = env.pipe(&[command, "diff"]).ok();
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("", "No changes.\n"),
            "{command} diff"
        );
        // JSON stays JSON.
        let out = env.pipe(&[command, "diff", "--json"]).ok();
        assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("{}\n", ""));
    }
    env.write("params.yaml", "lr: 0.2\n");
    let out = env.pipe(&["params", "diff"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
        Path         Param  HEAD  workspace  Change
        params.yaml  lr     0.1   0.2        +0.1
        ");
}
