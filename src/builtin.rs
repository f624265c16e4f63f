//! The registry of built-in stages (`uses:` in pipeline.yaml), engine side.
//!
//! A built-in is described by a [`Builtin`]: its name, an algorithm version
//! that enters the stage fingerprint (bump it when outputs would change for
//! the same inputs), and its `with:` arguments, each declared as an input
//! path, an output path (with the kind of output) or a plain option. From
//! that the engine derives the stage's deps and outs exactly as if the user
//! had written them, so built-in and `cmd` stages share the DAG, the
//! fingerprints and the cache. The work itself is a plain function of the
//! `pipe-stages` crate, called in-process with resolved paths and params.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value as Json};

use crate::spec::OutKind;

/// What a `with:` argument of a built-in is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgRole {
    /// A path the stage reads: becomes a dep.
    Input,
    /// A path the stage writes: becomes an out of the given kind.
    Output(OutKind),
    /// A plain value passed to the stage.
    Option,
}

#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static str,
    pub role: ArgRole,
    pub required: bool,
    pub help: &'static str,
}

/// Everything a built-in receives when it runs.
#[derive(Debug)]
pub struct BuiltinCall<'a> {
    /// Absolute paths of the input and output arguments.
    pub paths: BTreeMap<&'a str, PathBuf>,
    /// Option arguments as written in `with:`.
    pub options: &'a BTreeMap<String, Json>,
    /// The stage's params, merged: a whole section (`params: [fit]`)
    /// contributes its keys, a leaf (`fit.C`) its last component.
    pub params: &'a Map<String, Json>,
}

pub type RunFn = fn(&BuiltinCall) -> Result<(), String>;

#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub version: u32,
    pub summary: &'static str,
    pub args: &'static [Arg],
    pub run: RunFn,
}

impl Builtin {
    pub fn arg(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.name == name)
    }
}

/// Every built-in stage `pipe` ships.
pub fn registry() -> &'static [Builtin] {
    REGISTRY
}

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    REGISTRY.iter().find(|b| b.name == name)
}

static REGISTRY: &[Builtin] = &[Builtin {
    name: "synth",
    version: pipe_stages::synth::VERSION,
    summary: "write a deterministic synthetic labelled review corpus (PhraseId SentenceId Phrase Sentiment)",
    args: &[Arg {
        name: "out",
        role: ArgRole::Output(OutKind::Out),
        required: true,
        help: "the TSV file to write",
    }],
    run: run_synth,
}];

fn run_synth(call: &BuiltinCall) -> Result<(), String> {
    let params = pipe_stages::synth::SynthParams::from_json(call.params)?;
    pipe_stages::synth::write_corpus(&call.paths["out"], &params).map_err(|e| e.to_string())
}
