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
    // `pipe __builtin STAGE`: internal, a built-in stage in a cluster job
    // (see `pipe::executor::script`).
    if args.len() == 3 && args[1] == pipe::executor::script::BUILTIN_ARG {
        let stage = args[2].to_string_lossy();
        let root = std::env::current_dir().unwrap_or_default();
        return match pipe::run::builtin_in_job(&root, &stage) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("pipe: stage {stage}: {message}");
                ExitCode::FAILURE
            }
        };
    }
    // `pipe __job`: internal, a stage's job on a node that shares no
    // filesystem with the project (see `pipe::executor::staged`).
    if args.len() == 2 && args[1] == pipe::executor::staged::JOB_ARG {
        return ExitCode::from(pipe::executor::staged::run_on_node() as u8);
    }
    cli::main()
}
