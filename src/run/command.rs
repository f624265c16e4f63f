//! Running a `cmd` stage as child processes.
//!
//! Each command of the stage runs with `sh -c` in the stage's working
//! directory, one after the other, stopping at the first failure. stdin is
//! closed; stdout and stderr are read line by line on their own threads and
//! forwarded as events, so the output of parallel stages interleaves by line,
//! never inside one. The child gets `PIPE_STAGE` and `PIPE_ROOT` in its
//! environment (and what [`Launch::env`] adds, such as the run id), and
//! the variables DVC gives the commands it runs, `DVC_ROOT` (the project
//! root) and `DVC_STAGE` (the stage's name): tools written for DVC stages,
//! such as dvclive, read them to know that a pipeline runner is in charge
//! (dvclive then records no experiment of its own). `pipe exp run` adds
//! DVC's experiment variables (see [`crate::exp::isolated`]).
//!
//! A stage never outlives pipe. On Linux, `pipe repro` runs each command as
//! `pipe __supervise sh -c CMD`: the supervisor leads a process group of its
//! own, which the stage's processes inherit, and gets SIGTERM when pipe dies,
//! however pipe dies; it then stops the whole group (see
//! [`super::supervisor`] for the design). Without a supervisor (tests, and
//! other systems, where the group would not be stopped) `sh` runs in pipe's
//! own process group, so that Ctrl-C and a kill of pipe's group reach it, and
//! on Linux is killed if pipe dies.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::events::{Event, Reporter, Stream};
use super::interrupt::Interrupt;

/// The variable DVC sets to the project root for every stage command.
pub const DVC_ROOT: &str = "DVC_ROOT";
/// ... and to the stage's name.
pub const DVC_STAGE: &str = "DVC_STAGE";

/// Where and how a stage's commands run.
pub struct Launch<'a> {
    pub stage: &'a str,
    pub root: &'a Path,
    pub cwd: &'a Path,
    /// Extra environment variables.
    pub env: &'a [(&'a str, &'a str)],
    /// The `pipe` binary to run `sh` under (see [`super::supervisor`]);
    /// `None` runs `sh` directly.
    pub supervisor: Option<&'a Path>,
    /// A request to stop: no command starts after it, running ones get its
    /// signal (see [`super::interrupt`]).
    pub interrupt: &'a Interrupt,
}

/// Runs the commands; `Err` holds a one-line reason for the failure.
pub fn run_commands(
    launch: &Launch,
    commands: &[String],
    reporter: &dyn Reporter,
) -> Result<(), String> {
    for cmd in commands {
        run_one(launch, cmd, reporter)?;
    }
    Ok(())
}

fn run_one(launch: &Launch, cmd: &str, reporter: &dyn Reporter) -> Result<(), String> {
    let (stage, cwd) = (launch.stage, launch.cwd);
    if launch.interrupt.requested().is_some() {
        return Err(format!(
            "`{}` was not started: the run was interrupted",
            short(cmd)
        ));
    }
    let supervisor = launch.supervisor.filter(|_| cfg!(target_os = "linux"));
    let mut command = match supervisor {
        Some(exe) => {
            let mut c = Command::new(exe);
            c.arg(super::supervisor::SUPERVISE_ARG)
                .arg("sh")
                .process_group(0);
            c
        }
        None => Command::new("sh"),
    };
    command
        .arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .envs(launch.env.iter().copied())
        .env("PIPE_STAGE", stage)
        .env("PIPE_ROOT", launch.root)
        .env(DVC_STAGE, stage)
        // Absolute, as DVC gives it, even under `pipe -C DIR`.
        .env(
            DVC_ROOT,
            std::path::absolute(launch.root).unwrap_or_else(|_| launch.root.to_path_buf()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The supervisor stops the stage's process group on SIGTERM; a bare
    // `sh` is simply killed.
    let signal = if supervisor.is_some() {
        libc::SIGTERM
    } else {
        libc::SIGKILL
    };
    die_with_parent(&mut command, signal);
    reporter.event(Event::Command { stage, cmd });
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start `sh -c {cmd}` in {}: {e}", cwd.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let tracked = launch.interrupt.track(child.id());
    let status = std::thread::scope(|s| {
        s.spawn(|| forward(stage, stdout, Stream::Stdout, reporter));
        s.spawn(|| forward(stage, stderr, Stream::Stderr, reporter));
        // The process is unregistered once it has exited but before it is
        // reaped, so that a stop request never signals a reused pid.
        wait_exited(child.id());
        drop(tracked);
        child.wait()
    })
    .map_err(|e| format!("lost the command `{cmd}`: {e}"))?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let cmd = short(cmd);
    Err(match (status.code(), status.signal()) {
        (Some(code), _) => format!("`{cmd}` exited with code {code}"),
        (None, Some(sig)) => format!("`{cmd}` was killed by signal {sig}"),
        _ => format!("`{cmd}` failed"),
    })
}

/// Waits until the child `pid` has exited, without reaping it.
fn wait_exited(pid: u32) {
    loop {
        // SAFETY: waitid on our own child, filling a local siginfo_t.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// The first line of a command, cut to a length that fits a status line.
pub(crate) fn short(cmd: &str) -> String {
    let first = cmd.lines().next().unwrap_or_default().trim();
    if first.chars().count() > 60 || cmd.trim().contains('\n') {
        format!("{}…", first.chars().take(60).collect::<String>())
    } else {
        first.to_string()
    }
}

fn forward(stage: &str, pipe: impl Read, stream: Stream, reporter: &dyn Reporter) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']);
                reporter.event(Event::Output {
                    stage,
                    stream,
                    line,
                });
            }
        }
    }
}

/// Makes the child get `signal` when its parent (this process) dies, and not
/// start at all if the parent died already.
#[cfg(target_os = "linux")]
pub fn die_with_parent(command: &mut Command, signal: libc::c_int) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of
    // the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the signal was armed.
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_: &mut Command, _: libc::c_int) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Lines(Mutex<Vec<(Stream, String)>>);

    impl Reporter for Lines {
        fn event(&self, e: Event<'_>) {
            if let Event::Output { stream, line, .. } = e {
                self.0.lock().unwrap().push((stream, line.to_string()));
            }
        }
    }

    #[test]
    fn streams_lines_and_reports_the_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let lines = Lines::default();
        let cmds = vec![
            "echo one; echo two >&2".to_string(),
            "echo $PIPE_STAGE $DVC_STAGE; [ \"$DVC_ROOT\" = \"$PIPE_ROOT\" ] || exit 9; exit 3"
                .to_string(),
        ];
        let launch = Launch {
            stage: "s",
            root: dir.path(),
            cwd: dir.path(),
            env: &[],
            supervisor: None,
            interrupt: &Interrupt::new(),
        };
        let err = run_commands(&launch, &cmds, &lines).unwrap_err();
        assert!(err.ends_with("` exited with code 3"), "{err}");
        let got = lines.0.into_inner().unwrap();
        assert!(got.contains(&(Stream::Stdout, "one".into())));
        assert!(got.contains(&(Stream::Stderr, "two".into())));
        assert!(got.contains(&(Stream::Stdout, "s s".into())));
    }
}
