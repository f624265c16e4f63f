//! `TestEnv`: a throw-away project directory and the real `pipe` binary.
//!
//! In the style of `just`'s `Test::new().justfile(..)`: build a project with
//! [`TestEnv::pipeline`], [`TestEnv::params`] and [`TestEnv::file`], run
//! `pipe` in it with [`TestEnv::pipe`] (a child process, exactly as a user
//! runs it), then look at the [`Output`] and at the files it left behind.
//!
//! Snapshots go through [`TestEnv::settings`], whose filters replace what
//! differs between machines and runs: the project path (`[ROOT]`), durations
//! (`[ELAPSED]`), BLAKE3 hashes (`[HASH]`) and process ids (`[PID]`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// The `pipe` binary built by cargo for this test run.
pub const PIPE: &str = env!("CARGO_BIN_EXE_pipe");

/// A project in a fresh temporary directory.
pub struct TestEnv {
    _dir: tempfile::TempDir,
    root: PathBuf,
    vars: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("pipe-it.")
            .tempdir()
            .expect("a temporary directory");
        let root = dir.path().canonicalize().expect("a canonical temp dir");
        TestEnv {
            _dir: dir,
            root,
            vars: Vec::new(),
        }
    }

    /// Writes `pipeline.yaml` (common indentation removed, see [`dedent`]).
    pub fn pipeline(self, yaml: &str) -> TestEnv {
        self.file("pipeline.yaml", &dedent(yaml))
    }

    /// Writes `params.yaml` (common indentation removed).
    pub fn params(self, yaml: &str) -> TestEnv {
        self.file("params.yaml", &dedent(yaml))
    }

    /// Writes a file, creating its directories; contents are taken verbatim.
    pub fn file(self, path: &str, contents: &str) -> TestEnv {
        self.write(path, contents);
        self
    }

    /// Sets an environment variable for every `pipe` this env runs.
    pub fn env(mut self, key: &str, value: &str) -> TestEnv {
        self.vars.push((key.to_string(), value.to_string()));
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of a project path.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directories");
        }
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn read_bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// True if anything (file, directory, even a dangling symlink) is there.
    pub fn exists(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// Removes a file, symlink or directory tree.
    pub fn remove(&self, rel: &str) {
        let path = self.path(rel);
        let meta = std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("remove {rel}: {e}"));
        if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        }
        .unwrap_or_else(|e| panic!("remove {rel}: {e}"));
    }

    /// Sets a file's mtime an hour back, so that the stat cache trusts it
    /// (files modified within the last seconds are re-hashed on purpose).
    pub fn backdate(&self, rel: &str) {
        let file = std::fs::File::options()
            .write(true)
            .open(self.path(rel))
            .unwrap_or_else(|e| panic!("open {rel}: {e}"));
        file.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .expect("set mtime");
    }

    /// A `pipe` command in the project root, ready to run or spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(PIPE);
        cmd.args(args)
            .current_dir(&self.root)
            .env_remove("PIPE_CACHE_LINK")
            .env_remove("PIPE_CACHE_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `pipe ARGS…` in the project root and waits for it.
    pub fn pipe(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {PIPE}: {e}"));
        Output {
            args: args.join(" "),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&out.status),
            elapsed: started.elapsed(),
        }
    }

    /// Runs `pipe ARGS…` on a pseudo-terminal (its stdin, stdout and
    /// stderr), as a person at a terminal does, typing `input` (without
    /// echo). What the terminal showed, stdout and stderr together, is
    /// [`Output::stdout`].
    pub fn pipe_on_terminal(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        use std::os::fd::{FromRawFd, OwnedFd};
        let started = Instant::now();
        let (mut master, slave) = {
            let (mut master, mut slave) = (0, 0);
            // SAFETY: openpty fills two descriptors this function then owns.
            let rc = unsafe {
                libc::openpty(
                    &mut master,
                    &mut slave,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    std::ptr::null(),
                )
            };
            assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
            // SAFETY: both descriptors were just opened and are not owned elsewhere.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                libc::tcgetattr(slave, &mut t);
                t.c_lflag &= !libc::ECHO;
                t.c_oflag &= !libc::OPOST;
                libc::tcsetattr(slave, libc::TCSANOW, &t);
                (
                    std::fs::File::from_raw_fd(master),
                    OwnedFd::from_raw_fd(slave),
                )
            }
        };
        let mut command = self.command(args);
        command
            .stdin(slave.try_clone().expect("dup"))
            .stdout(slave.try_clone().expect("dup"))
            .stderr(slave);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PIPE}: {e}"));
        // The parent's copies of the terminal's end go, so that reading
        // ends when pipe exits.
        drop(command);
        master.write_all(input.as_bytes()).expect("type the input");
        let mut reader = master.try_clone().expect("dup");
        let shown = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            // Ends with EIO once no process has the terminal open.
            let _ = reader.read_to_end(&mut bytes);
            bytes
        });
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("`pipe {}` on a terminal did not finish", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            args: args.join(" "),
            stdout: String::from_utf8_lossy(&shown.join().expect("terminal reader")).into_owned(),
            stderr: String::new(),
            code: status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            elapsed: started.elapsed(),
        }
    }

    /// Starts `pipe ARGS…` without waiting; the process is killed if the
    /// test ends first.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let child = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PIPE}: {e}"));
        Running {
            args: args.join(" "),
            child: Some(child),
        }
    }

    /// Like [`TestEnv::spawn`], in a new session, as `setsid pipe ARGS…`
    /// does: pipe leads a process group of its own, whose id is its pid.
    pub fn spawn_in_session(&self, args: &[&str]) -> Running {
        use std::os::unix::process::CommandExt;
        let mut command = self.command(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PIPE}: {e}"));
        Running {
            args: args.join(" "),
            child: Some(child),
        }
    }

    /// Runs the real `git` in the project root (as a user's git, with a
    /// fixed identity and no user or system config) and returns its stdout;
    /// panics if it fails.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(&self.root)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .output()
            .unwrap_or_else(|e| panic!("cannot run git: {e}"));
        assert!(
            out.status.success(),
            "git {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `git init` with branch `main`, then one commit of everything.
    pub fn git_init(self) -> TestEnv {
        self.git(&["init", "-q", "-b", "main"]);
        self.commit("baseline");
        self
    }

    /// `git add -A && git commit -m MESSAGE`; returns the commit's short hash.
    #[track_caller]
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
        self.git(&["rev-parse", "--short=7", "HEAD"])
            .trim()
            .to_string()
    }

    /// `pipeline.lock`, parsed (panics if it is not valid YAML).
    pub fn lock(&self) -> yaml_serde::Value {
        let text = self.read("pipeline.lock");
        yaml_serde::from_str(&text)
            .unwrap_or_else(|e| panic!("pipeline.lock is not valid YAML: {e}\n{text}"))
    }

    /// The names of the stages recorded in `pipeline.lock` (none if absent).
    pub fn locked_stages(&self) -> Vec<String> {
        if !self.exists("pipeline.lock") {
            return Vec::new();
        }
        match self.lock().get("stages") {
            Some(yaml_serde::Value::Mapping(m)) => m
                .keys()
                .map(|k| k.as_str().expect("stage names are strings").to_string())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The `blake3` recorded in `pipeline.lock` for an output of a stage.
    pub fn locked_out_hash(&self, stage: &str, path: &str) -> String {
        self.locked_hash(stage, "outs", path)
    }

    /// The `blake3` recorded in `pipeline.lock` for a dep of a stage.
    pub fn locked_dep_hash(&self, stage: &str, path: &str) -> String {
        self.locked_hash(stage, "deps", path)
    }

    fn locked_hash(&self, stage: &str, field: &str, path: &str) -> String {
        let lock = self.lock();
        let records = lock["stages"][stage][field]
            .as_sequence()
            .unwrap_or_else(|| panic!("no {field} for stage {stage} in pipeline.lock"));
        let record = records
            .iter()
            .find(|r| r["path"].as_str() == Some(path))
            .unwrap_or_else(|| panic!("no {field} entry `{path}` for stage {stage}"));
        record["blake3"]
            .as_str()
            .expect("blake3 is a string")
            .to_string()
    }

    /// Lines of `runs.log`, the side effect the test pipelines leave outside
    /// their outputs to show which commands really ran.
    pub fn runs(&self) -> Vec<String> {
        if !self.exists("runs.log") {
            return Vec::new();
        }
        self.read("runs.log").lines().map(str::to_string).collect()
    }

    /// The cache object file for a hash: `.pipeline-cache/v1/objects/ab/cdef…`.
    pub fn object(&self, hash: &str) -> PathBuf {
        self.path(&format!(
            ".pipeline-cache/v1/objects/{}/{}",
            &hash[..2],
            &hash[2..]
        ))
    }

    /// Every path under the root (or under `sub`), with what is there: the
    /// BLAKE3 of a file, `dir`, or a symlink's target. Comparing two of these
    /// shows whether a command wrote anything.
    pub fn tree(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(&self.root, &self.root, &mut out);
        out
    }

    /// insta settings with this project's filters.
    pub fn settings(&self) -> insta::Settings {
        let mut s = insta::Settings::clone_current();
        s.set_prepend_module_to_snapshot(true);
        s.add_filter(&regex_escape(&self.root.display().to_string()), "[ROOT]");
        s.add_filter(r"\b[0-9a-f]{64}\b", "[HASH]");
        s.add_filter(r"\b\d+\.\d+s\b", "[ELAPSED]");
        s.add_filter(r"\bpid \d+", "pid [PID]");
        s
    }
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .expect("below the root")
            .display()
            .to_string();
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path).expect("readlink");
            out.insert(rel, format!("-> {}", target.display()));
        } else if meta.is_dir() {
            out.insert(rel, "dir".into());
            walk(root, &path, out);
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            out.insert(rel, blake3::hash(&bytes).to_hex().to_string());
        }
    }
}

