//! Where predictions run: never on the async runtime's threads.
//!
//! A prediction is CPU work (microseconds for a short review, milliseconds
//! for a body of a megabyte). Run on a runtime thread it would hold up every
//! connection that thread serves, so it is handed to one of two executors:
//!
//! - [`ExecutorKind::Pool`] (the default): a dedicated rayon pool of
//!   `workers` inference threads; the request waits on a oneshot channel.
//! - [`ExecutorKind::Blocking`]: tokio's `spawn_blocking`, with a semaphore
//!   of `workers` permits so that no more predictions run at once than
//!   there are cores.
//!
//! Both bound the threads that predict. `bench/serve.sh` measures the two
//! (`--executor`, a hidden flag of `pipe serve`); the figures are in the
//! README. A panic in a prediction (a bug) is caught and becomes a 500 for
//! that request, never the end of the service.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use tokio::sync::{oneshot, Semaphore};

/// How predictions are taken off the runtime; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    Pool,
    Blocking,
}

/// A prediction that panicked.
#[derive(Debug)]
pub struct Panicked;

#[derive(Debug)]
pub struct Inference {
    pool: Option<rayon::ThreadPool>,
    permits: Arc<Semaphore>,
}

impl Inference {
    pub fn new(kind: ExecutorKind, threads: usize) -> std::io::Result<Inference> {
        let threads = threads.max(1);
        let pool = match kind {
            ExecutorKind::Pool => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("pipe-infer-{i}"))
                    .build()
                    .map_err(std::io::Error::other)?,
            ),
            ExecutorKind::Blocking => None,
        };
        Ok(Inference {
            pool,
            permits: Arc::new(Semaphore::new(threads)),
        })
    }

    /// Runs `f` on an inference thread and waits for its result.
    pub async fn run<R, F>(&self, f: F) -> Result<R, Panicked>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        match &self.pool {
            Some(pool) => {
                let (tx, rx) = oneshot::channel();
                pool.spawn(move || {
                    let _ = tx.send(std::panic::catch_unwind(AssertUnwindSafe(f)));
                });
                match rx.await {
                    Ok(Ok(r)) => Ok(r),
                    _ => Err(Panicked),
                }
            }
            None => {
                let _permit = self.permits.acquire().await.map_err(|_| Panicked)?;
                tokio::task::spawn_blocking(f).await.map_err(|_| Panicked)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_executors_run_work_and_survive_a_panic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for kind in [ExecutorKind::Pool, ExecutorKind::Blocking] {
            let inference = Inference::new(kind, 2).unwrap();
            rt.block_on(async {
                assert_eq!(inference.run(|| 6 * 7).await.unwrap(), 42);
                let r = inference.run(|| -> u8 { panic!("a bug") }).await;
                assert!(r.is_err(), "{kind:?}");
                assert_eq!(inference.run(|| 1).await.unwrap(), 1, "{kind:?}");
            });
        }
    }
}
