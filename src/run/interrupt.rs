//! Stopping a `pipe repro` on request (Ctrl-C, SIGTERM) without losing
//! anything.
//!
//! The caller owns the signal handling (the library installs none) and
//! calls [`Interrupt::request`] with the signal it got. From then on:
//!
//! * no stage starts, and no further command of a running `cmd` stage;
//! * each running command gets the same signal: its supervisor (see
//!   [`super::supervisor`]) passes it on to the stage's process group and
//!   kills what is still there after the grace period; so a script sees a
//!   Ctrl-C as Ctrl-C (Python's `KeyboardInterrupt`);
//! * a built-in stage runs in-process and cannot be stopped halfway: it
//!   finishes, and is recorded like any stage that finished;
//! * a stage whose command was stopped fails as *interrupted*: nothing of
//!   it is recorded, and what it left half-written is remembered as not the
//!   user's (see [`super::kept`]).
//!
//! `pipeline.lock` keeps the stages that finished, so the next `pipe repro`
//! resumes where this one stopped.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

/// A request to stop, shared by the caller and the running stages.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The signal that asked to stop; 0 until then.
    signal: AtomicI32,
    /// The processes running stage commands now.
    children: Mutex<BTreeSet<u32>>,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Asks the run to stop, passing `signal` on to every running command.
    pub fn request(&self, signal: i32) {
        let children = self.inner.children.lock().expect("interrupt lock");
        // Set while the set is locked: a command tracked after this sees it.
        self.inner.signal.store(signal, Ordering::SeqCst);
        for &pid in children.iter() {
            send(pid, signal);
        }
    }

    /// The signal that asked to stop, if one did.
    pub fn requested(&self) -> Option<i32> {
        match self.inner.signal.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig),
        }
    }

    /// Registers a running command process until the guard is dropped; if
    /// a stop was requested already, the process gets the signal now.
    pub fn track(&self, pid: u32) -> Tracked<'_> {
        let mut children = self.inner.children.lock().expect("interrupt lock");
        children.insert(pid);
        if let Some(sig) = self.requested() {
            send(pid, sig);
        }
        Tracked {
            interrupt: self,
            pid,
        }
    }
}

/// A command process registered with [`Interrupt::track`].
pub struct Tracked<'a> {
    interrupt: &'a Interrupt,
    pid: u32,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.interrupt
            .inner
            .children
            .lock()
            .expect("interrupt lock")
            .remove(&self.pid);
    }
}

fn send(pid: u32, signal: i32) {
    // SAFETY: kill(2) of a child this process started and has not reaped
    // yet (it is unregistered before it is waited for), so the pid is
    // still that child's.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}
