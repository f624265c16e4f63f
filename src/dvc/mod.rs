//! DVC projects: taking over what DVC recorded, and converting for good.
//!
//! pipe reads a DVC project's `dvc.yaml` files as its own pipeline files
//! ([`crate::spec`]). What DVC already ran is recorded in `dvc.lock`, with
//! md5 hashes; pipe records BLAKE3 in `pipeline.lock`. [`adopt`] bridges
//! the two: for each stage that `pipeline.lock` does not record, the
//! stage's entry in its `dvc.lock` ([`lock`]) is checked against the disk
//! (every dep and output must have the md5 DVC recorded, computed as DVC
//! computes it, [`md5`]), and then recorded as pipe would have recorded
//! the run: the same entry `pipe repro` writes, with BLAKE3 hashes, the
//! params values DVC recorded and DVC's command, the outputs stored in the
//! cache. From then on the stage is up to date, and nothing reruns that
//! DVC ran. A stage whose files changed since DVC ran it is left out, with
//! the reason, and runs as stale.
//!
//! pipe never writes `dvc.lock`: it writes `pipeline.lock` beside it.

pub mod adopt;
pub mod lock;
pub mod md5;
