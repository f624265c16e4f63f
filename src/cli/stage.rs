//! `pipe stage add`, `pipe stage list`, `pipe remove`, `pipe freeze` and
//! `pipe unfreeze`: the commands that change the pipeline file, as DVC's
//! of the same names do.
//!
//! Each one edits the text ([`pipe::spec::edit`], which keeps comments and
//! layout), loads the pipeline as it would be, and writes the file only if
//! that load succeeds: a command never leaves a pipeline pipe cannot read.
//! The edited file is the one the stage is written in (`pipeline.yaml`, or
//! a `dvc.yaml` of a DVC project); a new stage goes to `pipeline.yaml`, or
//! to the root `dvc.yaml` of a project that has no `pipeline.yaml`.

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use pipe::graph::Dag;
use pipe::lock::{LockFile, PathRecord};
use pipe::paths::RelPath;
use pipe::project::Project;
use pipe::spec::edit::{self, EditError, NewStage};
use pipe::spec::{self, Format};
use pipe::workspace::Workspace;

use super::{load_project, lock_project, print, CliError};

/// Add a stage to pipeline.yaml, or list the stages, as `dvc stage` does.
#[derive(Debug, Args)]
pub struct StageArgs {
    #[command(subcommand)]
    pub command: StageCommand,
}

#[derive(Debug, Subcommand)]
pub enum StageCommand {
    /// Add a stage at the end of the pipeline file (comments and layout of
    /// the rest stay as they are). The command is everything after the
    /// options: `pipe stage add -n train -d data.csv -o model.pkl python
    /// train.py`.
    Add(Box<AddArgs>),
    /// List the stages: name, file and description.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The stage's name.
    #[arg(short, long)]
    pub name: String,
    /// A file or directory the stage reads.
    #[arg(short, long = "deps", value_name = "PATH")]
    pub deps: Vec<String>,
    /// Params it reads: `KEY`, `KEY1,KEY2` or `FILE:KEY` (params.yaml by
    /// default).
    #[arg(short, long = "params", value_name = "KEY")]
    pub params: Vec<String>,
    /// An output, kept in the cache.
    #[arg(short, long = "outs", value_name = "PATH")]
    pub outs: Vec<String>,
    /// An output not kept in the cache (`cache: false`).
    #[arg(short = 'O', long = "outs-no-cache", value_name = "PATH")]
    pub outs_no_cache: Vec<String>,
    /// An output kept between runs (`persist: true`: not deleted before
    /// the command runs).
    #[arg(long = "outs-persist", value_name = "PATH")]
    pub outs_persist: Vec<String>,
    /// A metrics file it writes, kept in the cache.
    #[arg(short, long = "metrics", value_name = "PATH")]
    pub metrics: Vec<String>,
    /// A metrics file not kept in the cache (to commit to git).
    #[arg(short = 'M', long = "metrics-no-cache", value_name = "PATH")]
    pub metrics_no_cache: Vec<String>,
    /// A plots file it writes, kept in the cache.
    #[arg(long = "plots", value_name = "PATH")]
    pub plots: Vec<String>,
    /// A plots file not kept in the cache.
    #[arg(long = "plots-no-cache", value_name = "PATH")]
    pub plots_no_cache: Vec<String>,
    /// The directory the command runs in, relative to the project root.
    #[arg(short, long, value_name = "DIR")]
    pub wdir: Option<String>,
    /// What the stage is for (shown by `pipe dag` and `pipe stage list`).
    #[arg(long)]
    pub desc: Option<String>,
    /// Run the stage every time (`always_changed: true`).
    #[arg(long)]
    pub always_changed: bool,
    /// Replace a stage of the same name.
    #[arg(short, long)]
    pub force: bool,
    /// The command, with its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Names only, one a line.
    #[arg(long)]
    pub name_only: bool,
}

/// Remove stages from the pipeline file and their entries from
/// pipeline.lock, as `dvc remove` does. Their outputs stay in the
/// workspace and the cache unless --outs.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[arg(required = true, value_name = "STAGE")]
    pub stages: Vec<String>,
    /// Also delete the stages' outputs from the workspace (the cache keeps
    /// the recorded versions until `pipe gc`).
    #[arg(long)]
    pub outs: bool,
}

/// The stages to freeze or unfreeze.
#[derive(Debug, Args)]
pub struct FreezeArgs {
    #[arg(required = true, value_name = "STAGE")]
    pub stages: Vec<String>,
}

/// One edit of one file, checked and written.
fn write_checked(root: &Path, file: &RelPath, new_text: &str) -> Result<(), CliError> {
    let not_changed = |e: pipe::Error| {
        let mut err = CliError::from(e);
        err.message = format!("{file} was not changed: with the change, {}", err.message);
        err.code = 2;
        err
    };
    let pipeline = spec::load_with(root, Some((file, new_text)))
        .map_err(|e| not_changed(pipe::Error::from(e)))?;
    Dag::build(&pipeline).map_err(|e| not_changed(pipe::Error::from(e)))?;
    let workspace = Workspace::open(root).map_err(|e| CliError {
        message: format!("cannot open the project directory {}: {e}", root.display()),
        hints: vec![],
        code: 1,
    })?;
    workspace
        .write(file, new_text.as_bytes(), false)
        .map_err(|e| CliError::from(pipe::Error::from(e)))
}

