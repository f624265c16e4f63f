//! Tracked data: raw files and directories kept in the cache by content,
//! outside any stage, through DVC's `.dvc` files.
//!
//! `pipe add data/data.xml` stores the file in the cache, writes
//! `data/data.xml.dvc` (DVC's format, [`dvcfile`]) for git to commit, and
//! keeps the data itself out of git (`/data.xml` in `data/.gitignore`, as
//! [`crate::gitignore`] does for outputs). From then on the `.dvc` file is
//! the data's version: `pipe status` says when the data no longer matches
//! it, `pipe add` again records the new version, `pipe checkout` puts the
//! version a commit's `.dvc` file records back, `pipe push`/`pull` move it
//! to and from a remote, and `pipe gc` keeps it for the scopes it keeps.
//! A stage that reads the data lists it in `deps` like any file.
//!
//! Every `.dvc` file of the workspace is found by a walk that skips what
//! the project's `.gitignore` files ignore (where the data and outputs
//! are, and never a `.dvc` file to commit), stage outputs, `.git`, `.dvc`
//! and the cache ([`discover`]).
//!
//! **Which hash.** pipe's cache is addressed by BLAKE3; DVC's `.dvc` files
//! record md5. pipe writes both (BLAKE3 under `meta: pipe:`, see
//! [`dvcfile`]). A `.dvc` file DVC wrote has only md5: pipe then checks
//! the workspace content against the md5 the first time it meets it, and
//! remembers which BLAKE3 content has that md5 ([`md5::Md5Index`]); a
//! version that is not in the workspace is taken from DVC's own cache
//! (`.dvc/cache`, checked against its md5 as it is copied) into pipe's.
//! So an existing DVC project's data works without `dvc` installed.

pub mod dvcfile;
pub mod import;
pub mod md5;
pub mod remote;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use dvcfile::{dvc_file_for, DvcFile, DvcFileError, TrackedOut, DVC_SUFFIX};

use crate::cache::CACHE_DIR;
use crate::error::Error;
use crate::gitignore::{GitIgnorer, Ignored};
use crate::hash::{Digest, Hashed, Hasher, Manifest, ManifestEntry};
use crate::lock::PathRecord;
use crate::paths::RelPath;
use crate::project::Project;
use crate::spec::{OutKind, Output};
use md5::{dir_md5, Md5Index, Md5Kind, Md5Stream};

/// Every `.dvc` file in the workspace, sorted by path; one that cannot be
/// read is an error naming it.
pub fn discover(project: &Project) -> Result<Vec<DvcFile>, Error> {
    let outputs: Vec<PathBuf> = project
        .pipeline
        .stages
        .iter()
        .flat_map(|s| s.outs.iter().map(|o| o.path.to_path(&project.root)))
        .collect();
    let walker = ignore::WalkBuilder::new(&project.root)
        .hidden(false)
        // Only the project's own ignore files: above it may be anything
        // (an experiment's copy sits inside the cache, which ignores all).
        .parents(false)
        .ignore(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        .require_git(false)
        .follow_links(false)
        .filter_entry(move |e| {
            let name = e.file_name();
            if e.depth() > 0 && (name == ".git" || name == CACHE_DIR || name == ".dvc") {
                return false;
            }
            !(e.file_type().is_some_and(|t| t.is_dir()) && outputs.iter().any(|o| o == e.path()))
        })
        .build();
    let mut paths = Vec::new();
    for entry in walker.flatten() {
        let is_file = entry.file_type().is_some_and(|t| t.is_file());
        let name = entry.file_name().to_string_lossy();
        if !is_file || !name.ends_with(DVC_SUFFIX) || name == DVC_SUFFIX {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&project.root) else {
            continue;
        };
        if let Ok(rel) = RelPath::parse(&rel.to_string_lossy(), None) {
            paths.push(rel);
        }
    }
    paths.sort();
    paths.iter().map(|p| read(&project.root, p)).collect()
}

/// Reads the `.dvc` file `file` of the project at `root`.
pub fn read(root: &Path, file: &RelPath) -> Result<DvcFile, Error> {
    let text = std::fs::read_to_string(file.to_path(root))
        .map_err(Error::io(format!("cannot read {file}")))?;
    Ok(DvcFile::parse(file, &text)?)
}

/// The `.dvc` files among `targets` (by their path, or the path of the
/// data they track, relative to `cwd`), and the targets that are not
/// (stage names).
pub fn split_targets(
    project: &Project,
    cwd: &Path,
    files: &[DvcFile],
    targets: &[String],
) -> (Vec<String>, Vec<DvcFile>) {
    let mut stages = Vec::new();
    let mut tracked: Vec<DvcFile> = Vec::new();
    for t in targets {
        let rel = project_path(project, cwd, t);
        let found = files.iter().find(|f| {
            rel.as_ref()
                .is_some_and(|r| &f.file == r || f.outs.iter().any(|o| &o.path == r))
        });
        match found {
            Some(f) if project.pipeline.stage(t).is_none() => {
                if !tracked.iter().any(|x| x.file == f.file) {
                    tracked.push(f.clone());
                }
            }
            _ => stages.push(t.clone()),
        }
    }
    (stages, tracked)
}

/// `text` (a path relative to `cwd`) as a project path.
pub fn project_path(project: &Project, cwd: &Path, text: &str) -> Option<RelPath> {
    let abs = cwd.join(text.trim_end_matches('/'));
    let rel = abs.strip_prefix(&project.root).ok()?;
    RelPath::parse(&rel.to_string_lossy(), None).ok()
}

/// How tracked data compares with what its `.dvc` file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackedState {
    UpToDate,
    /// Present, and not the recorded content: `pipe add` records it.
    Modified,
    /// Not in the workspace: `pipe checkout` restores it.
    Missing,
    /// The `.dvc` entry records no hash yet.
    NotRecorded,
}

