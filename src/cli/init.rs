//! `pipe init`.

use std::path::Path;
use std::process::ExitCode;

use clap::Args;

use pipe::cache::{ensure_root, CACHE_DIR};
use pipe::paths::RelPath;
use pipe::spec::PIPELINE_FILE;
use pipe::workspace::Workspace;

use super::{print, CliError};

/// Make the current directory (or -C DIR) a pipe project, as `dvc init`
/// does for DVC: a pipeline.yaml template to declare stages in, and the
/// cache directory .pipeline-cache/, which keeps itself out of git.
/// Nothing that exists is overwritten.
#[derive(Debug, Args)]
pub struct InitArgs {}

/// What `pipe init` writes into a new pipeline.yaml.
const TEMPLATE: &str = "\
# The pipeline: its stages, what each one reads and writes. The field
# names are those of dvc.yaml. `pipe repro` runs what is stale, `pipe
# status` says why, `pipe dag` draws the graph. Declare the stages under
# `stages:`; to start from this example, remove the `# ` before its lines:
stages:
  # prepare:
  #   cmd: python prepare.py
  #   deps: [prepare.py, data/raw.csv]
  #   params: [prepare.seed]        # keys of params.yaml
  #   outs: [data/prepared.csv]
  # train:
  #   cmd: python train.py
  #   deps: [train.py, data/prepared.csv]
  #   outs: [model.pkl]
  #   metrics: [metrics.json]
";

pub fn run(cwd: &Path, _args: InitArgs) -> Result<ExitCode, CliError> {
    let io = |what: &str, e: std::io::Error| CliError {
        message: format!("cannot {what} in {}: {e}", cwd.display()),
        hints: vec![],
        code: 1,
    };
    let ws = Workspace::open(cwd).map_err(|e| io("open the directory", e))?;
    let cache = cwd.join(CACHE_DIR);
    let mut out = String::new();
    let pipeline_existed = cwd.join(PIPELINE_FILE).exists();
    let cache_existed = cache.join(".gitignore").exists();
    if pipeline_existed && cache_existed {
        print(&format!(
            "{} is a pipe project already: nothing was written.\n",
            cwd.display()
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    out.push_str(&format!(
        "Initialized a pipe project in {}:\n",
        cwd.display()
    ));
    // A pipeline.yaml would hide the DVC project's dvc.yaml from pipe.
    let dvc_here = !pipeline_existed && cwd.join(pipe::spec::DVC_FILE).is_file();
    if pipeline_existed {
        out.push_str(&format!("  {PIPELINE_FILE:<17} kept as it was\n"));
    } else if dvc_here {
        out.push_str(&format!(
            "  {PIPELINE_FILE:<17} not written: pipe runs dvc.yaml as it is (`pipe import-dvc` converts it)\n"
        ));
    } else {
        ws.write(
            &RelPath::from_normalized(PIPELINE_FILE),
            TEMPLATE.as_bytes(),
            false,
        )
        .map_err(|e| CliError {
            message: e.to_string(),
            hints: e.hint().into_iter().collect(),
            code: 1,
        })?;
        out.push_str(&format!(
            "  {PIPELINE_FILE:<17} where the stages go (a template with an example)\n"
        ));
    }
    if cache_existed {
        out.push_str(&format!("  {CACHE_DIR}/  kept as it was\n"));
    } else {
        ensure_root(&cache).map_err(|e| io(&format!("create {CACHE_DIR}/"), e))?;
        out.push_str(&format!(
            "  {CACHE_DIR}/  the cache (its own .gitignore keeps it out of git)\n"
        ));
    }
    out.push_str(if pipeline_existed || dvc_here {
        "Next: run `pipe repro`"
    } else {
        "Next: declare a stage in pipeline.yaml, then run `pipe repro`"
    });
    if pipe::git::Repo::discover(cwd, "pipe init").is_ok() {
        out.push_str("; commit pipeline.yaml with git");
    }
    out.push_str(".\n");
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