/// What a finished `pipe` printed and how it exited.
#[derive(Debug)]
pub struct Output {
    pub args: String,
    pub stdout: String,
    pub stderr: String,
    /// `None` if it was killed by a signal.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub elapsed: Duration,
}

impl Output {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        self.code(0)
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn code(self, expected: i32) -> Output {
        assert_eq!(
            self.code,
            Some(expected),
            "`pipe {}` exited with {:?}, expected {expected}\n--- stdout\n{}--- stderr\n{}",
            self.args,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The last line of stderr: the summary of `pipe repro`.
    pub fn summary(&self) -> &str {
        self.stderr.lines().last().unwrap_or_default()
    }

    /// The summary without its duration: `1 ran, 0 restored, 2 up to date, 0 failed`.
    pub fn counts(&self) -> &str {
        let summary = self.summary();
        summary
            .rsplit_once(" in ")
            .map_or(summary, |(counts, _)| counts)
    }
}

/// A `pipe` started with [`TestEnv::spawn`]; killed on drop if still running.
pub struct Running {
    args: String,
    child: Option<Child>,
}

impl Running {
    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        let child = self.child.as_mut().expect("running");
        matches!(child.try_wait(), Ok(None))
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// SIGKILL, as `kill -9` does.
    pub fn kill(&mut self) {
        let child = self.child.as_mut().expect("running");
        child.kill().expect("kill");
    }

    /// Waits for the process (at most `timeout`) and returns its output.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        // Read the pipes on threads so that a chatty child cannot block.
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let out_thread = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stdout.read_to_end(&mut s);
            s
        });
        let err_thread = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = stderr.read_to_end(&mut s);
            s
        });
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > timeout {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`pipe {}` did not finish within {timeout:?}", self.args);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            args: self.args.clone(),
            stdout: String::from_utf8_lossy(&out_thread.join().expect("stdout reader"))
                .into_owned(),
            stderr: String::from_utf8_lossy(&err_thread.join().expect("stderr reader"))
                .into_owned(),
            code: status.code(),
            signal: std::os::unix::process::ExitStatusExt::signal(&status),
            elapsed: started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if started.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Removes a leading newline and the indentation common to all non-blank
/// lines, so that YAML can be written indented inside a test.
pub fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line.get(indent..).unwrap_or("").trim_end());
        out.push('\n');
    }
    out
}

/// The BLAKE3 hex of some bytes, as pipe records it.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
