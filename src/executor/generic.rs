//! The generic executor, for every scheduler without one of its own (PBS/
//! Torque, LSF, HTCondor, SGE, a site's wrapper scripts): three command
//! templates in `[executor.generic]` of `pipe.toml`, as Snakemake's
//! cluster-generic executor has them.
//!
//! ```toml
//! [executor]
//! kind = "generic"
//! [executor.generic]
//! submit = "qsub -N {name} -l nodes=1:ppn={cpus} {script}"  # prints the job id
//! status = "my-status {jobid}"   # prints running, success or failed
//! cancel = "qdel {jobid}"
//! ```
//!
//! Each template runs with `sh -c` in the project root after its
//! placeholders are replaced, each value quoted for the shell: `{script}`
//! (the job script to submit), `{name}` (the job name), `{stage}`,
//! `{stdout}` and `{stderr}` (where the job's output goes; the script
//! writes them itself, so the scheduler's own output files do not matter),
//! `{cpus}`, `{mem}`, `{time}`, `{gpus}`, `{partition}` (empty when the
//! stage does not set them), `{extra_args}` and `{jobid}`.
//!
//! `submit` prints the job id on its last line of output. `status` prints
//! one word on its last line: `running` (or `queued`/`pending`), `success`
//! or `failed`; how a failed job ended (which command, what exit code)
//! comes from the job's exit file.

use serde::Deserialize;

use super::{ExecutorError, Job, JobState, Kind, Scheduler};

/// `[executor.generic]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    pub submit: Option<String>,
    pub status: Option<String>,
    pub cancel: Option<String>,
}

impl Templates {
    /// All three are needed.
    pub fn check(&self) -> Result<(), ExecutorError> {
        for (field, value) in [
            ("submit", &self.submit),
            ("status", &self.status),
            ("cancel", &self.cancel),
        ] {
            if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                return Err(ExecutorError::NotConfigured { field });
            }
        }
        Ok(())
    }
}

pub struct Generic {
    pub templates: Templates,
    /// Where the templates run: the project root.
    pub root: std::path::PathBuf,
}

/// `template` with `{name}` placeholders replaced by the quoted values.
pub fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let replaced = after.find('}').and_then(|close| {
            let key = &after[..close];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (close, v))
        });
        match replaced {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn quote(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    shlex::try_quote(text)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| text.replace('\0', ""))
}

fn run_template(
    template: &str,
    cwd: &std::path::Path,
    env: &[(String, String)],
) -> Result<String, ExecutorError> {
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(template)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null());
    command.current_dir(cwd);
    let out = command.output().map_err(|e| ExecutorError::Spawn {
        program: "sh".into(),
        error: e.to_string(),
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    Err(ExecutorError::Command {
        command: template.to_string(),
        said: super::said(&String::from_utf8_lossy(&out.stderr), &stdout, out.status),
    })
}

fn last_line(out: &str) -> Option<&str> {
    out.lines().map(str::trim).rfind(|l| !l.is_empty())
}

impl Generic {
    fn template(&self, field: &'static str) -> Result<&str, ExecutorError> {
        match field {
            "submit" => self.templates.submit.as_deref(),
            "status" => self.templates.status.as_deref(),
            _ => self.templates.cancel.as_deref(),
        }
        .ok_or(ExecutorError::NotConfigured { field })
    }
}

impl Scheduler for Generic {
    fn title(&self) -> &'static str {
        "the scheduler"
    }

    fn kind(&self) -> Kind {
        Kind::Generic
    }

    fn script_redirects(&self) -> bool {
        true
    }

    fn submit(&self, job: &Job) -> Result<String, ExecutorError> {
        let r = &job.resources;
        let num = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
        let values = [
            ("script", quote(&job.script.display().to_string())),
            ("name", quote(&job.name)),
            ("stage", quote(&job.stage)),
            ("stdout", quote(&job.stdout.display().to_string())),
            ("stderr", quote(&job.stderr.display().to_string())),
            ("cpus", num(r.cpus)),
            ("mem", quote(r.mem.as_deref().unwrap_or_default())),
            ("time", quote(r.time.as_deref().unwrap_or_default())),
            ("gpus", num(r.gpus)),
            (
                "partition",
                quote(r.partition.as_deref().unwrap_or_default()),
            ),
            (
                "extra_args",
                r.extra_args
                    .iter()
                    .map(|a| quote(a))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        ];
        let command = render(self.template("submit")?, &values);
        let out = run_template(&command, &self.root, &job.env)?;
        match last_line(&out) {
            Some(id) if !id.contains(char::is_whitespace) => Ok(id.to_string()),
            _ => Err(ExecutorError::NoJobId {
                command,
                said: out.trim().to_string(),
            }),
        }
    }

    fn state(&self, id: &str) -> Result<JobState, ExecutorError> {
        let command = render(self.template("status")?, &[("jobid", quote(id))]);
        let out = run_template(&command, &self.root, &[])?;
        match last_line(&out).map(str::to_ascii_lowercase).as_deref() {
            Some("running") => Ok(JobState::Running),
            Some("queued" | "pending") => Ok(JobState::Queued { reason: None }),
            Some("success") => Ok(JobState::Ended(super::Ending::Completed)),
            Some("failed") => Ok(JobState::Ended(super::Ending::Failed { exit_code: None })),
            _ => Err(ExecutorError::Command {
                command,
                said: format!("printed `{}`, not running, success or failed", out.trim()),
            }),
        }
    }

    fn cancel(&self, id: &str) -> Result<(), ExecutorError> {
        let command = render(self.template("cancel")?, &[("jobid", quote(id))]);
        run_template(&command, &self.root, &[]).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders_quoted_and_leaves_other_braces() {
        let values = [
            ("script", quote("/p/a b.sh")),
            ("cpus", String::new()),
            ("jobid", quote("12")),
        ];
        assert_eq!(
            render("qsub {script} -c {cpus} {jobid} ${HOME} {other}", &values),
            "qsub '/p/a b.sh' -c  12 ${HOME} {other}"
        );
    }

    #[test]
    fn needs_all_three_templates() {
        let t = Templates {
            submit: Some("qsub {script}".into()),
            status: None,
            cancel: Some("qdel {jobid}".into()),
        };
        assert_eq!(
            t.check(),
            Err(ExecutorError::NotConfigured { field: "status" })
        );
    }
}
