//! Tracked data that `.dvc` files record by md5 only, across remotes.
//!
//! Objects travel by BLAKE3 like every output (the records come from
//! [`super::Tracker::record`]). What a `.dvc` file written by DVC lacks is
//! the BLAKE3: the machine that pushes knows it, so a push also leaves on
//! the remote the link md5 → BLAKE3 ([`publish`], see
//! [`crate::remote`]'s `md5map`), and a fetch elsewhere asks for the links
//! of the md5s it does not know ([`resolve`]). What a link brought is
//! checked against its md5 once fetched ([`verify`]); only then does pipe
//! remember the link, so a wrong link restores nothing.

use super::md5::dir_md5;
use super::{DvcFile, TrackedOut, Tracker};
use crate::error::Error;
use crate::hash::Digest;
use crate::lock::PathRecord;
use crate::paths::RelPath;
use crate::project::Project;
use crate::remote::Remote;

/// The entries of `files` that DVC's md5 names, with the BLAKE3 pipe
/// knows for each.
fn linked<'a>(tracker: &'a Tracker, files: &'a [DvcFile]) -> Vec<(&'a str, Digest)> {
    files
        .iter()
        .flat_map(|f| f.outs.iter().filter(|o| o.cache))
        .filter_map(|o| {
            let md5 = o.md5.as_deref()?;
            let b = o.blake3.or_else(|| tracker.index.blake3(md5))?;
            Some((md5, b))
        })
        .collect()
}

/// After a push: links on `remote` each md5 of `files` whose content the
/// remote holds; once per link (remembered with what the remote holds).
/// Returns how many links were made.
pub fn publish(tracker: &Tracker, remote: &Remote, files: &[DvcFile]) -> Result<usize, Error> {
    let mut made = 0;
    for (md5, blake3) in linked(tracker, files) {
        let marker = Digest::of(format!("md5 {md5} {}", blake3.to_hex()).as_bytes());
        if remote.known.contains(&marker) || !remote.known.contains(&blake3) {
            continue;
        }
        remote.put_md5(md5, &blake3)?;
        remote.known.insert(marker);
        made += 1;
    }
    let _ = remote.known.save();
    Ok(made)
}

/// Before a fetch: the records of what `files` name by an md5 pipe does
/// not know, from the links on `remote` (one request each).
pub fn resolve(
    tracker: &Tracker,
    remote: &Remote,
    files: &[DvcFile],
) -> Result<Vec<(TrackedOut, PathRecord)>, Error> {
    let mut out = Vec::new();
    for o in files.iter().flat_map(|f| f.outs.iter().filter(|o| o.cache)) {
        let Some(md5) = o.md5.as_deref() else {
            continue;
        };
        if o.blake3.is_some() || tracker.index.blake3(md5).is_some() {
            continue;
        }
        if let Some(b) = remote.get_md5(md5)? {
            out.push((o.clone(), o.record_with(b)));
        }
    }
    Ok(out)
}

/// After a fetch: checks what `resolved` brought against its md5, and
/// remembers the links that hold; returns the paths whose link was wrong.
pub fn verify(
    project: &Project,
    tracker: &Tracker,
    resolved: &[(TrackedOut, PathRecord)],
) -> Result<Vec<RelPath>, Error> {
    let cache = &project.cache;
    let mut wrong = Vec::new();
    for (out, record) in resolved {
        let Some(md5) = out.md5.as_deref() else {
            continue;
        };
        if !cache.contains(record) {
            continue; // not fetched: the fetch said so
        }
        let read = |e: std::io::Error| {
            Error::io(format!("cannot read the cache's copy of {}", out.path))(e)
        };
        let file_md5 = |hash: &Digest| {
            tracker
                .index
                .md5_of(hash, out.kind, &cache.object_path(hash))
                .map_err(read)
        };
        let found = if record.is_dir() {
            let manifest = cache.manifest(&record.blake3)?;
            let mut files = Vec::new();
            for e in manifest.files() {
                files.push((e.path.clone(), file_md5(&e.hash)?));
            }
            dir_md5(&files)
        } else {
            file_md5(&record.blake3)?
        };
        if found == md5 {
            tracker.index.insert(record.blake3, out.kind, md5);
        } else {
            wrong.push(out.path.clone());
        }
    }
    tracker.save();
    Ok(wrong)
}
