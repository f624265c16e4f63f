//! A tiny supervisor between pipe and a stage's shell, so that no process
//! of a stage outlives the `pipe repro` that started it, however pipe dies.
//!
//! A stage's `sh` usually starts processes of its own (pipelines, `cmd &`,
//! a script's workers), and the parent-death signal reaches only a direct
//! child. So on Linux pipe runs `pipe __supervise sh -c CMD`:
//!
//! * pipe starts the supervisor as the leader of a new process group, the
//!   stage's group, with SIGTERM as its parent-death signal;
//! * the supervisor starts `sh -c CMD` in that same group, with SIGTERM as
//!   the shell's parent-death signal, and waits for it; everything the
//!   shell starts inherits the group;
//! * when it is told to stop (SIGTERM, SIGINT or SIGHUP: pipe died, or
//!   someone signalled it), it forwards the signal to the whole group, waits
//!   up to [`GRACE`] for every other process of the group to exit, then
//!   kills the group (itself included) with SIGKILL. Otherwise it exits
//!   the way `sh` did, so pipe sees the stage's exit code or signal.
//!
//! Being outside pipe's process group is what makes this hold when pipe's
//! whole group is killed (`kill -9 -- -PGID`, or a job control's kill of the
//! job): the supervisor survives that kill, gets its parent-death signal and
//! stops the stage. A `kill -9` of pipe alone, a SIGTERM, and Ctrl-C (SIGINT
//! to the terminal's foreground group, which is pipe's and not the stage's)
//! end pipe the same way and reach the stage the same way: as SIGTERM from
//! the supervisor. A kill of the stage's own group ends all of it at once.
//!
//! What the supervisor cannot stop is a process that left the group
//! (`setsid`, a daemon), or anything when the supervisor itself is killed
//! with SIGKILL (then `sh` still gets its parent-death signal, its children
//! do not): the next run kills those by their run id (see
//! [`super::leftovers`]).
//!
//! A stop signal that a process of the stage sent (`kill 0` in a command
//! signals its own process group, the supervisor included) is the stage's
//! business and no request to stop: the supervisor goes on waiting for `sh`,
//! as it would without a supervisor.
//!
//! The supervisor waits for signals synchronously (they are blocked and
//! taken with `sigtimedwait`, which names the sender), so it runs no code in
//! signal handlers. Signals that pipe was started with ignored (`nohup`)
//! stay ignored for the stage; SIGTERM, its parent-death signal, always
//! stops the supervisor.

use std::ffi::OsString;

/// The hidden first argument that makes the `pipe` binary a supervisor.
pub const SUPERVISE_ARG: &str = "__supervise";

/// How long the stage's processes have, after the stop signal, to exit by
/// themselves before they are killed.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `program args…` supervised; returns the exit code for the
/// supervisor's own process (it dies by the signal that killed the stage,
/// or that told it to stop).
#[cfg(target_os = "linux")]
pub fn supervise(program: &OsString, args: &[OsString]) -> i32 {
    linux::supervise(program, args)
}