fn edit_failed(file: &RelPath, e: EditError) -> CliError {
    let hint = match &e {
        EditError::Exists(_) => "use -f to replace it, or choose another name (-n)".to_string(),
        EditError::NoStage(_) => "`pipe stage list` names the stages".to_string(),
        EditError::Unusual { .. } => format!("edit {file} by hand"),
    };
    CliError {
        message: format!("{file}: {e}"),
        hints: vec![hint],
        code: 2,
    }
}

fn read(root: &Path, file: &RelPath) -> Result<String, CliError> {
    match std::fs::read_to_string(file.to_path(root)) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(CliError {
            message: format!("cannot read {}: {e}", file.to_path(root).display()),
            hints: vec![],
            code: 1,
        }),
    }
}

pub fn run_stage(cwd: &Path, args: StageArgs) -> Result<ExitCode, CliError> {
    match args.command {
        StageCommand::Add(add) => run_add(cwd, *add),
        StageCommand::List(list) => run_list(cwd, list),
    }
}

fn run_add(cwd: &Path, args: AddArgs) -> Result<ExitCode, CliError> {
    let root = Project::find_root(cwd).unwrap_or_else(|| cwd.to_path_buf());
    let file = if root.join(spec::PIPELINE_FILE).is_file() || !root.join(spec::DVC_FILE).is_file() {
        RelPath::from_normalized(spec::PIPELINE_FILE)
    } else {
        RelPath::from_normalized(spec::DVC_FILE)
    };
    let mut outs: Vec<(String, bool, bool)> = Vec::new();
    outs.extend(args.outs.into_iter().map(|p| (p, true, false)));
    outs.extend(args.outs_no_cache.into_iter().map(|p| (p, false, false)));
    outs.extend(args.outs_persist.into_iter().map(|p| (p, true, true)));
    let cached = |v: Vec<String>, c: bool| v.into_iter().map(move |p| (p, c));
    let stage = NewStage {
        name: args.name.clone(),
        cmd: args.command.join(" "),
        desc: args.desc,
        wdir: args.wdir,
        deps: args.deps,
        params: args.params,
        outs,
        metrics: cached(args.metrics, true)
            .chain(cached(args.metrics_no_cache, false))
            .collect(),
        plots: cached(args.plots, true)
            .chain(cached(args.plots_no_cache, false))
            .collect(),
        always_changed: args.always_changed,
    };
    let text = read(&root, &file)?;
    let existed = matches!(
        edit::add_stage(&text, &stage, false),
        Err(EditError::Exists(_))
    );
    let new_text = edit::add_stage(&text, &stage, args.force).map_err(|e| edit_failed(&file, e))?;
    write_checked(&root, &file, &new_text)?;
    let verb = if existed { "Replaced" } else { "Added" };
    print(&format!(
        "{verb} stage {} in {file}; `pipe repro {}` runs it.\n",
        args.name, args.name
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn run_list(cwd: &Path, args: ListArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let stages = &project.pipeline.stages;
    let mut out = String::new();
    let width = stages
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    for s in stages {
        if args.name_only {
            out.push_str(&format!("{}\n", s.name));
            continue;
        }
        let mut line = format!("{:width$}", s.name);
        if project.pipeline.files.len() > 1 || project.pipeline.format == Format::Dvc {
            line.push_str(&format!("  {}", project.pipeline.files[s.file].path));
        }
        if let Some(desc) = &s.desc {
            line.push_str(&format!("  {}", desc.lines().next().unwrap_or("")));
        }
        if s.frozen {
            line.push_str("  (frozen)");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The file stage `name` is written in, and its name there (without the
/// `sub/dvc.yaml:` prefix).
fn locate(project: &Project, name: &str) -> Result<(RelPath, String), CliError> {
    let Some(stage) = project.pipeline.stage(name) else {
        let generated: Vec<&pipe::spec::Stage> = project
            .pipeline
            .stages
            .iter()
            .filter(|s| s.name.starts_with(&format!("{name}@")))
            .collect();
        if let Some(first) = generated.first() {
            let names: Vec<&str> = generated.iter().map(|s| s.name.as_str()).collect();
            return Err(CliError {
                message: format!(
                    "stage `{name}` is a `foreach`/`matrix` stage (it generates {})",
                    names.join(", ")
                ),
                hints: vec![format!(
                    "edit it in {} by hand",
                    project.pipeline.files[first.file].path
                )],
                code: 2,
            });
        }
        let hint = match pipe::spec::diagnostic::did_you_mean(
            name,
            project.pipeline.stages.iter().map(|s| s.name.as_str()),
        ) {
            Some(near) => format!("did you mean `{near}`?"),
            None => "`pipe stage list` names the stages".into(),
        };
        return Err(CliError {
            message: format!("no stage named `{name}` in the pipeline"),
            hints: vec![hint],
            code: 2,
        });
    };
    let file = &project.pipeline.files[stage.file];
    let local = name.strip_prefix(&file.prefix).unwrap_or(name);
    if local.contains('@') {
        return Err(CliError {
            message: format!("stage `{name}` is generated by `foreach` or `matrix`"),
            hints: vec![format!(
                "change the stage `{}` it comes from in {} by hand",
                local.split('@').next().unwrap_or(local),
                file.path
            )],
            code: 2,
        });
    }
    Ok((file.path.clone(), local.to_string()))
}

pub fn run_freeze(cwd: &Path, args: FreezeArgs, frozen: bool) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let _guard = lock_project(&project)?;
    let mut said = String::new();
    for name in &args.stages {
        let (file, local) = locate(&project, name)?;
        let text = read(&project.root, &file)?;
        let new_text =
            edit::set_frozen(&text, &local, frozen).map_err(|e| edit_failed(&file, e))?;
        let state = if frozen { "frozen" } else { "not frozen" };
        if new_text == text {
            said.push_str(&format!("Stage {name} is {state} already.\n"));
            continue;
        }
        write_checked(&project.root, &file, &new_text)?;
        said.push_str(&match frozen {
            true => {
                format!("Froze stage {name} ({file}): `pipe repro` uses its outputs as they are.\n")
            }
            false => format!("Unfroze stage {name} ({file}).\n"),
        });
    }
    print(&said)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_remove(cwd: &Path, args: RemoveArgs) -> Result<ExitCode, CliError> {
    let project = load_project(cwd)?;
    let _guard = lock_project(&project)?;
    // Everything is checked before anything changes.
    let mut plan = Vec::new();
    for name in &args.stages {
        let (file, local) = locate(&project, name)?;
        let stage = project.pipeline.stage(name).expect("located");
        let outs: Vec<RelPath> = stage.outs.iter().map(|o| o.path.clone()).collect();
        plan.push((name.clone(), file, local, outs));
    }
    if plan.len() == project.pipeline.stages.len() {
        return Err(CliError {
            message: "these are all the stages of the pipeline, and a pipeline has at least one"
                .into(),
            hints: vec![format!(
                "to remove the pipeline itself, delete {} and pipeline.lock",
                project
                    .pipeline
                    .files
                    .iter()
                    .map(|f| f.path.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            code: 2,
        });
    }
    let mut said = String::new();
    let mut lock = LockFile::read(&project.root).map_err(pipe::Error::from)?;
    for (name, file, local, outs) in &plan {
        let text = read(&project.root, file)?;
        let new_text = edit::remove_stage(&text, local).map_err(|e| edit_failed(file, e))?;
        write_checked(&project.root, file, &new_text)?;
        let recorded = lock.stages.remove(name.as_str()).is_some();
        lock.write(&project.root).map_err(pipe::Error::from)?;
        said.push_str(&format!(
            "Removed stage {name} from {file}{}.\n",
            if recorded { " and pipeline.lock" } else { "" }
        ));
        let shown: Vec<String> = outs.iter().map(|o| o.to_string()).collect();
        if outs.is_empty() {
            continue;
        }
        if args.outs {
            // Only what the cache can give back is deleted: an output edited
            // by hand, or one not cached, is the user's and stays.
            let hasher = project.hasher();
            let (mut deleted, mut kept) = (Vec::new(), Vec::new());
            for out in outs {
                let now = hasher.hash_output(out).map_err(pipe::Error::from)?;
                match now {
                    None => {}
                    Some(h) if project.cache.holds(&PathRecord::new(out.clone(), &h)) => {
                        project
                            .workspace
                            .remove(out)
                            .map_err(|e| CliError::from(pipe::Error::from(e)))?;
                        deleted.push(out.to_string());
                    }
                    Some(_) => kept.push(out.to_string()),
                }
            }
            if !deleted.is_empty() {
                said.push_str(&format!(
                    "Deleted its outputs: {} (the cache keeps the recorded versions until `pipe gc`).\n",
                    deleted.join(", ")
                ));
            }
            if !kept.is_empty() {
                said.push_str(&format!(
                    "Kept {}: the cache does not hold this content (edited by hand, or not cached); delete it yourself if it is not needed.\n",
                    kept.join(", ")
                ));
            }
        } else {
            said.push_str(&format!(
                "Its outputs stay: {} (--outs deletes them).\n",
                shown.join(", ")
            ));
        }
    }
    print(&said)?;
    Ok(ExitCode::SUCCESS)
}
