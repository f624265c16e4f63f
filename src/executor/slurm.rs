//! The Slurm executor: `sbatch --parsable` to submit, `scontrol show job`
//! to follow, `scancel` to cancel.
//!
//! A stage's [`Resources`] become `sbatch` options (`cpus` →
//! `--cpus-per-task`, `mem` → `--mem`, `time` → `--time`, `gpus` →
//! `--gpus`, `partition` → `--partition`, then `extra_args` as written).
//! The job's stdout and stderr go to the files `pipe` reads (`--output`,
//! `--error`), so that Slurm's own words about the job (`*** JOB 12
//! CANCELLED DUE TO TIME LIMIT ***`) reach the user with the stage's output
//! (a job of `files = "remote"` sends them to `/dev/null` instead, and its
//! result on the remote carries the stage's output, see
//! [`super::staged`]). `--comment=pipe:TOKEN` tells the submission from any
//! other, so that a job whose id a killed `pipe` never recorded is found
//! again.
//! The job keeps the environment of `pipe` (Slurm's default
//! `--export=ALL`), so a conda or venv activated before `pipe repro` is
//! active in the job too.
//!
//! Accounting (`sacct`) is not needed: `scontrol` knows a job until
//! `MinJobAge` after its end (300 s by default), and `pipe` looks at least
//! every [`super::ExecutorConfig::max_poll`]; a job it no longer knows
//! ended, and its exit file (or, for `files = "remote"`, its result) says
//! how.

use super::{
    run_tool, run_tool_env, Ending, ExecutorError, Job, JobState, Kind, Resources, Scheduler,
};

pub struct Slurm;

impl Slurm {
    /// The `sbatch` arguments for a job (without the program name).
    pub fn sbatch_args(job: &Job) -> Vec<String> {
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", job.name),
            format!("--chdir={}", job.cwd.display()),
            format!("--output={}", job.stdout.display()),
            format!("--error={}", job.stderr.display()),
        ];
        args.extend(resource_args(&job.resources));
        // After the user's `extra_args`: a `--comment` of theirs must not
        // hide the token.
        args.push(format!("--comment=pipe:{}", job.token));
        args.push(job.script.display().to_string());
        args
    }
}

/// `sbatch` options for the resources.
pub fn resource_args(r: &Resources) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(n) = r.cpus {
        args.push(format!("--cpus-per-task={n}"));
    }
    if let Some(mem) = &r.mem {
        args.push(format!("--mem={mem}"));
    }
    if let Some(time) = &r.time {
        args.push(format!("--time={time}"));
    }
    if let Some(n) = r.gpus {
        args.push(format!("--gpus={n}"));
    }
    if let Some(p) = &r.partition {
        args.push(format!("--partition={p}"));
    }
    args.extend(r.extra_args.iter().cloned());
    args
}

