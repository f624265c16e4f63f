//! The `pipe` binary: parse, run, map the result to an exit code.

mod cli;

use std::ffi::OsString;
use std::process::ExitCode;

use pipe::run::supervisor::{supervise, SUPERVISE_ARG};

fn main() -> ExitCode {
    // `pipe __supervise PROGRAM ARGS…`: internal, see `pipe::run::supervisor`.
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.len() >= 3 && args[1] == SUPERVISE_ARG {
        std::process::exit(supervise(&args[2], &args[3..]));
    }
    cli::main()
}
