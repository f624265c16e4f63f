//! `pipe`: a reproducible ML pipeline orchestrator.
//!
//! A user declares stages in `pipeline.yaml`; pipe builds the stage DAG,
//! fingerprints every stage (its command or built-in, its params, the BLAKE3
//! content of its deps), skips what is fresh, restores what it has seen
//! before from a content-addressed cache, and runs the rest.
//!
//! The flow of one `pipe repro`, module by module:
//!
//! 1. [`spec`] reads `pipeline.yaml` (or a DVC project's `dvc.yaml` files)
//!    and the params files into typed stages, with located errors.
//! 2. [`graph`] builds the DAG and rejects cycles and conflicting outputs.
//! 3. [`hash`] hashes deps and outputs (stat cache first).
//! 4. [`fingerprint`] and [`plan`] decide what is fresh, restorable or stale,
//!    and why.
//! 5. [`run`] schedules and runs stale stages, [`cache`] stores and restores
//!    their outputs, [`lock`] records the results in `pipeline.lock`. A
//!    stage's work runs here or, through [`executor`], as a job of a
//!    cluster scheduler (Slurm, or any other through command templates).
//!
//! Outputs outside a run: [`checkout`] restores what the lock records,
//! [`commit`] records stages as they are, [`gc`] chooses what the cache
//! keeps, and [`gitignore`] keeps cached outputs out of git as they are
//! recorded.
//!
//! DVC projects: [`dvc`] takes over from `dvc.lock` the stages DVC ran,
//! once their files are checked against DVC's md5s.
//!
//! Data outside the pipeline: [`track`] keeps raw data (`pipe add`,
//! `pipe import-url`) in the cache through DVC's own `.dvc` files.
//!
//! Serving: [`serve`] answers HTTP requests with a model the `fit` stage
//! wrote (`pipe serve`).
//!
//! Comparing runs: [`git`] reads the project at any commit, [`compare`]
//! flattens and diffs metrics and params, and [`exp`] records experiments
//! as commits under their own refs.
//!
//! The library never prints; the `cli` module of the binary renders.

pub mod atomic_write;
pub mod builtin;
pub mod cache;
pub mod checkout;
pub mod commit;
pub mod compare;
pub mod config;
pub mod dag_view;
pub mod dvc;
pub mod error;
pub mod executor;
pub mod exp;
pub mod fingerprint;
pub mod gc;
pub mod git;
pub mod gitignore;
pub mod graph;
pub mod hash;
pub mod lock;
pub mod paths;
pub mod plan;
pub mod plots;
pub mod project;
pub mod remote;
pub mod run;
pub mod serve;
pub mod spec;
pub mod track;
pub mod workspace;

pub use error::Error;