impl Scheduler for Slurm {
    fn title(&self) -> &'static str {
        "Slurm"
    }

    fn kind(&self) -> Kind {
        Kind::Slurm
    }

    fn script_redirects(&self) -> bool {
        false
    }

    fn submit(&self, job: &Job) -> Result<String, ExecutorError> {
        let args = Slurm::sbatch_args(job);
        let out = run_tool_env("sbatch", &args, &job.env)?;
        // `ID` or `ID;CLUSTER`.
        let id = out
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .and_then(|l| l.split(';').next())
            .filter(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit() || c == '_'));
        match id {
            Some(id) => Ok(id.to_string()),
            None => Err(ExecutorError::NoJobId {
                command: "sbatch --parsable".into(),
                said: out.trim().to_string(),
            }),
        }
    }

    fn state(&self, id: &str) -> Result<JobState, ExecutorError> {
        match run_tool(
            "scontrol",
            &["show".into(), "job".into(), "-o".into(), id.into()],
        ) {
            Ok(out) => Ok(parse_scontrol(&out)),
            Err(ExecutorError::Command { said, .. }) if said.contains("Invalid job id") => {
                Ok(JobState::Unknown)
            }
            Err(e) => Err(e),
        }
    }

    /// `OverMemoryKill` writes `Exceeded job memory limit` and ends the
    /// job as FAILED with signal 9; a cgroup reports an `oom-kill event`.
    fn says_over_memory(&self, line: &str) -> bool {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("slurmstepd")
            && (lower.contains("exceeded job memory limit") || lower.contains("oom-kill event"))
    }

    fn can_find(&self) -> bool {
        true
    }

    fn find(&self, name: &str, token: &str) -> Result<Option<String>, ExecutorError> {
        // Every state: a job that ended already is still listed until
        // Slurm forgets it.
        let out = run_tool(
            "squeue",
            &[
                "-h".into(),
                "-t".into(),
                "all".into(),
                format!("--name={name}"),
                "-o".into(),
                "%i|%k".into(),
            ],
        )?;
        let comment = format!("pipe:{token}");
        Ok(out.lines().find_map(|l| {
            let (id, k) = l.trim().split_once('|')?;
            (k == comment).then(|| id.to_string())
        }))
    }

    fn cancel(&self, id: &str) -> Result<(), ExecutorError> {
        match run_tool("scancel", &[id.to_string()]) {
            Ok(_) => Ok(()),
            // Ended meanwhile: nothing to cancel.
            Err(ExecutorError::Command { said, .. })
                if said.contains("Invalid job id") || said.contains("already completing") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// The state in one line of `scontrol show job -o`.
pub fn parse_scontrol(line: &str) -> JobState {
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    let state = field("JobState").unwrap_or_default();
    let reason = field("Reason").filter(|r| r != "None" && r != "(null)");
    // `CODE:SIGNAL`: a script killed by a signal has code 0.
    let exit = field("ExitCode").unwrap_or_default();
    let mut parts = exit.split(':').map(|p| p.parse::<i32>().ok());
    let (exit_code, signal) = (parts.next().flatten(), parts.next().flatten());
    match (state_of(&state, reason, exit_code), signal) {
        (JobState::Ended(Ending::Failed { .. }), Some(signal)) if signal != 0 => {
            JobState::Ended(Ending::Killed { signal })
        }
        (state, _) => state,
    }
}

/// A Slurm job state (`squeue %T`, `scontrol JobState`) as a [`JobState`].
pub fn state_of(state: &str, reason: Option<String>, exit_code: Option<i32>) -> JobState {
    match state {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD"
        | "CONFIGURING" => JobState::Queued { reason },
        // Still ending (its processes may still write): not ended yet.
        "RUNNING" | "COMPLETING" | "SIGNALING" | "STAGE_OUT" | "RESIZING" | "SUSPENDED"
        | "STOPPED" => JobState::Running,
        "COMPLETED" => JobState::Ended(Ending::Completed),
        "FAILED" => JobState::Ended(Ending::Failed { exit_code }),
        "OUT_OF_MEMORY" => JobState::Ended(Ending::OutOfMemory),
        "TIMEOUT" => JobState::Ended(Ending::TimeLimit),
        "CANCELLED" => JobState::Ended(Ending::Cancelled),
        "NODE_FAIL" => JobState::Ended(Ending::NodeFailure),
        "PREEMPTED" => JobState::Ended(Ending::Preempted),
        "BOOT_FAIL" => JobState::Ended(Ending::Other("its node failed to boot".into())),
        "DEADLINE" => JobState::Ended(Ending::Other("it missed its deadline".into())),
        "" => JobState::Unknown,
        other => JobState::Ended(Ending::Other(format!(
            "Slurm says {}",
            other.to_lowercase().replace('_', " ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_state_reason_and_exit_code_of_scontrol() {
        let line = "JobId=7 JobName=pipe:train JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 RunTime=00:00:01";
        assert_eq!(
            parse_scontrol(line),
            JobState::Ended(Ending::Failed { exit_code: Some(3) })
        );
        assert_eq!(
            parse_scontrol("JobId=8 JobState=PENDING Reason=Resources ExitCode=0:0"),
            JobState::Queued {
                reason: Some("Resources".into())
            }
        );
        assert_eq!(
            parse_scontrol("JobId=9 JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15"),
            JobState::Ended(Ending::TimeLimit)
        );
        assert_eq!(
            parse_scontrol("JobId=9 JobState=COMPLETING Reason=None ExitCode=0:0"),
            JobState::Running
        );
        // Killed over its memory by jobacct_gather's OverMemoryKill.
        assert_eq!(
            parse_scontrol("JobId=1 JobState=FAILED Reason=JobLaunchFailure ExitCode=0:9"),
            JobState::Ended(Ending::Killed { signal: 9 })
        );
    }

    #[test]
    fn maps_resources_to_sbatch_options() {
        let r = Resources {
            cpus: Some(4),
            mem: Some("8G".into()),
            time: Some("01:00:00".into()),
            gpus: Some(1),
            partition: Some("gpu".into()),
            extra_args: vec!["--account=ml".into()],
        };
        assert_eq!(
            resource_args(&r),
            [
                "--cpus-per-task=4",
                "--mem=8G",
                "--time=01:00:00",
                "--gpus=1",
                "--partition=gpu",
                "--account=ml"
            ]
        );
    }
}
