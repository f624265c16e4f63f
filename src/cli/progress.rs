//! Rendering `repro` events for a person.
//!
//! Stage output goes to stdout, each line prefixed with the stage name (so
//! parallel stages stay readable), after the command itself (`> cmd`, as
//! DVC prints it). Status lines go to stderr. On a terminal
//! an indicatif bar shows `done/total` and the stages running now; it is
//! hidden automatically when stderr is not a terminal, and suspended while a
//! line is printed so that lines never tear.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use pipe::run::{Event, JobPhase, Outcome, Reporter, Stream};

pub struct Progress {
    bar: ProgressBar,
    running: Mutex<BTreeSet<String>>,
    width: Mutex<usize>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{pos}/{len}] {wide_msg} {elapsed}")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress {
            bar,
            running: Mutex::new(BTreeSet::new()),
            width: Mutex::new(0),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    pub fn say(&self, line: String) {
        self.bar.suspend(|| {
            let _ = writeln!(std::io::stderr(), "{line}");
        });
    }

    fn update_message(&self) {
        let running = self.running.lock().expect("progress lock");
        let names: Vec<&str> = running.iter().map(String::as_str).collect();
        self.bar.set_message(if names.is_empty() {
            String::new()
        } else {
            format!("running {}", names.join(", "))
        });
    }
}

impl Reporter for Progress {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::WaitingForLock { holder } => self.say(format!(
                "Waiting for another run in this project to finish: {} …",
                holder.unwrap_or_else(|| "pipe repro".into())
            )),
            Event::WaitingForRun { stage } => self.say(format!(
                "Waiting for another pipe process that runs {stage} on the same inputs, to reuse its outputs …"
            )),
            Event::Planned { stages } => {
                *self.width.lock().expect("progress lock") =
                    stages.iter().map(|s| s.len()).max().unwrap_or(0);
                self.bar.set_length(stages.len() as u64);
            }
            Event::Started {
                stage,
                restoring,
                reasons,
            } => {
                let why: Vec<String> = reasons.iter().map(ToString::to_string).collect();
                let verb = if restoring { "Restoring" } else { "Running" };
                self.say(format!("{verb} stage {stage}: {}", why.join("; ")));
                self.running
                    .lock()
                    .expect("progress lock")
                    .insert(stage.to_string());
                self.update_message();
            }
            Event::Command { cmd, .. } => {
                // On stdout, where DVC prints it, with the stage's output;
                // further lines of a multi-line command indented.
                let mut text = String::new();
                for (i, line) in cmd.trim_end().lines().enumerate() {
                    text.push_str(if i == 0 { "> " } else { "  " });
                    text.push_str(line);
                    text.push('\n');
                }
                self.bar.suspend(|| {
                    let _ = std::io::stdout().write_all(text.as_bytes());
                });
            }
            Event::Output {
                stage,
                stream,
                line,
            } => {
                self.bar.suspend(|| match stream {
                    Stream::Stdout => {
                        let _ = writeln!(std::io::stdout(), "[{stage}] {line}");
                    }
                    Stream::Stderr => {
                        let _ = writeln!(std::io::stderr(), "[{stage}] {line}");
                    }
                });
            }
            Event::Pulled { stage, remote } => self.say(format!(
                "Pulled stage {stage} from the run cache of remote {remote}"
            )),
            Event::Warning { stage, message } => {
                self.say(format!("warning: stage {stage}: {message}"))
            }
            Event::Job {
                stage,
                scheduler,
                job,
                phase,
            } => {
                let job = match scheduler {
                    "the scheduler" => format!("job {job}"),
                    name => format!("{name} job {job}"),
                };
                self.say(match phase {
                    JobPhase::Submitted => format!("Stage {stage}: submitted as {job}"),
                    JobPhase::Adopted => format!(
                        "Stage {stage}: following {job}, submitted by an earlier run that was stopped"
                    ),
                    JobPhase::Queued { reason: Some(r) } => {
                        format!("Stage {stage}: {job} is queued ({r})")
                    }
                    JobPhase::Queued { reason: None } => format!("Stage {stage}: {job} is queued"),
                    JobPhase::Running => format!("Stage {stage}: {job} is running"),
                    JobPhase::Cancelling => format!("Stage {stage}: cancelling {job}"),
                })
            }
            Event::Finished {
                stage,
                outcome,
                elapsed,
            } => {
                self.running.lock().expect("progress lock").remove(stage);
                self.update_message();
                self.bar.inc(1);
                let width = *self.width.lock().expect("progress lock");
                match outcome {
                    Outcome::UpToDate | Outcome::Frozen => {
                        self.say(format!("  {stage:width$}  {}", outcome.label()));
                    }
                    Outcome::Ran | Outcome::Restored => {
                        self.say(format!(
                            "✓ {stage:width$}  {}  {}",
                            outcome.label(),
                            secs(elapsed)
                        ));
                    }
                    Outcome::Failed(why) => {
                        // Further lines of a message: hints and details, indented.
                        let mut lines = why.lines();
                        let mut text = format!(
                            "✗ {stage:width$}  failed: {}",
                            lines.next().unwrap_or_default()
                        );
                        for line in lines.filter(|l| !l.trim().is_empty()) {
                            let line = line.trim();
                            match line.strip_prefix("Hint: ") {
                                Some(hint) => text.push_str(&format!("\n    hint: {hint}")),
                                None => text.push_str(&format!("\n    {line}")),
                            }
                        }
                        self.say(text)
                    }
                    Outcome::Interrupted => self.say(format!("✗ {stage:width$}  interrupted")),
                    Outcome::Skipped(why) => self.say(format!("- {stage:width$}  skipped: {why}")),
                }
            }
        }
    }
}

/// For commands without a progress bar: prints warnings, drops the rest.
pub struct Warnings;

impl Reporter for Warnings {
    fn event(&self, event: Event<'_>) {
        if let Event::Warning { stage, message } = event {
            eprintln!("warning: stage {stage}: {message}");
        }
    }
}

pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.2}s")
    } else {
        format!("{s:.1}s")
    }
}
