//! `pipe exp push` and `pipe exp pull`: experiments between repositories.
//!
//! An experiment is a git ref (`refs/exps/ab/cdef…/name`, DVC's layout)
//! and the cache objects its `pipeline.lock` records. The objects travel
//! through the data remote (`pipe push`/`fetch` with the experiment in
//! scope); the refs travel with the `git` command, so that a git remote
//! works exactly as it does for `git push` and `git fetch`: its URL, the
//! user's credential helpers, SSH keys and configuration. A push sends the
//! objects first and the ref last, so whoever sees the ref finds what it
//! names. Neither side's existing experiment is replaced unless `force`:
//! the same name run again elsewhere is a different commit.
//!
//! Whatever git prints is passed through [`scrub`], so a password written
//! in a remote's URL is never shown.

use std::path::Path;
use std::process::Command;

use crate::error::Error;
use crate::git::{exp_ref_parts, EXP_REF_PREFIX};

/// An experiment ref on a git remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteExp {
    pub name: String,
    pub refname: String,
    /// Its commit, hex.
    pub commit: String,
}

/// Replaces the password of any URL in `text` with `***`.
pub fn scrub(text: &str) -> String {
    text.split_inclusive(|c: char| c.is_whitespace() || c == '\'' || c == '"')
        .map(|word| {
            let trimmed =
                word.trim_end_matches(|c: char| c.is_whitespace() || c == '\'' || c == '"');
            if trimmed.contains("://") {
                word.replacen(trimmed, &crate::remote::url::masked(trimmed), 1)
            } else {
                word.to_string()
            }
        })
        .collect()
}

/// Runs `git -C dir ARGS…` and returns its stdout; a failure is an error
/// saying what git said.
fn git(dir: &Path, args: &[&str], doing: &str, remote: &str) -> Result<String, Error> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        // Never wait for a password on a terminal that is not there.
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(Error::io(
            "cannot run `git` (is it installed and on PATH?)".to_string(),
        ))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    // git's own lines, without its advice on git commands.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
        .map(|l| {
            let l = l
                .strip_prefix("fatal: ")
                .or_else(|| l.strip_prefix("error: "))
                .unwrap_or(l);
            scrub(l)
        })
        .collect();
    Err(Error::Refused {
        message: format!(
            "{doing} git remote `{}` failed: {}",
            scrub(remote),
            said.join(" ")
        ),
        hint: Some(
            "check the remote with `git remote -v` and that `git fetch` works with it".into(),
        ),
    })
}

/// The experiments on `remote` (a git remote's name or URL).
pub fn list_remote(dir: &Path, remote: &str) -> Result<Vec<RemoteExp>, Error> {
    let pattern = format!("{EXP_REF_PREFIX}*");
    let text = git(
        dir,
        &["ls-remote", "--refs", remote, &pattern],
        "listing the experiments of",
        remote,
    )?;
    let mut out: Vec<RemoteExp> = text
        .lines()
        .filter_map(|line| {
            let (commit, refname) = line.split_once('\t')?;
            let (_, name) = exp_ref_parts(refname)?;
            Some(RemoteExp {
                name,
                refname: refname.to_string(),
                commit: commit.to_string(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then(a.refname.cmp(&b.refname)));
    Ok(out)
}

fn refspecs(refs: &[String], force: bool) -> Vec<String> {
    refs.iter()
        .map(|r| format!("{}{r}:{r}", if force { "+" } else { "" }))
        .collect()
}

/// Sends `refs` to `remote`. Without `force`, git refuses to replace a
/// ref there that is not an ancestor of ours (another run of that name).
pub fn push_refs(dir: &Path, remote: &str, refs: &[String], force: bool) -> Result<(), Error> {
    let specs = refspecs(refs, force);
    let mut args = vec!["push", "--quiet", "--no-verify", remote];
    args.extend(specs.iter().map(String::as_str));
    git(dir, &args, "pushing experiments to", remote).map(|_| ())
}

/// Brings `refs` from `remote` (with the commits they need).
pub fn fetch_refs(dir: &Path, remote: &str, refs: &[String], force: bool) -> Result<(), Error> {
    let specs = refspecs(refs, force);
    let mut args = vec!["fetch", "--quiet", "--no-tags", remote];
    args.extend(specs.iter().map(String::as_str));
    git(dir, &args, "fetching experiments from", remote).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_what_git_says_are_masked() {
        assert_eq!(
            scrub("fatal: unable to access 'https://me:hunter2@git.example.com/r.git/': 403"),
            "fatal: unable to access 'https://me:***@git.example.com/r.git/': 403"
        );
        assert_eq!(
            scrub("error: no such remote origin"),
            "error: no such remote origin"
        );
    }
}
