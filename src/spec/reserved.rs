//! Paths no stage may write: git's, pipe's and DVC's own files.
//!
//! pipe deletes a stage's outputs before the stage runs and later replaces
//! them from its cache, so an output named `.git` would delete the
//! repository, and one named `pipeline.yaml` the pipeline. [`reserved`]
//! says whether an output is, or lies inside, such a path:
//!
//! | what | where |
//! | --- | --- |
//! | `.git`, `.pipeline-cache`, `.dvc` | a component anywhere in the path |
//! | `.gitignore`, `.dvcignore` | the file name, in any directory |
//! | `pipeline.yaml`, `pipeline.lock`, `pipe.toml`, `pipe.local.toml`, `dvc.yaml`, `dvc.lock` | at the project root |
//!
//! An output that *contains* one of them is a directory above it; for the
//! root files, and for the repository and the cache pipe works with, that
//! is the project root, which is refused on its own. Names are compared
//! without regard to case, since `.GIT` is `.git` on macOS and Windows.
//! Params files are not reserved (a stage may write one), and a stage may
//! read every one of these paths as a dep.

use crate::paths::RelPath;

/// Components that are reserved wherever they appear, and what they are.
const DIRECTORIES: &[(&str, &str)] = &[
    (".git", "git's repository data"),
    (".pipeline-cache", "pipe's cache"),
    (".dvc", "DVC's directory"),
];

/// File names reserved in any directory.
const IGNORE_FILES: &[(&str, &str)] = &[
    (".gitignore", "a git ignore file"),
    (".dvcignore", "a DVC ignore file"),
];

/// File names reserved at the project root.
const ROOT_FILES: &[(&str, &str)] = &[
    ("pipeline.yaml", "the pipeline file"),
    ("pipeline.lock", "pipe's lock file"),
    ("pipe.toml", "pipe's configuration"),
    ("pipe.local.toml", "pipe's local configuration"),
    ("dvc.yaml", "DVC's pipeline file"),
    ("dvc.lock", "DVC's lock file"),
];

/// Why no stage may write `path`, if that is so: `` `.git/hooks` lies inside
/// `.git`, git's repository data ``.
pub fn reserved(path: &RelPath) -> Option<String> {
    let text = path.as_str();
    let is = |name: &str, list: &[(&str, &'static str)]| {
        list.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, what)| *what)
    };
    let mut end = 0;
    for (i, part) in text.split('/').enumerate() {
        end += part.len() + usize::from(i > 0);
        let what = is(part, DIRECTORIES)
            .or_else(|| is(part, IGNORE_FILES))
            .or_else(|| if i == 0 { is(part, ROOT_FILES) } else { None });
        if let Some(what) = what {
            return Some(if end == text.len() {
                format!("`{text}` is {what}")
            } else {
                format!("`{text}` lies inside `{}`, {what}", &text[..end])
            });
        }
    }
    None
}

/// What to do about a reserved output.
pub const HINT: &str = "pipe deletes a stage's outputs before it runs: write them to paths of their own (a stage may read these files as deps)";

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str) -> Option<String> {
        reserved(&RelPath::parse(path, None).unwrap())
    }

    #[test]
    fn reserves_git_pipe_and_dvc_paths() {
        assert_eq!(check(".git").unwrap(), "`.git` is git's repository data");
        assert_eq!(
            check(".git/hooks/pre-commit").unwrap(),
            "`.git/hooks/pre-commit` lies inside `.git`, git's repository data"
        );
        assert_eq!(
            check("vendor/lib/.git/config").unwrap(),
            "`vendor/lib/.git/config` lies inside `vendor/lib/.git`, git's repository data"
        );
        assert_eq!(check(".GIT").unwrap(), "`.GIT` is git's repository data");
        assert_eq!(
            check(".pipeline-cache/v1").unwrap(),
            "`.pipeline-cache/v1` lies inside `.pipeline-cache`, pipe's cache"
        );
        assert_eq!(
            check("pipeline.yaml").unwrap(),
            "`pipeline.yaml` is the pipeline file"
        );
        assert_eq!(
            check("pipeline.lock/x").unwrap(),
            "`pipeline.lock/x` lies inside `pipeline.lock`, pipe's lock file"
        );
        for p in [
            "pipe.toml",
            "pipe.local.toml",
            "dvc.yaml",
            "dvc.lock",
            ".dvc/tmp",
        ] {
            assert!(check(p).is_some(), "{p}");
        }
        assert_eq!(
            check("data/.gitignore").unwrap(),
            "`data/.gitignore` is a git ignore file"
        );
        assert!(check(".dvcignore").is_some());
    }

    #[test]
    fn leaves_ordinary_and_look_alike_paths_alone() {
        for p in [
            "params.yaml",
            "sub/pipeline.yaml",
            "sub/pipe.toml",
            "data/dvc.lock",
            "x.git",
            ".github/workflow.yml",
            ".gitattributes",
            "data.dvc",
            "a/.pipeline-cachex",
            "model/weights.bin",
        ] {
            assert_eq!(check(p), None, "{p}");
        }
    }
}
