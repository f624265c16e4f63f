//! `pipe import-dvc`: convert a DVC project to pipe for good.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::dvc::adopt::adopt;
use pipe::lock::{LockFile, LOCK_FILE};
use pipe::paths::RelPath;
use pipe::spec::{self, Format, DVC_FILE, DVC_LOCK_FILE, PIPELINE_FILE};

use super::{load_project, lock_project, print, CliError};

/// Convert a DVC project: write pipeline.yaml from dvc.yaml (the same
/// stages, templates and all) and pipeline.lock from dvc.lock (each
/// stage's md5s checked against the files first, so that nothing DVC ran
/// reruns), then say what to commit and remove. dvc.yaml and dvc.lock are
/// left as they are. Without this, pipe reads dvc.yaml and dvc.lock as
/// they are, every time.
#[derive(Debug, Args)]
pub struct ImportDvcArgs {}

pub fn run(cwd: &Path, _args: ImportDvcArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let p = &project.pipeline;
    let usage = |message: String, hint: &str| CliError {
        message,
        hints: vec![hint.to_string()],
        code: 2,
    };
    if p.format != Format::Dvc {
        return Err(usage(
            format!("{} has {PIPELINE_FILE} already: there is nothing to import", project.root.display()),
            "pipe reads pipeline.yaml before dvc.yaml; remove pipeline.yaml first to import dvc.yaml again",
        ));
    }
    if p.files.len() != 1 || p.files[0].path.as_str() != DVC_FILE {
        let names: Vec<String> = p.files.iter().map(|f| f.path.to_string()).collect();
        return Err(usage(
            format!(
                "import-dvc converts a project whose pipeline is one dvc.yaml at its root; this one has {}",
                super::join_and(&names)
            ),
            "pipe runs such a project as it is: keep the dvc.yaml files (stages are named sub/dvc.yaml:stage)",
        ));
    }
    let text = std::fs::read_to_string(project.root.join(DVC_FILE)).map_err(|e| CliError {
        message: format!("cannot read {DVC_FILE}: {e}"),
        hints: vec![],
        code: 1,
    })?;
    let converted = format!(
        "# Converted from dvc.yaml by `pipe import-dvc`: the same stages, in the same format.\n{text}"
    );
    // The new file must mean what dvc.yaml means, stage for stage.
    let parsing = spec::dvc_parsing(&project.root).map_err(pipe::Error::from)?;
    let again = spec::resolve::resolve_files(
        &project.root,
        Format::Pipe,
        &[(RelPath::from_normalized(PIPELINE_FILE), converted.clone())],
        parsing,
    )
    .map_err(pipe::Error::from)?;
    if again.stages != p.stages {
        return Err(CliError {
            message: "pipeline.yaml would not mean what dvc.yaml means; nothing was written".into(),
            hints: vec!["run pipe on dvc.yaml as it is, and report this".into()],
            code: 1,
        });
    }
    let _guard = lock_project(&project)?;
    let mut lock = LockFile::read(&project.root).map_err(pipe::Error::from)?;
    let before = lock.stages.len();
    lock.stages.retain(|n, _| p.stage(n).is_some());
    let kept = lock.stages.len();
    let hasher = project.hasher();
    let adoption = adopt(&project, &mut lock, &hasher, true)?;
    let _ = hasher.save();
    project
        .workspace
        .write(
            &RelPath::from_normalized(PIPELINE_FILE),
            converted.as_bytes(),
            false,
        )
        .map_err(pipe::Error::from)?;
    lock.write(&project.root).map_err(pipe::Error::from)?;

    let mut out = format!(
        "Wrote {PIPELINE_FILE}: the {} stage(s) of {DVC_FILE}, as they are.\n",
        p.stages.len()
    );
    out.push_str(&format!(
        "Wrote {LOCK_FILE}: {} stage(s) taken over from {DVC_LOCK_FILE} (their files have the md5s it records)",
        adoption.adopted.len()
    ));
    if kept > 0 {
        out.push_str(&format!(", {kept} recorded by pipe before"));
    }
    out.push_str(".\n");
    let _ = before;
    for (stage, why) in &adoption.skipped {
        out.push_str(&format!("  not taken over, will run: {stage}: {why}\n"));
    }
    out.push_str(&format!(
        "pipe reads {PIPELINE_FILE} from now on. Next:\n  git add {PIPELINE_FILE} {LOCK_FILE}\n  git rm {DVC_FILE} {DVC_LOCK_FILE}    # unless DVC still runs this project too\n"
    ));
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