/// Elsewhere pipe runs `sh` directly (see [`super::command`]); this only
/// runs the program and passes its exit code on.
#[cfg(not(target_os = "linux"))]
pub fn supervise(program: &OsString, args: &[OsString]) -> i32 {
    match std::process::Command::new(program).args(args).status() {
        Ok(status) => status.code().unwrap_or(1),
        Err(e) => {
            eprintln!("pipe: cannot start {}: {e}", program.to_string_lossy());
            127
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::OsString;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Child, Command, ExitStatus};
    use std::time::{Duration, Instant};

    use libc::c_int;

    use super::GRACE;

    /// The signals that tell the supervisor to stop the stage.
    const STOP: [c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

    /// How often the group is checked while it is stopping.
    const POLL: Duration = Duration::from_millis(10);

    /// The signals the supervisor takes and their dispositions at its start.
    struct Signals {
        /// Blocked, and taken with `sigtimedwait`.
        waited: libc::sigset_t,
        /// The mask the supervisor started with, for the stage.
        mask: libc::sigset_t,
        /// Signals that were ignored at the start, ignored again for the stage.
        ignored: Vec<c_int>,
    }

    impl Signals {
        fn take() -> Signals {
            // SAFETY: plain libc calls on local sigsets, in a process with
            // one thread.
            unsafe {
                let mut waited: libc::sigset_t = std::mem::zeroed();
                let mut mask: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut waited);
                let mut ignored = Vec::new();
                for sig in STOP.into_iter().chain([libc::SIGCHLD]) {
                    if libc::signal(sig, libc::SIG_DFL) == libc::SIG_IGN {
                        ignored.push(sig);
                        // Ignored SIGINT and SIGHUP (`nohup`) stay ignored;
                        // SIGTERM (the parent-death signal) and SIGCHLD
                        // (to wait for `sh`) are always taken.
                        if sig == libc::SIGINT || sig == libc::SIGHUP {
                            libc::signal(sig, libc::SIG_IGN);
                            continue;
                        }
                    }
                    libc::sigaddset(&mut waited, sig);
                }
                libc::sigprocmask(libc::SIG_BLOCK, &waited, &mut mask);
                Signals {
                    waited,
                    mask,
                    ignored,
                }
            }
        }

        /// The next signal and the pid of its sender (0: the kernel),
        /// waiting at most `timeout` (`None`: for ever).
        fn next(&self, timeout: Option<Duration>) -> Option<(c_int, libc::pid_t)> {
            // SAFETY: sigtimedwait/sigwaitinfo on a valid sigset, filling a
            // local siginfo_t; si_pid is read only for a signal taken.
            unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                let sig = match timeout {
                    None => libc::sigwaitinfo(&self.waited, &mut info),
                    Some(t) => {
                        let ts = libc::timespec {
                            tv_sec: t.as_secs() as libc::time_t,
                            tv_nsec: t.subsec_nanos() as libc::c_long,
                        };
                        libc::sigtimedwait(&self.waited, &mut info, &ts)
                    }
                };
                (sig > 0).then(|| (sig, info.si_pid()))
            }
        }
    }

    pub fn supervise(program: &OsString, args: &[OsString]) -> i32 {
        let me = std::process::id() as i32;
        // SAFETY: getpgrp/setpgid on this process.
        let group_ok = unsafe { libc::getpgrp() == me || libc::setpgid(0, 0) == 0 };
        if !group_ok {
            // Signalling "our" group would reach pipe and whoever else is in it.
            eprintln!("pipe: the stage supervisor cannot lead a process group of its own");
            return 127;
        }
        let signals = Signals::take();
        let mut command = Command::new(program);
        command.args(args);
        let (mask, ignored) = (signals.mask, signals.ignored.clone());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(move || {
                for &sig in &ignored {
                    libc::signal(sig, libc::SIG_IGN);
                }
                libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
                Ok(())
            });
        }
        super::super::command::die_with_parent(&mut command, libc::SIGTERM);
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pipe: cannot start {}: {e}", program.to_string_lossy());
                return 127;
            }
        };

        let mut status: Option<ExitStatus> = None;
        let mut stopping: Option<(c_int, Instant)> = None;
        loop {
            let timeout = stopping.map(|_| POLL);
            match signals.next(timeout) {
                Some((sig, sender))
                    if sig != libc::SIGCHLD && stopping.is_none() && !in_group(sender, me) =>
                {
                    stopping = Some((sig, Instant::now() + GRACE));
                    signal_group(me, sig);
                }
                // SIGCHLD, a stage process signalling its own group (`kill
                // 0`), our own copy of the forwarded signal, a second request
                // to stop, a timeout.
                _ => {}
            }
            if status.is_none() {
                status = reap(&mut child);
            }
            match (stopping, status) {
                (None, Some(status)) => return exit_like(status),
                (None, None) => {}
                (Some((sig, deadline)), _) => {
                    if status.is_some() && !others_in_group(me) {
                        return die_by(sig);
                    }
                    if Instant::now() >= deadline {
                        signal_group(me, libc::SIGKILL);
                    }
                }
            }
        }
    }

    fn signal_group(group: i32, sig: c_int) {
        // SAFETY: kill(2) to our own process group.
        unsafe {
            libc::kill(-group, sig);
        }
    }

    fn reap(child: &mut Child) -> Option<ExitStatus> {
        child.try_wait().ok().flatten()
    }

    /// Whether a live process other than this one is in process group
    /// `group` (zombies are not: they run nothing).
    fn others_in_group(group: i32) -> bool {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return false;
        };
        let me = std::process::id() as i32;
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&pid| pid != me)
            .any(|pid| matches!(state_and_group(pid), Some((state, pgrp)) if pgrp == group && !matches!(state, 'Z' | 'X')))
    }

    /// Whether `pid` (0: the kernel) is in process group `group`, zombie or not.
    fn in_group(pid: libc::pid_t, group: i32) -> bool {
        pid > 0 && state_and_group(pid).is_some_and(|(_, pgrp)| pgrp == group)
    }

    /// A process's state letter and process group, from `/proc/PID/stat`.
    fn state_and_group(pid: i32) -> Option<(char, i32)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let (_, rest) = stat.rsplit_once(')')?;
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let pgrp = fields.nth(1)?.parse().ok()?;
        Some((state, pgrp))
    }

    /// The supervisor's exit: `sh`'s exit code, or death by its signal.
    fn exit_like(status: ExitStatus) -> i32 {
        match (status.code(), status.signal()) {
            (Some(code), _) => code,
            (None, Some(sig)) => die_by(sig),
            _ => 1,
        }
    }

    /// Dies by `sig` (so that pipe reports the signal); returns the exit
    /// code to use when `sig` does not terminate.
    fn die_by(sig: c_int) -> i32 {
        // SAFETY: resetting a disposition, unblocking and signalling ourselves.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::kill(libc::getpid(), sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
        128 + sig
    }
}