/// Tracked data's hashes: the workspace's, the md5s, the cache's.
pub struct Tracker<'a> {
    project: &'a Project,
    hasher: &'a Hasher,
    pub index: Md5Index,
}

impl<'a> Tracker<'a> {
    pub fn new(project: &'a Project, hasher: &'a Hasher) -> Tracker<'a> {
        Tracker {
            project,
            hasher,
            index: Md5Index::load(project.cache.dir()),
        }
    }

    /// Saves what was learnt (md5s; the stat cache is the caller's).
    pub fn save(&self) {
        let _ = self.index.save();
    }

    /// The workspace content at `path`, hashed (`None`: absent).
    pub fn now(&self, path: &RelPath) -> Result<Option<Hashed>, Error> {
        Ok(self.hasher.hash_output(path)?)
    }

    /// DVC's md5 of `hashed`, the content now at `path`.
    pub fn md5_of(&self, path: &RelPath, hashed: &Hashed, kind: Md5Kind) -> Result<String, Error> {
        let abs = path.to_path(&self.project.root);
        let read = |e: std::io::Error| Error::io(format!("cannot read {path}"))(e);
        let Some(manifest) = &hashed.manifest else {
            return self.index.md5_of(&hashed.hash, kind, &abs).map_err(read);
        };
        if let Some(m) = self.index.md5(&hashed.hash, kind) {
            return Ok(m);
        }
        let mut files = Vec::with_capacity(manifest.entries.len());
        for e in &manifest.entries {
            let m = self
                .index
                .md5_of(&e.hash, kind, &abs.join(&e.path))
                .map_err(read)?;
            files.push((e.path.clone(), m));
        }
        let m = dir_md5(&files);
        self.index.insert(hashed.hash, kind, &m);
        Ok(m)
    }

    /// True when `hashed` is the content `out` records.
    fn matches(&self, out: &TrackedOut, hashed: &Hashed) -> Result<bool, Error> {
        if let Some(b) = out.blake3 {
            return Ok(b == hashed.hash);
        }
        match &out.md5 {
            Some(md5) => Ok(&self.md5_of(&out.path, hashed, out.kind)? == md5),
            None => Ok(false),
        }
    }

    /// The state of `out` in the workspace, and its content there.
    pub fn state(&self, out: &TrackedOut) -> Result<(TrackedState, Option<Hashed>), Error> {
        if out.md5.is_none() && out.blake3.is_none() {
            return Ok((TrackedState::NotRecorded, self.now(&out.path)?));
        }
        let Some(now) = self.now(&out.path)? else {
            return Ok((TrackedState::Missing, None));
        };
        let state = if self.matches(out, &now)? {
            TrackedState::UpToDate
        } else {
            TrackedState::Modified
        };
        Ok((state, Some(now)))
    }

    /// The record (BLAKE3) of the content `out` records, when pipe knows
    /// it: from the `.dvc` file, from the md5s met before, or from the
    /// workspace when it holds that content. With `fill`, content the
    /// cache lacks is stored in it from the workspace or from DVC's cache,
    /// so that it can be restored and pushed.
    pub fn record(&self, out: &TrackedOut, fill: bool) -> Result<Option<PathRecord>, Error> {
        let known = out
            .blake3
            .or_else(|| out.md5.as_deref().and_then(|m| self.index.blake3(m)));
        if let Some(b) = known {
            let record = self.complete(out.record_with(b));
            if !fill || self.project.cache.contains(&record) {
                return Ok(Some(record));
            }
        }
        if !fill && known.is_none() {
            return Ok(None);
        }
        if let (TrackedState::UpToDate, Some(now)) = self.state(out)? {
            if fill {
                self.project
                    .cache
                    .store(&self.project.workspace, &out.path, &now)?;
            }
            let record = PathRecord::new(out.path.clone(), &now);
            if let Some(m) = &out.md5 {
                self.index.insert(now.hash, out.kind, m);
            }
            return Ok(Some(record));
        }
        if let Some(b) = self.take_from_dvc_cache(out)? {
            return Ok(Some(self.complete(out.record_with(b))));
        }
        Ok(known.map(|b| self.complete(out.record_with(b))))
    }

    /// `record` with the file count its manifest gives, when the cache
    /// has it (an old `.dvc` file may lack `nfiles`).
    fn complete(&self, mut record: PathRecord) -> PathRecord {
        if record.is_dir() {
            if let Ok(m) = self.project.cache.manifest(&record.blake3) {
                record.nfiles = Some(m.entries.len() as u64);
                record.size = m.size();
            }
        }
        record
    }

    /// Copies the content `out` records from DVC's cache into pipe's,
    /// checking its md5 as it goes; its BLAKE3, or `None` when DVC's cache
    /// does not have it (whole and intact).
    fn take_from_dvc_cache(&self, out: &TrackedOut) -> Result<Option<Digest>, Error> {
        let (Some(md5), Some(dvc_cache)) = (&out.md5, dvc_cache_dir(&self.project.root)) else {
            return Ok(None);
        };
        let Some(hex) = md5.strip_suffix(".dir") else {
            return self.import_file(&dvc_cache, md5, out.kind);
        };
        let Some(listing) = dvc_object(&dvc_cache, &format!("{hex}.dir")) else {
            return Ok(None);
        };
        let Ok(bytes) = std::fs::read(&listing) else {
            return Ok(None);
        };
        let Ok(list) = serde_json::from_slice::<Vec<serde_json::Value>>(&bytes) else {
            return Ok(None);
        };
        let mut entries = Vec::new();
        let mut md5s = Vec::new();
        for item in list {
            let (Some(rel), Some(m)) = (
                item.get("relpath").and_then(|v| v.as_str()),
                item.get("md5").and_then(|v| v.as_str()),
            ) else {
                return Ok(None);
            };
            if RelPath::normalized(rel).is_err() {
                return Ok(None);
            }
            let Some(b) = self.import_file(&dvc_cache, m, out.kind)? else {
                return Ok(None);
            };
            let size = std::fs::metadata(self.project.cache.object_path(&b))
                .map(|m| m.len())
                .unwrap_or(0);
            entries.push(ManifestEntry {
                path: rel.to_string(),
                hash: b,
                size,
                link: None,
            });
            md5s.push((rel.to_string(), m.to_string()));
        }
        if &dir_md5(&md5s) != md5 {
            return Ok(None);
        }
        entries.sort_by(|a, b| {
            a.path
                .as_bytes()
                .split(|&c| c == b'/')
                .cmp(b.path.as_bytes().split(|&c| c == b'/'))
        });
        let manifest = Manifest { entries };
        let digest = manifest.digest();
        self.project.cache.put_manifest(&manifest, &digest)?;
        self.index.insert(digest, out.kind, md5);
        Ok(Some(digest))
    }

    /// One file of DVC's cache into pipe's, if its md5 checks out.
    fn import_file(
        &self,
        dvc_cache: &Path,
        md5: &str,
        kind: Md5Kind,
    ) -> Result<Option<Digest>, Error> {
        if let Some(b) = self.index.blake3(md5) {
            if self.project.cache.has_object(&b) {
                return Ok(Some(b));
            }
        }
        let Some(path) = dvc_object(dvc_cache, md5) else {
            return Ok(None);
        };
        use std::io::Read;
        let mut file = std::fs::File::open(&path)
            .map_err(Error::io(format!("cannot read {}", path.display())))?;
        let mut incoming = self.project.cache.incoming()?;
        let mut stream = Md5Stream::new(kind);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(Error::io(format!("cannot read {}", path.display())))?;
            if n == 0 {
                break;
            }
            stream.update(&buf[..n]);
            incoming
                .write(&buf[..n])
                .map_err(Error::io("cannot write in the cache"))?;
        }
        if stream.finish() != md5 {
            return Ok(None); // damaged in DVC's cache: not used
        }
        let b = incoming.finish_any()?;
        self.index.insert(b, kind, md5);
        Ok(Some(b))
    }
}

