//! Plots: definitions → data series → one self-contained page (and
//! Vega-Lite JSON).
//!
//! The flow, module by module:
//!
//! 1. [`request`] turns what the pipeline declares (a stage's `plots:`
//!    outputs with their options, the top-level `plots:` section, and the
//!    built-in `score` stage's plot file, which gets a ROC curve and a
//!    confusion matrix without any definition) into [`Request`]s: what to
//!    draw from which files and columns, with which [`Template`].
//! 2. [`collect`] reads each request's files at every [`Side`] asked for
//!    (the workspace, a commit, an experiment: through
//!    [`crate::compare::Reader`], from git trees and the cache as `pipe
//!    metrics diff` does), parses them ([`data`]) and makes [`Plot`]s: one
//!    series per file, column and side. What cannot be drawn (a missing or
//!    unparseable file, a column that is not there, text among numbers, a
//!    series too long to draw) becomes a warning on that plot; the other
//!    plots are not affected.
//! 3. [`svg`] draws a plot as SVG, by pipe itself: axes, ticks, legend,
//!    title and a `<title>` tooltip on points, nothing to load. [`page`]
//!    puts the plots on one HTML page that needs no network and no server;
//!    every text from a data file or definition is escaped there.
//!    [`vega`] writes each plot as a Vega-Lite spec for other tools.
//!
//! Series longer than [`MAX_POINTS`] are down-sampled (per bucket the
//! first, lowest and highest point, so spikes stay visible), and the plot
//! says so: a page stays small however large the data.

pub mod collect;
pub mod data;
pub mod experiments;
pub mod page;
pub mod request;
pub mod svg;
pub mod vega;

pub use collect::collect;
pub use request::{requests, Request, Source, Template};

use serde::Serialize;

use crate::paths::RelPath;

pub use crate::compare::Side;

/// At most this many points of one series are drawn or written.
pub const MAX_POINTS: usize = 2_000;

/// A value on an axis.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Num(f64),
    Text(String),
}

impl Value {
    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Text(_) => None,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Value::Num(n) => data::format_number(*n),
            Value::Text(t) => t.clone(),
        }
    }
}

/// One point of a series; `count` weighs a cell of a confusion matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub x: Value,
    pub y: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<f64>,
    /// What the point is (an experiment's name): in its tooltip, and
    /// written beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The data of one line, set of points, bars or matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The legend's text: the side, the file and column as needed.
    pub name: String,
    /// The side it was read at (`workspace`, `HEAD`, an experiment).
    pub rev: String,
    pub file: RelPath,
    /// The columns drawn (`x` is `step`, the row number, when none is named).
    pub x: String,
    pub y: String,
    /// Shown after the name in the legend (`AUC 0.974`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Points in the file (before down-sampling).
    pub total: usize,
    pub points: Vec<Point>,
}

/// An image file at one side, shown as it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Image {
    pub rev: String,
    pub file: RelPath,
    pub mime: &'static str,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Content {
    Chart { series: Vec<Series> },
    Images { images: Vec<Image> },
}

/// A plot ready to draw.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plot {
    pub id: String,
    pub title: String,
    pub template: Template,
    pub x_label: String,
    pub y_label: String,
    #[serde(flatten)]
    pub content: Content,
    /// What could not be drawn, and why (also on stderr).
    pub warnings: Vec<String>,
}

impl Plot {
    pub fn series(&self) -> &[Series] {
        match &self.content {
            Content::Chart { series } => series,
            Content::Images { .. } => &[],
        }
    }
}
