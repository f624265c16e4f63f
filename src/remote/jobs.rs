//! The results of cluster jobs that work through the remote (see
//! [`crate::executor::staged`]): small JSON documents that a job leaves
//! and the `pipe` that submitted it reads once, then deletes.
//!
//! ```text
//! <url>/v1/jobs/<token>      what the job with this token did
//! ```
//!
//! The token is random, chosen for one submission, so a result is never
//! taken for another submission's. Unlike objects, a result is not content
//! addressed: it is written once by one job and read by one `pipe`.

use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt, PutPayload};

use super::{Remote, RemoteError};

impl Remote {
    fn job_key(&self, token: &str) -> StorePath {
        self.root.clone().join("jobs").join(token)
    }

    /// Leaves the result of the job with `token`.
    pub fn put_job_result(&self, token: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        let key = self.job_key(token);
        self.block_on(async {
            self.store
                .put(&key, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| self.classify(&key, e))
        })
    }

    /// The result of the job with `token`, if it left one.
    pub fn get_job_result(&self, token: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        let key = self.job_key(token);
        self.block_on(async {
            match self.store.get(&key).await {
                Ok(got) => Ok(Some(
                    got.bytes()
                        .await
                        .map_err(|e| self.classify(&key, e))?
                        .to_vec(),
                )),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.classify(&key, e)),
            }
        })
    }

    /// Asks the remote about one key, to learn early that it cannot be
    /// reached, has no bucket, or refuses the credentials.
    pub fn probe(&self) -> Result<(), RemoteError> {
        let key = self.job_key("probe");
        self.block_on(async {
            match self.store.head(&key).await {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.classify(&key, e)),
            }
        })
    }

    /// Removes a result that was read (a result that is gone already is
    /// fine).
    pub fn delete_job_result(&self, token: &str) -> Result<(), RemoteError> {
        let key = self.job_key(token);
        self.block_on(async {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.classify(&key, e)),
            }
        })
    }

    /// The key of a job result, as a user can find it.
    pub fn shown_job_key(&self, token: &str) -> String {
        self.shown_key(&self.job_key(token))
    }
}
