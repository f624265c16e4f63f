//! `pipe import-url` and `pipe update`: tracked data that comes from a URL.
//!
//! As `dvc import-url` does, the `.dvc` file records where the data came
//! from and which version of it (`frozen: true`, `deps: - path: URL` with
//! its version, see [`crate::remote::source`]) besides the data's own hash
//! (`outs:`). The download is hashed as it arrives and enters the cache
//! whole or not at all; the workspace copy is then restored from the cache
//! like any tracked data.
//!
//! `pipe update` asks the source for its version (one `HEAD` request, or a
//! read of a local file) and downloads it again only when that differs
//! from the recorded one. It never replaces a workspace copy that was
//! edited and that the cache does not hold, unless forced.

use std::path::Path;

use super::{check_addable, dvc_file_for, read, DvcFile, Tracker};
use crate::error::Error;
use crate::gitignore::GitIgnorer;
use crate::lock::PathRecord;
use crate::paths::RelPath;
use crate::project::Project;
use crate::remote::source::{is_url, Downloaded, Source};

/// What an import or an update did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub path: RelPath,
    pub file: RelPath,
    pub size: u64,
    /// False when the source had not changed (nothing was downloaded).
    pub downloaded: bool,
    pub gitignore: Option<RelPath>,
}

/// The source URL as the `.dvc` file records it: a URL as given, a local
/// path relative to the `.dvc` file's directory (as DVC records it) when
/// it is inside the project, else absolute.
fn recorded_url(project: &Project, cwd: &Path, url: &str, file: &RelPath) -> String {
    if is_url(url) {
        return url.to_string();
    }
    let abs = cwd.join(url);
    let dir = file.parent().unwrap_or_default().to_path(&project.root);
    match abs.strip_prefix(&project.root) {
        Ok(inside) => {
            let ups = dir
                .strip_prefix(&project.root)
                .map(|d| d.components().count())
                .unwrap_or(0);
            format!("{}{}", "../".repeat(ups), inside.display())
        }
        Err(_) => abs.display().to_string(),
    }
}

/// Opens the source of `file` (paths relative to its directory).
fn open_source(project: &Project, file: &RelPath, url: &str) -> Result<Source, Error> {
    let base = file.parent().unwrap_or_default().to_path(&project.root);
    Ok(Source::open(url, &base, &project.config.remotes)?)
}

/// Puts the downloaded content at `path` and records it in `file`.
fn install(
    project: &Project,
    file: &mut DvcFile,
    path: &RelPath,
    url: &str,
    got: &Downloaded,
    ignorer: &mut GitIgnorer,
) -> Result<Option<RelPath>, Error> {
    let record = PathRecord {
        path: path.clone(),
        blake3: got.blake3,
        size: got.size,
        nfiles: None,
        cache: true,
        persist: false,
    };
    project.cache.restore(&project.workspace, &record)?;
    file.set_source(url, got.version.clone());
    file.set_out(path, &got.md5, got.blake3, got.size, None);
    super::write_and_ignore(project, file, path, false, ignorer)
}

/// `pipe import-url URL PATH`: downloads `url` to `path` and writes
/// `PATH.dvc`. An existing `path` or `.dvc` file is replaced only with
/// `force`.
pub fn import_url(
    project: &Project,
    tracker: &Tracker,
    files: &[DvcFile],
    (cwd, url): (&Path, &str),
    path: &RelPath,
    force: bool,
    ignorer: &mut GitIgnorer,
) -> Result<Imported, Error> {
    check_addable(project, files, path)?;
    let dvc = dvc_file_for(path);
    let exists = |p: &RelPath| std::fs::symlink_metadata(p.to_path(&project.root)).is_ok();
    if !force {
        for p in [path, &dvc] {
            if exists(p) {
                return Err(Error::Refused {
                    message: format!("{p} exists; pipe import-url does not replace it"),
                    hint: Some("add -f to replace it (what is there is lost unless the cache holds it), or choose another path".into()),
                });
            }
        }
    }
    let recorded = recorded_url(project, cwd, url, &dvc);
    let source = open_source(project, &dvc, &recorded)?;
    let got = source.download(&project.cache)?;
    tracker
        .index
        .insert(got.blake3, super::md5::Md5Kind::Plain, &got.md5);
    let mut file = DvcFile::new(dvc.clone());
    let gitignore = install(project, &mut file, path, &recorded, &got, ignorer)?;
    Ok(Imported {
        path: path.clone(),
        file: dvc,
        size: got.size,
        downloaded: true,
        gitignore,
    })
}

/// `pipe update FILE.dvc`: downloads the source again if its version
/// changed since it was recorded.
pub fn update(
    project: &Project,
    tracker: &Tracker,
    file: &RelPath,
    force: bool,
    ignorer: &mut GitIgnorer,
) -> Result<Imported, Error> {
    let mut dvc = read(&project.root, file)?;
    let (Some(dep), [out]) = (dvc.deps.first().cloned(), dvc.outs.as_slice()) else {
        return Err(Error::Refused {
            message: format!("{file} is not an import: it records no source (`deps:`) for one output"),
            hint: Some("`pipe update` updates what `pipe import-url` (or `dvc import-url`) imported; `pipe add` records data you changed yourself".into()),
        });
    };
    let out = out.clone();
    let source = open_source(project, file, &dep.url)?;
    let now = source.version()?;
    if now.same_as(&dep.version) {
        return Ok(Imported {
            path: out.path.clone(),
            file: file.clone(),
            size: out.size.unwrap_or(0),
            downloaded: false,
            gitignore: None,
        });
    }
    // The workspace copy goes: it must be the recorded version, or kept.
    if !force {
        let (state, current) = tracker.state(&out)?;
        if state == super::TrackedState::Modified {
            let current = current.expect("a modified path exists");
            if !project
                .cache
                .holds(&PathRecord::new(out.path.clone(), &current))
            {
                return Err(Error::Refused {
                    message: format!(
                        "{} was edited since it was imported, and the cache has no copy of this version",
                        out.path
                    ),
                    hint: Some(format!(
                        "`pipe add {0}` keeps it in the cache first, or `pipe update -f {file}` replaces it",
                        out.path
                    )),
                });
            }
        }
    }
    let got = source.download(&project.cache)?;
    tracker
        .index
        .insert(got.blake3, super::md5::Md5Kind::Plain, &got.md5);
    let gitignore = install(project, &mut dvc, &out.path, &dep.url, &got, ignorer)?;
    Ok(Imported {
        path: out.path,
        file: file.clone(),
        size: got.size,
        downloaded: true,
        gitignore,
    })
}
