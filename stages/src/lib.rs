//! Built-in ML stages of `pipe`.
//!
//! Each stage is a plain function from files to files with a typed params
//! struct and an algorithm version that enters the stage fingerprint. This
//! crate knows nothing of the engine: the engine's registry (`pipe::builtin`)
//! declares which `with:` arguments are inputs and outputs and calls in here.
//!
//! - [`synth`]: a deterministic synthetic review corpus for the demo.

pub mod synth;
