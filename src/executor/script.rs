//! The job script of a stage: a POSIX `sh` script that does on the node
//! what `pipe` does locally for the stage's commands.
//!
//! It sets the variables a stage's commands get locally (`PIPE_STAGE`,
//! `PIPE_ROOT`, `DVC_STAGE`, `DVC_ROOT`, and what the caller adds), enters
//! the stage's `wdir`, and runs each command with `sh -c`, stopping at the
//! first failure. A built-in stage runs as `pipe __builtin STAGE` from the
//! project root, with the same `pipe` binary (on a shared filesystem the
//! nodes see it at the same path). As it ends, the script writes `N CODE`
//! into its exit file: the command that failed (0 for the `cd`, 1… for the
//! commands) and its exit code, or `0 0` when everything ran. So `pipe`
//! tells which command failed and how, whatever the scheduler reports, and
//! knows how a job ended that the scheduler has forgotten.

use std::path::Path;

/// What the script runs.
pub enum Work<'a> {
    Commands(&'a [String]),
    /// `pipe __builtin STAGE` with this `pipe` binary.
    Builtin {
        pipe: &'a Path,
    },
    /// `pipe __job` with this `pipe` binary, reading `spec` (one line of
    /// JSON) from stdin: the stage runs in a scratch directory of the node,
    /// its files through the remote (see [`super::staged`]).
    Staged {
        pipe: &'a Path,
        spec: &'a str,
    },
}

pub struct ScriptSpec<'a> {
    pub stage: &'a str,
    pub root: &'a Path,
    pub wdir: &'a Path,
    pub work: Work<'a>,
    pub env: &'a [(&'a str, &'a str)],
    pub exit_file: &'a Path,
    /// Where the script sends its own stdout and stderr (when the scheduler
    /// does not).
    pub redirect: Option<(&'a Path, &'a Path)>,
}

/// The hidden argument that makes `pipe` run one built-in stage of the
/// project in the current directory (in a job).
pub const BUILTIN_ARG: &str = "__builtin";

/// Quotes a word for `sh`.
pub fn quote(text: &str) -> String {
    shlex::try_quote(text)
        .map(|q| q.into_owned())
        // Only a NUL cannot be quoted; no path or command holds one.
        .unwrap_or_else(|_| {
            shlex::try_quote(&text.replace('\0', ""))
                .unwrap()
                .into_owned()
        })
}

fn path(p: &Path) -> String {
    quote(&p.display().to_string())
}

pub fn script(spec: &ScriptSpec) -> String {
    let mut s = String::from("#!/bin/sh\n");
    s.push_str(&format!(
        "# The job of stage {}, written by pipe.\n",
        spec.stage.replace('\n', " ")
    ));
    if let Some((out, err)) = spec.redirect {
        s.push_str(&format!("exec >>{} 2>>{}\n", path(out), path(err)));
    }
    let root = path(spec.root);
    let stage = quote(spec.stage);
    s.push_str(&format!(
        "PIPE_STAGE={stage} DVC_STAGE={stage} PIPE_ROOT={root} DVC_ROOT={root}\nexport PIPE_STAGE DVC_STAGE PIPE_ROOT DVC_ROOT\n"
    ));
    for (k, v) in spec.env {
        s.push_str(&format!("{k}={}; export {k}\n", quote(v)));
    }
    let exit = path(spec.exit_file);
    let fail = |n: usize| format!("|| {{ rc=$?; echo \"{n} $rc\" > {exit}; exit $rc; }}\n");
    match &spec.work {
        Work::Commands(commands) => {
            s.push_str(&format!("cd {} {}", path(spec.wdir), fail(0)));
            for (i, cmd) in commands.iter().enumerate() {
                s.push_str(&format!("sh -c {} {}", quote(cmd), fail(i + 1)));
            }
        }
        Work::Builtin { pipe } => {
            s.push_str(&format!("cd {root} {}", fail(0)));
            s.push_str(&format!("{} {BUILTIN_ARG} {stage} {}", path(pipe), fail(1)));
        }
        Work::Staged { pipe, spec } => {
            // The node may not see the project: no `cd`, and the exit file
            // is written only where it can be, and only for a success (the
            // result on the remote says how the stage failed).
            // The scratch directory is the script's, so that it goes even
            // when the job is cancelled or hits its time limit (the
            // scheduler's SIGTERM reaches `sh` too).
            let job = super::staged::JOB_ARG;
            let var = super::staged::SCRATCH_VAR;
            s.push_str(&format!(
                "{var}=$(mktemp -d \"${{TMPDIR:-/tmp}}/pipe-job-XXXXXX\") || exit 2\nexport {var}\ntrap 'rm -rf \"${var}\"' EXIT\ntrap 'exit 143' TERM INT\n"
            ));
            s.push_str(&format!(
                "{} {job} <<'PIPE_JOB_SPEC' || exit $?\n{}\nPIPE_JOB_SPEC\n",
                path(pipe),
                spec.replace('\n', " ")
            ));
            s.push_str(&format!(
                "{{ echo \"0 0\" > {exit}; }} 2>/dev/null || true\nexit 0\n"
            ));
            return s;
        }
    }
    s.push_str(&format!("echo \"0 0\" > {exit}\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_each_command_and_records_how_the_script_ended() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub dir")).unwrap();
        let exit = root.join("exit");
        let commands = vec![
            "echo \"$PIPE_STAGE's $X\" > out.txt".to_string(),
            "pwd >> out.txt; exit 4".to_string(),
            "echo never > never.txt".to_string(),
        ];
        let text = script(&ScriptSpec {
            stage: "it's",
            root,
            wdir: &root.join("sub dir"),
            work: Work::Commands(&commands),
            env: &[("X", "a b")],
            exit_file: &exit,
            redirect: Some((&root.join("o"), &root.join("e"))),
        });
        std::fs::write(root.join("job.sh"), &text).unwrap();
        let status = std::process::Command::new("sh")
            .arg(root.join("job.sh"))
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(4));
        assert_eq!(std::fs::read_to_string(&exit).unwrap(), "2 4\n");
        assert_eq!(
            std::fs::read_to_string(root.join("sub dir/out.txt")).unwrap(),
            format!("it's's a b\n{}\n", root.join("sub dir").display())
        );
        assert!(!root.join("sub dir/never.txt").exists());
    }
}
