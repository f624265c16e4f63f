//! DVC md5 → BLAKE3, on the remote: what lets a teammate pull data that a
//! `.dvc` file records by md5 only.
//!
//! A `.dvc` file that DVC wrote names its data by md5; pipe's cache and
//! remotes are addressed by BLAKE3. The machine that pushes such data
//! knows both (it hashed the data, see [`crate::track::md5::Md5Index`]), and
//! leaves the link on the remote beside the objects:
//!
//! ```text
//! <url>/v1/md5/ab/cdef…        the BLAKE3 (hex) of the content whose md5 is abcdef…
//! <url>/v1/md5/ab/cdef….dir    the same for a directory's `.dir` md5
//! ```
//!
//! Created like objects (`If-None-Match: *`, never replaced), after the
//! object it names. Nothing in it is trusted: what a fetch brings by it is
//! checked against the md5 before pipe records the link locally
//! ([`crate::track::remote`]).

use super::{Remote, RemoteError};
use crate::hash::Digest;

impl Remote {
    fn md5_key(&self, md5: &str) -> object_store::path::Path {
        let (head, tail) = md5.split_at(2.min(md5.len()));
        self.root.clone().join("md5").join(head).join(tail)
    }

    /// Records on the remote that `md5` is the content `blake3` (once:
    /// an existing link is left as it is).
    pub fn put_md5(&self, md5: &str, blake3: &Digest) -> Result<(), RemoteError> {
        let key = self.md5_key(md5);
        let bytes = blake3.to_hex().into_bytes();
        self.block_on(self.create(&key, bytes)).map(|_| ())
    }

    /// The BLAKE3 the remote links to `md5`, if it has a link.
    pub fn get_md5(&self, md5: &str) -> Result<Option<Digest>, RemoteError> {
        let key = self.md5_key(md5);
        self.block_on(async {
            let Some(bytes) = self.get_if_any(&key).await? else {
                return Ok(None);
            };
            Ok(std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| Digest::from_hex(t.trim())))
        })
    }
}
