//! Integration tests of the `pipe` binary: one test binary, one module per
//! area, a [`env::TestEnv`] builder, insta snapshots under `snapshots/`.
//!
//! Every test builds a project in a temporary directory and runs the real
//! binary in it. Stage commands use only POSIX tools (sh, echo, cat, cp,
//! mkdir, awk, sleep). A command that appends to `runs.log` (not an output)
//! leaves a trace of each time it really ran.

mod cache;
mod commands;
mod compare;
mod concurrency;
mod containment;
mod dag;
mod demo;
mod dvc;
mod dvc_syntax;
mod edits;
mod env;
mod exp;
mod gc;
mod gitignore;
mod integrity;
mod interrupt;
mod limits;
mod ml;
mod plots;
mod readme;
mod remote;
mod remote_packs;
mod repro;
mod serve;
mod services;
mod slurm;
mod slurm_staged;
mod spec;
mod stage_edit;
mod status;
mod templating;
mod track;
mod url_deps;
mod validation;
