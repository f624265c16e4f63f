//! What to draw: the pipeline's plot definitions made into [`Request`]s.
//!
//! Three sources, in this order on the page:
//!
//! - each stage's `plots:` outputs, with their options (`x`, `y`,
//!   `template`, `title`, `x_label`, `y_label`, `header`), as DVC reads
//!   them: without `y`, the last column; without `x`, the row number
//!   (`step`). The built-in `score` stage's plot file is known: it gets a
//!   ROC curve (its AUC in the legend) and a confusion matrix;
//! - the top-level `plots:` section: a file with its columns, or a named
//!   plot whose `y` maps several files to columns (DVC's
//!   `example-get-started`: one ROC curve per file);
//! - an image file (`.png`, `.jpg`, `.jpeg`, `.gif`, `.svg`) in either
//!   place is shown as it is.

use serde::Serialize;

use crate::paths::RelPath;
use crate::spec::plots::{Axis, PlotDef};
use crate::spec::{Action, OutKind, Pipeline};

/// DVC's plot templates (its names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// Lines through points.
    Linear,
    /// Lines only.
    Simple,
    /// Points only.
    Scatter,
    /// The points faint, a smoothed line through them.
    Smooth,
    /// Counts of (actual, predicted) pairs.
    Confusion,
    /// The same, each actual class's row summing to 1.
    ConfusionNormalized,
    /// One bar per `y` category, `x` long.
    BarHorizontal,
    /// The same, longest first.
    BarHorizontalSorted,
}

impl Template {
    pub const ALL: [Template; 8] = [
        Template::Linear,
        Template::Simple,
        Template::Scatter,
        Template::Smooth,
        Template::Confusion,
        Template::ConfusionNormalized,
        Template::BarHorizontal,
        Template::BarHorizontalSorted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Template::Linear => "linear",
            Template::Simple => "simple",
            Template::Scatter => "scatter",
            Template::Smooth => "smooth",
            Template::Confusion => "confusion",
            Template::ConfusionNormalized => "confusion_normalized",
            Template::BarHorizontal => "bar_horizontal",
            Template::BarHorizontalSorted => "bar_horizontal_sorted",
        }
    }

    pub fn parse(name: &str) -> Option<Template> {
        Template::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn is_confusion(self) -> bool {
        matches!(self, Template::Confusion | Template::ConfusionNormalized)
    }

    pub fn is_bar(self) -> bool {
        matches!(
            self,
            Template::BarHorizontal | Template::BarHorizontalSorted
        )
    }
}

/// One plot to draw, before any data is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id as declared (a path, or a name such as `ROC`).
    pub id: String,
    pub title: Option<String>,
    pub x_label: Option<String>,
    pub y_label: Option<String>,
    pub template: Template,
    /// A `template:` that pipe does not know: drawn as `linear`, with a
    /// warning.
    pub unknown_template: Option<String>,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Image(RelPath),
    Data(Vec<Column>),
}

/// One series of a plot: a file and its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub file: RelPath,
    /// The list to read of an object holding several (`roc`).
    pub key: Option<String>,
    /// `None`: the row number (`step`).
    pub x: Option<String>,
    /// `None`: the last column.
    pub y: Option<String>,
    /// A column that weighs each row (the counts of a confusion matrix
    /// written as records).
    pub count: Option<String>,
    /// CSV/TSV with a header line.
    pub header: bool,
    /// Compute the area under the curve for the legend (ROC).
    pub auc: bool,
}

impl Column {
    fn new(file: RelPath, x: Option<String>, y: Option<String>) -> Column {
        Column {
            file,
            key: None,
            x,
            y,
            count: None,
            header: true,
            auc: false,
        }
    }
}

impl Request {
    /// Every file it reads.
    pub fn files(&self) -> Vec<&RelPath> {
        match &self.source {
            Source::Image(file) => vec![file],
            Source::Data(columns) => {
                let mut out: Vec<&RelPath> = Vec::new();
                for c in columns {
                    if !out.contains(&&c.file) {
                        out.push(&c.file);
                    }
                }
                out
            }
        }
    }

    /// Whether `target` (a plot id, a file, or a directory holding files)
    /// names this plot.
    pub fn matches(&self, target: &str) -> bool {
        let target = target.trim_end_matches('/');
        self.id == target
            || self.files().iter().any(|f| {
                f.as_str() == target || RelPath::normalized(target).is_ok_and(|t| f.is_within(&t))
            })
    }
}

