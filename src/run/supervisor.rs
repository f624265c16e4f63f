//! A tiny supervisor between pipe and a stage's shell, so that a stage never
//! outlives the `pipe repro` that started it.
//!
//! The parent-death signal reaches only a direct child, and a stage's `sh`
//! usually starts processes of its own (pipelines, subshells, a script's
//! workers). So pipe starts `pipe __supervise sh -c CMD` instead of `sh`:
//!
//! * pipe sets the supervisor's parent-death signal to SIGTERM before exec;
//! * the supervisor starts `sh -c CMD` in a process group of its own and
//!   waits for it;
//! * on SIGTERM, SIGINT or SIGHUP (pipe died, Ctrl-C, terminal closed) it
//!   forwards the signal to the whole group, then exits.
//!
//! The stage's process group is not the terminal's foreground group, so
//! Ctrl-C reaches the stage through the supervisor rather than directly;
//! either way every process of the stage gets the signal. A stage process
//! that ignores it is killed by the next run (see [`super::leftovers`]).

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

/// The hidden first argument that makes the `pipe` binary a supervisor.
pub const SUPERVISE_ARG: &str = "__supervise";

/// The process group of the supervised stage (0 until it starts).
static STAGE_GROUP: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(sig: libc::c_int) {
    let group = STAGE_GROUP.load(Ordering::SeqCst);
    // SAFETY: kill and _exit are async-signal-safe.
    unsafe {
        if group > 0 {
            libc::kill(-group, sig);
        }
        libc::_exit(128 + sig);
    }
}

/// Runs `program args…` supervised; returns the exit code for the
/// supervisor's own process (it re-raises a signal that killed the stage).
pub fn supervise(program: &OsString, args: &[OsString]) -> i32 {
    const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];
    // Signals pipe was started with ignored (`nohup`, a background job of a
    // script) stay ignored, for the supervisor and for the stage.
    let mut ignored = [false; 3];
    // SAFETY: installing a handler that only calls async-signal-safe code.
    unsafe {
        for (i, sig) in SIGNALS.into_iter().enumerate() {
            let old = libc::signal(sig, forward as *const () as libc::sighandler_t);
            if old == libc::SIG_IGN {
                libc::signal(sig, libc::SIG_IGN);
                ignored[i] = true;
            }
        }
        // pipe may have died before the parent-death signal was armed.
        if libc::getppid() == 1 {
            return 128 + libc::SIGTERM;
        }
    }
    let mut command = Command::new(program);
    command.args(args).process_group(0);
    // SAFETY: restoring default dispositions in the child before exec.
    unsafe {
        command.pre_exec(move || {
            for (i, sig) in SIGNALS.into_iter().enumerate() {
                libc::signal(
                    sig,
                    if ignored[i] {
                        libc::SIG_IGN
                    } else {
                        libc::SIG_DFL
                    },
                );
            }
            Ok(())
        });
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pipe: cannot start {}: {e}", program.to_string_lossy());
            return 127;
        }
    };
    STAGE_GROUP.store(child.id() as i32, Ordering::SeqCst);
    let status = match child.wait() {
        Ok(s) => s,
        Err(_) => return 1,
    };
    STAGE_GROUP.store(0, Ordering::SeqCst);
    if let Some(code) = status.code() {
        return code;
    }
    if let Some(sig) = status.signal() {
        // Die the same way, so that pipe reports the signal.
        // SAFETY: resetting a disposition and signalling ourselves.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
        }
        return 128 + sig;
    }
    1
}