/// DVC's cache directory (`.dvc/cache` of the nearest DVC repository at
/// or above `root`), if there is one.
fn dvc_cache_dir(root: &Path) -> Option<PathBuf> {
    root.ancestors()
        .map(|d| d.join(".dvc").join("cache"))
        .find(|d| d.is_dir())
}

/// The object `md5` in DVC's cache: DVC 3's `files/md5/ab/cdef…`, else
/// DVC 2's `ab/cdef…`.
fn dvc_object(dvc_cache: &Path, md5: &str) -> Option<PathBuf> {
    let (head, tail) = md5.split_at(2.min(md5.len()));
    [
        dvc_cache.join("files").join("md5").join(head).join(tail),
        dvc_cache.join(head).join(tail),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// What `pipe add` did with one path.
#[derive(Debug, Clone)]
pub struct Added {
    pub path: RelPath,
    pub file: RelPath,
    pub size: u64,
    pub nfiles: Option<u64>,
    /// The `.dvc` file already recorded this content.
    pub unchanged: bool,
    /// The `.gitignore` that now ignores the data, if one was written.
    pub gitignore: Option<RelPath>,
}

/// Refuses a path `pipe add` must not track, saying why.
fn check_addable(project: &Project, files: &[DvcFile], path: &RelPath) -> Result<(), Error> {
    let refuse = |message: String, hint: &str| Error::Refused {
        message,
        hint: Some(hint.to_string()),
    };
    if path.is_root() {
        return Err(refuse(
            "pipe add tracks files or directories inside the project, not the project itself"
                .into(),
            "name the data: `pipe add data/`",
        ));
    }
    if let Some(why) = crate::spec::reserved::reserved(path) {
        return Err(refuse(
            format!("cannot track {path}: {why}"),
            "track your data files, not pipe's, git's or DVC's own",
        ));
    }
    if path.as_str().ends_with(DVC_SUFFIX) {
        return Err(refuse(
            format!("{path} is a .dvc file"),
            "name the data it tracks instead",
        ));
    }
    for stage in &project.pipeline.stages {
        if let Some(o) = stage.outs.iter().find(|o| o.path.overlaps(path)) {
            return Err(refuse(
                format!("{path} overlaps the output {} of stage {}", o.path, stage.name),
                "a stage's outputs are recorded in pipeline.lock when it runs; `pipe add` is for data no stage writes",
            ));
        }
    }
    for f in files {
        for o in &f.outs {
            if o.path != *path && o.path.overlaps(path) {
                return Err(refuse(
                    format!("{path} overlaps {}, which {} tracks", o.path, f.file),
                    "track a directory as a whole, or the files in it one by one, not both",
                ));
            }
        }
    }
    Ok(())
}

/// `pipe add`: stores `path` in the cache and records it in its `.dvc`
/// file (`PATH.dvc`, or the existing file that tracks it).
pub fn add(
    project: &Project,
    tracker: &Tracker,
    files: &[DvcFile],
    path: &RelPath,
    ignorer: &mut GitIgnorer,
) -> Result<Added, Error> {
    check_addable(project, files, path)?;
    let hashed = tracker.now(path)?.ok_or_else(|| Error::Refused {
        message: format!("cannot add {path}: no such file or directory"),
        hint: None,
    })?;
    if let Ok(repo) = crate::git::Repo::discover(&project.root, "pipe add") {
        if repo.is_tracked(path).unwrap_or(false) {
            return Err(Error::Refused {
                message: format!("{path} is tracked by git already"),
                hint: Some(format!(
                    "stop tracking it with git first (`git rm -r --cached {path}`), then `pipe add {path}`"
                )),
            });
        }
    }
    let existing = files
        .iter()
        .find(|f| f.outs.iter().any(|o| &o.path == path))
        .cloned();
    let mut file = match existing {
        Some(f) => f,
        None => match read(&project.root, &dvc_file_for(path)) {
            Ok(f) => f,
            Err(_) => DvcFile::new(dvc_file_for(path)),
        },
    };
    let md5 = tracker.md5_of(path, &hashed, Md5Kind::Plain)?;
    let unchanged = file.outs.iter().any(|o| {
        &o.path == path && o.md5.as_deref() == Some(md5.as_str()) && o.blake3 == Some(hashed.hash)
    }) && project
        .cache
        .contains(&PathRecord::new(path.clone(), &hashed));
    project.cache.store(&project.workspace, path, &hashed)?;
    file.set_out(path, &md5, hashed.hash, hashed.size, hashed.nfiles());
    let gitignore = write_and_ignore(project, &file, path, hashed.is_dir(), ignorer)?;
    Ok(Added {
        path: path.clone(),
        file: file.file.clone(),
        size: hashed.size,
        nfiles: hashed.nfiles(),
        unchanged,
        gitignore,
    })
}

/// Writes `file` and keeps the data at `path` out of git; the
/// `.gitignore` it added `path` to, if any.
pub(crate) fn write_and_ignore(
    project: &Project,
    file: &DvcFile,
    path: &RelPath,
    dir: bool,
    ignorer: &mut GitIgnorer,
) -> Result<Option<RelPath>, Error> {
    project
        .workspace
        .write(&file.file, file.to_text().as_bytes(), false)?;
    let out = Output {
        path: path.clone(),
        kind: OutKind::Out,
        cache: true,
        persist: false,
        dir,
        plot: None,
    };
    Ok(match ignorer.ignore(&project.workspace, &out)? {
        Ignored::Added { file } => Some(file),
        _ => None,
    })
}

/// The records of the tracked data of the `.dvc` files in a commit (or
/// anywhere their text comes from): those whose BLAKE3 is known, for gc
/// and transfers.
pub fn records_of(index: &Md5Index, file: &DvcFile) -> Vec<PathRecord> {
    file.outs
        .iter()
        .filter(|o| o.cache)
        .filter_map(|o| {
            o.blake3
                .or_else(|| o.md5.as_deref().and_then(|m| index.blake3(m)))
                .map(|b| o.record_with(b))
        })
        .collect()
}

/// The `.dvc` files of commit `oid`, read from git (`read_blobs` skips
/// files already read elsewhere), and those that cannot be read.
pub fn files_at(
    repo: &crate::git::Repo,
    oid: git2::Oid,
    read_blobs: &mut std::collections::BTreeSet<git2::Oid>,
) -> Result<(Vec<DvcFile>, Vec<DvcFileError>), Error> {
    let mut files = Vec::new();
    let mut bad = Vec::new();
    for (path, blob, _) in repo.tree_files(oid)? {
        if !path.as_str().ends_with(DVC_SUFFIX) || !read_blobs.insert(blob) {
            continue;
        }
        let bytes = repo.blob(blob)?;
        match DvcFile::parse(&path, &String::from_utf8_lossy(&bytes)) {
            Ok(file) => files.push(file),
            Err(e) => bad.push(e),
        }
    }
    Ok((files, bad))
}