/// The image formats shown as they are, by extension.
pub fn image_mime(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

fn template(name: Option<&String>, default: Template) -> (Template, Option<String>) {
    match name {
        None => (default, None),
        Some(n) => match Template::parse(n) {
            Some(t) => (t, None),
            None => (Template::Linear, Some(n.clone())),
        },
    }
}

/// The plots the pipeline declares, in page order (see the module doc).
pub fn requests(pipeline: &Pipeline) -> Vec<Request> {
    let mut out = Vec::new();
    for stage in &pipeline.stages {
        let score = matches!(&stage.action, Action::Builtin { name, .. } if name == "score");
        for output in stage.plot_outputs() {
            debug_assert_eq!(output.kind, OutKind::Plot);
            let options = output.plot.clone().unwrap_or_default();
            let path = output.path.as_str().to_string();
            if image_mime(&path).is_some() {
                out.push(Request {
                    id: path.clone(),
                    title: options.title.clone(),
                    x_label: None,
                    y_label: None,
                    template: Template::Linear,
                    unknown_template: None,
                    source: Source::Image(output.path.clone()),
                });
                continue;
            }
            if score && output.plot.is_none() {
                out.extend(score_requests(&output.path));
                continue;
            }
            let (template, unknown_template) =
                template(options.template.as_ref(), Template::Linear);
            let mut column = Column::new(output.path.clone(), options.x.clone(), options.y.clone());
            column.header = options.header.unwrap_or(true);
            out.push(Request {
                id: path,
                title: options.title,
                x_label: options.x_label,
                y_label: options.y_label,
                template,
                unknown_template,
                source: Source::Data(vec![column]),
            });
        }
    }
    for def in &pipeline.plots {
        out.push(top_level(def));
    }
    out
}

/// The built-in `score` stage's plot file: ROC and confusion matrix.
fn score_requests(path: &RelPath) -> [Request; 2] {
    let column = |key: &str, x: &str, y: &str| Column {
        key: Some(key.into()),
        ..Column::new(path.clone(), Some(x.into()), Some(y.into()))
    };
    [
        Request {
            id: format!("{path}:roc"),
            title: Some("ROC curve".into()),
            x_label: Some("false positive rate".into()),
            y_label: Some("true positive rate".into()),
            template: Template::Simple,
            unknown_template: None,
            source: Source::Data(vec![Column {
                auc: true,
                ..column("roc", "fpr", "tpr")
            }]),
        },
        Request {
            id: format!("{path}:confusion"),
            title: Some("Confusion matrix".into()),
            x_label: Some("predicted".into()),
            y_label: Some("actual".into()),
            template: Template::Confusion,
            unknown_template: None,
            source: Source::Data(vec![Column {
                count: Some("count".into()),
                ..column("confusion", "predicted", "actual")
            }]),
        },
    ]
}

fn top_level(def: &PlotDef) -> Request {
    let (template, unknown_template) = template(def.template.as_ref(), Template::Linear);
    let mut request = Request {
        id: def.id.clone(),
        title: def.title.clone(),
        x_label: def.x_label.clone(),
        y_label: def.y_label.clone(),
        template,
        unknown_template,
        source: Source::Data(Vec::new()),
    };
    let x_of = |file: &RelPath| -> Option<String> {
        match &def.x {
            None => None,
            Some(Axis::Columns(c)) => c.first().cloned(),
            Some(Axis::Files(files)) => files
                .iter()
                .find(|f| &f.file == file)
                .and_then(|f| f.columns.first().cloned()),
        }
    };
    let mut columns = Vec::new();
    match (&def.file, &def.y) {
        (_, Some(Axis::Files(files))) => {
            for f in files {
                for y in &f.columns {
                    columns.push(Column::new(f.file.clone(), x_of(&f.file), Some(y.clone())));
                }
            }
        }
        (Some(file), y) => {
            if image_mime(file.as_str()).is_some() {
                request.source = Source::Image(file.clone());
                return request;
            }
            let ys: Vec<Option<String>> = match y {
                Some(Axis::Columns(c)) => c.iter().cloned().map(Some).collect(),
                _ => vec![None],
            };
            for y in ys {
                columns.push(Column::new(file.clone(), x_of(file), y));
            }
        }
        (None, _) => {}
    }
    request.source = Source::Data(columns);
    request
}
