//! `logistic`: L2-regularised logistic regression equal to scikit-learn's
//! `LogisticRegression(C, max_iter, tol)` with the lbfgs solver, on a
//! sparse matrix.
//!
//! # The problem
//!
//! With `n` rows `xᵢ`, classes sorted as `np.unique` sorts them, and an
//! intercept that is **not** penalised:
//!
//! - **two classes**: one weight vector `w` and intercept `b`; `zᵢ = xᵢ·w + b`
//!   and `yᵢ = 1` for the second (larger) class, `0` for the first;
//!   minimise `C · Σᵢ [ln(1 + e^{zᵢ}) − yᵢ zᵢ] + ½‖w‖²`.
//! - **more classes**: multinomial (softmax), as sklearn ≥ 1.5 does by
//!   default: one `w_k`, `b_k` per class, `zᵢₖ = xᵢ·w_k + b_k`, minimise
//!   `C · Σᵢ [logsumexp(zᵢ) − zᵢ,yᵢ] + ½ Σₖ‖w_k‖²`.
//!
//! # Why the objective is scaled
//!
//! Recent scikit-learn (`_logistic_regression_path` with `LinearModelLoss`)
//! hands L-BFGS the same problem divided by `C·n`:
//! `(1/n) Σᵢ lossᵢ + (1 / (2·C·n)) ‖w‖²`. The minimiser is the same, but the
//! stopping test `max |∂f/∂θⱼ| <= tol` applies to this scaled gradient, so
//! minimising the unscaled form would stop somewhere else (with a large C,
//! much later). This module minimises exactly the scaled form, starting from
//! zero, with [`crate::lbfgs`] (which follows scipy's L-BFGS-B: memory 10,
//! `maxls = 50`, `gtol = tol`, `ftol = 64·ε`, `max_iter`), so it stops where
//! sklearn stops.
//!
//! # Memory
//!
//! `X` is read row by row, once per evaluation of the objective: for each
//! row the product `zᵢ = xᵢ·W + b`, its loss and residual `rᵢ = (pᵢ − yᵢ)/n`,
//! and at once its share `xᵢᵀ rᵢ` of the gradient, while the row is still
//! in cache. (Two separate products `X·W` and `Xᵀ·R` would read `X` twice,
//! and reading `X` is what bounds the fit.) Besides `X`, a fit holds one
//! partial gradient of `d·k + k` values per block of rows (below; `k` = 1
//! for two classes, the number of classes otherwise) and the L-BFGS memory
//! of 2·10 vectors of `d·k + k`.
//!
//! # Row order
//!
//! The loss is a sum over rows, so the order they are visited in is free.
//! [`Objective`] keeps its own copy of `X` with the rows sorted by their
//! number of entries, shortest first (ties in input order). In input order
//! each row's length is a surprise: the loops over its entries end where
//! the CPU did not predict, twice per row per evaluation. Sorted, the trip
//! counts repeat for thousands of rows and the branches are predicted; an
//! evaluation of the 160,000-row benchmark matrix takes about 30 % less
//! time on one core. The copy costs one more `X` in memory while fitting,
//! unless the rows come sorted already: the `fit` stage reads them so
//! ([`crate::features::read_shortest_rows_first`]).
//! Sorted rows also come in runs of one length; with two classes, runs of
//! up to 24 entries per row go through a copy of the loop compiled for
//! that length, unrolled (another 5 to 10 %).
//!
//! # Threads and determinism
//!
//! The rows (in that order) are cut into at most [`GRADIENT_BLOCKS`] blocks, a cut that
//! depends on `n` only. The blocks run on all cores, each summing its rows
//! in order into its own loss and gradient; the block results are then added
//! in block order. No sum depends on how many threads run, so a fit gives
//! the same bits on any machine.
//!
//! Predictions follow sklearn: with two classes the second class is
//! predicted when `z > 0` and its probability is `1 / (1 + e^{−z})`; with
//! more, the class of largest `z` (the first on ties) and softmax
//! probabilities. Bump [`VERSION`] when results would change.

use std::borrow::Cow;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::lbfgs::{self, LbfgsOptions, Stop};
use rayon::prelude::*;

use crate::sparse::Csr;

/// The most blocks the rows are cut into for a parallel evaluation (see
/// the module docs); each holds a partial gradient.
pub const GRADIENT_BLOCKS: usize = 16;

/// The fewest rows in a block: smaller inputs use fewer blocks.
const MIN_BLOCK_ROWS: usize = 2048;

/// Rows whose `ln(1 + e^{−|z|})` terms share one `ln` (see [`block_loss`]).
const LN_BATCH: usize = 64;

/// The algorithm version; it enters the stage fingerprint.
pub const VERSION: u32 = 3;

#[derive(Debug, Clone, PartialEq)]
pub struct LogisticParams {
    /// Inverse regularisation strength (sklearn `C`), > 0.
    pub c: f64,
    /// Maximal L-BFGS iterations (sklearn `max_iter`).
    pub max_iter: usize,
    /// Gradient tolerance on the scaled objective (sklearn `tol`).
    pub tol: f64,
}

impl Default for LogisticParams {
    /// sklearn's defaults.
    fn default() -> Self {
        LogisticParams {
            c: 1.0,
            max_iter: 100,
            tol: 1e-4,
        }
    }
}

impl LogisticParams {
    /// Reads `C`, `max_iter` and `tol` (sklearn's names); missing keys keep
    /// sklearn's defaults, unknown keys are refused.
    pub fn from_json(params: &Map<String, Value>) -> Result<LogisticParams, String> {
        let mut p = LogisticParams::default();
        for (key, value) in params {
            match key.as_str() {
                "C" => {
                    p.c = value
                        .as_f64()
                        .filter(|c| c.is_finite() && *c > 0.0)
                        .ok_or("fit param `C` must be a positive number")?
                }
                "max_iter" => {
                    p.max_iter = value
                        .as_u64()
                        .ok_or("fit param `max_iter` must be a whole number")?
                        as usize
                }
                "tol" => {
                    p.tol = value
                        .as_f64()
                        .filter(|t| t.is_finite() && *t >= 0.0)
                        .ok_or("fit param `tol` must be a number >= 0")?
                }
                other => {
                    let hint = if other.eq_ignore_ascii_case("c") {
                        " (the regularisation param is spelled `C`)"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "fit has no param `{other}` (it takes C, max_iter and tol){hint}"
                    ));
                }
            }
        }
        Ok(p)
    }

    /// The params as a mapping that [`LogisticParams::from_json`] reads back.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("C".into(), Value::from(self.c));
        m.insert("max_iter".into(), Value::from(self.max_iter));
        m.insert("tol".into(), Value::from(self.tol));
        m
    }
}

/// Why a model could not be fitted or applied.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LogisticError {
    #[error("cannot fit on an empty training set")]
    NoSamples,
    #[error("the matrix has {rows} rows but there are {labels} labels")]
    LengthMismatch { rows: usize, labels: usize },
    #[error(
        "the training labels contain only one class ({class}); logistic regression needs at least two"
    )]
    OneClass { class: i64 },
    #[error("row {row} of the matrix holds a NaN or infinite value")]
    NonFinite { row: usize },
    #[error("the model was fitted on {expected} features but the matrix has {found} columns")]
    FeatureMismatch { expected: usize, found: usize },
    /// An error raised by linfa's dataset layer (see [`crate::estimator`]).
    #[error("{0}")]
    Framework(String),
}

impl From<linfa::Error> for LogisticError {
    fn from(e: linfa::Error) -> Self {
        LogisticError::Framework(e.to_string())
    }
}

/// How the solver ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitInfo {
    /// L-BFGS iterations (sklearn's `n_iter_`).
    pub n_iter: usize,
    /// Objective and gradient evaluations.
    pub n_eval: usize,
    pub stop: Stop,
    /// The scaled objective at the solution.
    pub objective: f64,
    /// `max |gradient|` of the scaled objective at the solution.
    pub grad_max: f64,
}

/// A fitted model: classes, coefficients and intercepts.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    classes: Vec<i64>,
    n_features: usize,
    /// Row-major, one row per class (a single row with two classes), as
    /// sklearn's `coef_`.
    coef: Vec<f64>,
    intercept: Vec<f64>,
}

/// Class probabilities, one row per sample, one column per class (in the
/// model's class order), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    n_classes: usize,
    values: Vec<f64>,
}

impl Probabilities {
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    pub fn n_samples(&self) -> usize {
        self.values.len() / self.n_classes
    }

    /// The probabilities of sample `i` (panics if out of range).
    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.n_classes..(i + 1) * self.n_classes]
    }

    /// The probability of class index `k` for every sample (for two
    /// classes, `column(1)` is the positive-class score).
    pub fn column(&self, k: usize) -> Vec<f64> {
        self.values
            .chunks_exact(self.n_classes)
            .map(|r| r[k])
            .collect()
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

/// Fits the model to rows of `x` labelled `y`.
pub fn fit(
    x: &Csr,
    y: &[i64],
    params: &LogisticParams,
) -> Result<(LogisticModel, FitInfo), LogisticError> {
    if x.nrows() != y.len() {
        return Err(LogisticError::LengthMismatch {
            rows: x.nrows(),
            labels: y.len(),
        });
    }
    if y.is_empty() {
        return Err(LogisticError::NoSamples);
    }
    check_finite(x)?;
    let mut classes = y.to_vec();
    classes.sort_unstable();
    classes.dedup();
    if classes.len() < 2 {
        return Err(LogisticError::OneClass { class: classes[0] });
    }
    let target: Vec<usize> = y
        .iter()
        .map(|label| classes.binary_search(label).expect("label is a class"))
        .collect();
    let k = if classes.len() == 2 { 1 } else { classes.len() };
    let d = x.ncols();

    let mut objective = Objective::new(x, &target, k, params.c);
    let opts = LbfgsOptions {
        max_iter: params.max_iter,
        gtol: params.tol,
        ..LbfgsOptions::default()
    };
    let result = if params.max_iter == 0 {
        // No iteration at all: the coefficients stay at zero. (scipy would
        // still make one iteration before looking at maxiter.)
        let theta = vec![0.0; d * k + k];
        let mut g = vec![0.0; theta.len()];
        let f = objective.eval(&theta, &mut g);
        lbfgs::LbfgsResult {
            x: theta,
            f,
            grad_max: g.iter().fold(0.0, |m, v| m.max(v.abs())),
            n_iter: 0,
            n_eval: 1,
            stop: Stop::MaxIterations,
        }
    } else {
        lbfgs::minimize(
            |theta, g| objective.eval(theta, g),
            vec![0.0; d * k + k],
            &opts,
        )
    };

    // Feature-major solver layout θ[j·k + c] → sklearn's row-major coef_.
    let mut coef = vec![0.0; k * d];
    for j in 0..d {
        for c in 0..k {
            coef[c * d + j] = result.x[j * k + c];
        }
    }
    let intercept = result.x[d * k..].to_vec();
    let info = FitInfo {
        n_iter: result.n_iter,
        n_eval: result.n_eval,
        stop: result.stop,
        objective: result.f,
        grad_max: result.grad_max,
    };
    Ok((
        LogisticModel {
            classes,
            n_features: d,
            coef,
            intercept,
        },
        info,
    ))
}

fn check_finite(x: &Csr) -> Result<(), LogisticError> {
    if let Some(pos) = x.data().iter().position(|v| !v.is_finite()) {
        let row = x.indptr().partition_point(|&p| p <= pos) - 1;
        return Err(LogisticError::NonFinite { row });
    }
    Ok(())
}

/// The scaled objective and its gradient; see the module docs.
struct Objective<'a> {
    /// The training rows, shortest first (see "Row order"): the caller's
    /// when they come so, else a sorted copy.
    x: Cow<'a, Csr>,
    /// The class index of each row of `x`.
    target: Cow<'a, [usize]>,
    k: usize,
    /// `1 / (C·n)`.
    l2: f64,
    /// Rows per block: the last block may be shorter.
    block_rows: usize,
    /// One `[∂w (d×k), ∂b (k)]` per block.
    partials: Vec<Vec<f64>>,
}

impl<'a> Objective<'a> {
    fn new(x: &'a Csr, target: &'a [usize], k: usize, c: f64) -> Objective<'a> {
        let order = crate::sparse::shortest_first(x.indptr());
        let (x, target) = if order.iter().enumerate().all(|(i, &row)| i == row) {
            (Cow::Borrowed(x), Cow::Borrowed(target))
        } else {
            let target = order.iter().map(|&i| target[i]).collect();
            (Cow::Owned(x.select_rows(&order)), Cow::Owned(target))
        };
        let n = x.nrows();
        let blocks = n.div_ceil(MIN_BLOCK_ROWS).clamp(1, GRADIENT_BLOCKS);
        let block_rows = n.div_ceil(blocks).max(1);
        let len = x.ncols() * k + k;
        Objective {
            x,
            target,
            k,
            l2: 1.0 / (c * n as f64),
            block_rows,
            partials: vec![vec![0.0; len]; n.div_ceil(block_rows)],
        }
    }

    /// `f(θ)`, writing `∇f(θ)` into `grad`. θ is `[w (d×k, feature-major),
    /// b (k)]`.
    fn eval(&mut self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let (x, target, k, block_rows) = (&self.x, &self.target[..], self.k, self.block_rows);
        let n = x.nrows();
        let inv_n = 1.0 / n as f64;
        let losses: Vec<f64> = self
            .partials
            .par_iter_mut()
            .enumerate()
            .map(|(block, partial)| {
                let rows = block * block_rows..((block + 1) * block_rows).min(n);
                block_loss(x, target, rows, theta, k, inv_n, partial)
            })
            .collect();
        let loss: f64 = losses.iter().sum();
        grad.fill(0.0);
        for partial in &self.partials {
            for (g, p) in grad.iter_mut().zip(partial) {
                *g += p;
            }
        }
        let d = x.ncols();
        let w = &theta[..d * k];
        let mut norm2 = 0.0;
        for (g, &wj) in grad[..d * k].iter_mut().zip(w) {
            *g += self.l2 * wj;
            norm2 += wj * wj;
        }
        loss * inv_n + 0.5 * self.l2 * norm2
    }
}

/// The summed loss of `rows`, writing their share of the (unregularised)
/// gradient into `partial`; see the module docs.
fn block_loss(
    x: &Csr,
    target: &[usize],
    rows: std::ops::Range<usize>,
    theta: &[f64],
    k: usize,
    inv_n: f64,
    partial: &mut [f64],
) -> f64 {
    let d = x.ncols();
    let (w, b) = theta.split_at(d * k);
    partial.fill(0.0);
    let (gw, gb) = partial.split_at_mut(d * k);
    let mut loss = 0.0;
    if k == 1 {
        let mut sums = BinarySums::default();
        let indptr = x.indptr();
        let row_len = |i: usize| indptr[i + 1] - indptr[i];
        // Runs of rows of one length (the rows are sorted by length).
        let mut i = rows.start;
        while i < rows.end {
            let len = row_len(i);
            let mut end = i + 1;
            while end < rows.end && row_len(end) == len {
                end += 1;
            }
            let entries = indptr[i]..indptr[end];
            let run = Run {
                cols: &x.indices()[entries.clone()],
                vals: &x.data()[entries],
                target: &target[i..end],
            };
            // Each arm inlines `binary_run` with a constant length, so
            // the loops over a row's entries are unrolled.
            macro_rules! by_length {
                ($($n:literal)*) => {
                    match len {
                        $($n => binary_run(&mut sums, &run, $n, w, b[0], inv_n, gw),)*
                        _ => binary_run(&mut sums, &run, len, w, b[0], inv_n, gw),
                    }
                };
            }
            by_length!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
            i = end;
        }
        gb[0] = sums.gb;
        return sums.loss + sums.product.ln();
    }
    let mut z = vec![0.0; k];
    for i in rows {
        let (cols, vals) = x.row(i);
        z.copy_from_slice(b);
        for (&j, &v) in cols.iter().zip(vals) {
            let wj = &w[j as usize * k..(j as usize + 1) * k];
            for (zc, &wjc) in z.iter_mut().zip(wj) {
                *zc += v * wjc;
            }
        }
        let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let sum: f64 = z.iter().map(|&v| (v - max).exp()).sum();
        let lse = max + sum.ln();
        let yi = target[i];
        loss += lse - z[yi];
        // z becomes the residual row.
        for (c, zc) in z.iter_mut().enumerate() {
            let p = (*zc - lse).exp();
            *zc = (p - if c == yi { 1.0 } else { 0.0 }) * inv_n;
        }
        for (&j, &v) in cols.iter().zip(vals) {
            let gj = &mut gw[j as usize * k..(j as usize + 1) * k];
            for (g, &r) in gj.iter_mut().zip(&z) {
                *g += v * r;
            }
        }
        for (g, &r) in gb.iter_mut().zip(&z) {
            *g += r;
        }
    }
    loss
}

/// The running sums of [`binary_run`] over a block's rows.
struct BinarySums {
    loss: f64,
    /// The product of the `1 + e^{−|z|}` of the rows not yet in `loss`.
    product: f64,
    in_product: usize,
    /// `Σ rᵢ`: the intercept's share of the gradient.
    gb: f64,
}

impl Default for BinarySums {
    fn default() -> Self {
        BinarySums {
            loss: 0.0,
            product: 1.0,
            in_product: 0,
            gb: 0.0,
        }
    }
}

/// Consecutive rows with the same number of entries.
struct Run<'a> {
    cols: &'a [u32],
    vals: &'a [f64],
    target: &'a [usize],
}

/// Adds the loss of the rows of `run`, each of `len` entries, to `sums`,
/// and their share of the gradient to `gw` and `sums.gb`.
///
/// `ln(1 + eᶻ) = max(z, 0) + ln(1 + e^{−|z|})`; the second terms are
/// multiplied together and taken `ln` of once per [`LN_BATCH`] rows (each
/// factor is in (1, 2], so the product cannot overflow, and its rounding
/// costs what summing each row's `ln` would).
#[inline(always)]
fn binary_run(
    sums: &mut BinarySums,
    run: &Run,
    len: usize,
    w: &[f64],
    b: f64,
    inv_n: f64,
    gw: &mut [f64],
) {
    for (t, &target) in run.target.iter().enumerate() {
        let cols = &run.cols[t * len..(t + 1) * len];
        let vals = &run.vals[t * len..(t + 1) * len];
        let z: f64 = cols
            .iter()
            .zip(vals)
            // SAFETY: `Csr` keeps columns below `ncols`, the length of `w`.
            .map(|(&j, &v)| v * unsafe { *w.get_unchecked(j as usize) })
            .sum::<f64>()
            + b;
        let y = target as f64;
        // One exponential serves both the loss and the sigmoid.
        let e = (-z.abs()).exp();
        sums.loss += z.max(0.0) - y * z;
        sums.product *= 1.0 + e;
        sums.in_product += 1;
        if sums.in_product == LN_BATCH {
            sums.loss += sums.product.ln();
            (sums.product, sums.in_product) = (1.0, 0);
        }
        let p = if z >= 0.0 {
            1.0 / (1.0 + e)
        } else {
            e / (1.0 + e)
        };
        let r = (p - y) * inv_n;
        for (&j, &v) in cols.iter().zip(vals) {
            // SAFETY: as above; `gw` is as long as `w`.
            unsafe { *gw.get_unchecked_mut(j as usize) += v * r };
        }
        sums.gb += r;
    }
}

/// The logistic sigmoid `1 / (1 + e^{−z})`, stable for large |z|.
pub(crate) fn expit(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl LogisticModel {
    /// Rebuilds a model from its parts (as stored in a model file):
    /// `classes` sorted and unique (at least two), `coef` one row per
    /// class (one row for two classes), each of `n_features` values, and
    /// one intercept per row.
    pub fn from_parts(
        classes: Vec<i64>,
        coef: Vec<Vec<f64>>,
        intercept: Vec<f64>,
    ) -> Result<LogisticModel, String> {
        if classes.len() < 2 || classes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "classes must be at least two sorted distinct labels, not {classes:?}"
            ));
        }
        let rows = if classes.len() == 2 { 1 } else { classes.len() };
        if coef.len() != rows || intercept.len() != rows {
            return Err(format!(
                "{} classes need {rows} coefficient rows and intercepts, found {} and {}",
                classes.len(),
                coef.len(),
                intercept.len()
            ));
        }
        let n_features = coef[0].len();
        if coef.iter().any(|r| r.len() != n_features) {
            return Err("coefficient rows differ in length".into());
        }
        if coef
            .iter()
            .flatten()
            .chain(&intercept)
            .any(|v| !v.is_finite())
        {
            return Err("coefficients and intercepts must be finite".into());
        }
        Ok(LogisticModel {
            classes,
            n_features,
            coef: coef.concat(),
            intercept,
        })
    }

    pub fn classes(&self) -> &[i64] {
        &self.classes
    }

    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// The coefficient rows (sklearn's `coef_`): one for two classes, one
    /// per class otherwise.
    pub fn coef_rows(&self) -> impl Iterator<Item = &[f64]> {
        self.coef.chunks_exact(self.n_features.max(1))
    }

    pub fn intercept(&self) -> &[f64] {
        &self.intercept
    }

    /// `z = X·coefᵀ + intercept`, row-major with one column per coef row
    /// (sklearn's `decision_function`).
    pub fn decision_function(&self, x: &Csr) -> Result<Vec<f64>, LogisticError> {
        if x.ncols() != self.n_features {
            return Err(LogisticError::FeatureMismatch {
                expected: self.n_features,
                found: x.ncols(),
            });
        }
        let k = self.intercept.len();
        let d = self.n_features;
        let mut w = vec![0.0; d * k];
        for c in 0..k {
            for j in 0..d {
                w[j * k + c] = self.coef[c * d + j];
            }
        }
        let mut z = vec![0.0; x.nrows() * k];
        x.mul_dense(&w, k, &mut z);
        for zi in z.chunks_exact_mut(k) {
            for (v, b) in zi.iter_mut().zip(&self.intercept) {
                *v += b;
            }
        }
        Ok(z)
    }

    /// Class probabilities (sklearn's `predict_proba`).
    pub fn predict_proba(&self, x: &Csr) -> Result<Probabilities, LogisticError> {
        let z = self.decision_function(x)?;
        let values = if self.classes.len() == 2 {
            z.iter()
                .flat_map(|&zi| {
                    let p = expit(zi);
                    [1.0 - p, p]
                })
                .collect()
        } else {
            let k = self.classes.len();
            let mut v = z;
            for zi in v.chunks_exact_mut(k) {
                let max = zi.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                let mut sum = 0.0;
                for p in zi.iter_mut() {
                    *p = (*p - max).exp();
                    sum += *p;
                }
                zi.iter_mut().for_each(|p| *p /= sum);
            }
            v
        };
        Ok(Probabilities {
            n_classes: self.classes.len(),
            values,
        })
    }

    /// Predicted labels (sklearn's `predict`).
    pub fn predict(&self, x: &Csr) -> Result<Vec<i64>, LogisticError> {
        let z = self.decision_function(x)?;
        Ok(if self.classes.len() == 2 {
            z.iter()
                .map(|&zi| self.classes[usize::from(zi > 0.0)])
                .collect()
        } else {
            z.chunks_exact(self.classes.len())
                .map(|zi| {
                    let best = (1..zi.len()).fold(0, |b, c| if zi[c] > zi[b] { c } else { b });
                    self.classes[best]
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse::CsrBuilder;

    fn csr(rows: &[&[f64]]) -> Csr {
        let mut b = CsrBuilder::new(rows[0].len());
        for r in rows {
            let mut pairs: Vec<(u32, f64)> = r
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(j, v)| (j as u32, *v))
                .collect();
            b.push_row(&mut pairs);
        }
        b.finish().unwrap()
    }

    /// Overlapping classes, so that the optimum is finite even for large C.
    fn data() -> (Csr, Vec<i64>) {
        let x = csr(&[
            &[1.0, 0.0, 0.5],
            &[0.8, 0.2, 0.0],
            &[0.0, 1.0, 0.3],
            &[0.1, 0.9, 0.0],
            &[0.6, 0.0, 0.6],
            &[0.0, 0.7, 0.7],
            &[0.9, 0.1, 0.0],
            &[0.2, 0.8, 0.4],
        ]);
        (x, vec![1, 1, 0, 0, 1, 0, 0, 1])
    }

    fn tight(c: f64) -> LogisticParams {
        LogisticParams {
            c,
            max_iter: 10_000,
            tol: 1e-10,
        }
    }

    /// The unscaled sklearn objective C·Σ loss + ½‖w‖², densely.
    fn dense_objective(x: &Csr, y: &[i64], w: &[f64], b: f64, c: f64) -> f64 {
        let dense = x.to_dense();
        let d = x.ncols();
        let mut total = 0.0;
        for (i, &yi) in y.iter().enumerate() {
            let z: f64 = (0..d).map(|j| dense[i * d + j] * w[j]).sum::<f64>() + b;
            let s = if yi == 1 { 1.0 } else { -1.0 };
            total += (1.0 + (-s * z).exp()).ln();
        }
        c * total + 0.5 * w.iter().map(|v| v * v).sum::<f64>()
    }

    /// The gradient of the unscaled objective, densely.
    fn dense_gradient(x: &Csr, y: &[i64], w: &[f64], b: f64, c: f64) -> (Vec<f64>, f64) {
        let dense = x.to_dense();
        let d = x.ncols();
        let mut gw: Vec<f64> = w.to_vec();
        let mut gb = 0.0;
        for (i, &yi) in y.iter().enumerate() {
            let z: f64 = (0..d).map(|j| dense[i * d + j] * w[j]).sum::<f64>() + b;
            let r = c * (1.0 / (1.0 + (-z).exp()) - yi as f64);
            for j in 0..d {
                gw[j] += r * dense[i * d + j];
            }
            gb += r;
        }
        (gw, gb)
    }

    #[test]
    fn the_solution_satisfies_the_optimality_condition() {
        let (x, y) = data();
        for c in [0.1, 1.0, 100.0] {
            let (m, info) = fit(&x, &y, &tight(c)).unwrap();
            assert!(info.stop.converged(), "{info:?}");
            let w = m.coef_rows().next().unwrap();
            let b = m.intercept()[0];
            let (gw, gb) = dense_gradient(&x, &y, w, b, c);
            // The unscaled gradient is C·n times the scaled one.
            let scale = c * y.len() as f64;
            for g in gw.iter().chain([&gb]) {
                assert!(g.abs() / scale < 1e-6, "C={c}: {gw:?} {gb}");
            }
        }
    }

    #[test]
    fn the_solution_is_the_minimum_of_the_dense_objective() {
        let (x, y) = data();
        let c = 1.0;
        let (m, _) = fit(&x, &y, &tight(c)).unwrap();
        let w = m.coef_rows().next().unwrap().to_vec();
        let b = m.intercept()[0];
        let best = dense_objective(&x, &y, &w, b, c);
        // Brute force: any nearby point is no better.
        let deltas = [-1e-3, 1e-3];
        for j in 0..4 {
            for &dlt in &deltas {
                let (mut w2, mut b2) = (w.clone(), b);
                if j < 3 {
                    w2[j] += dlt;
                } else {
                    b2 += dlt;
                }
                assert!(dense_objective(&x, &y, &w2, b2, c) > best, "{j} {dlt}");
            }
        }
        // And a coarse grid over the plane of the first two weights.
        for a in -20..=20 {
            for bb in -20..=20 {
                let mut w2 = w.clone();
                w2[0] += a as f64 * 0.05;
                w2[1] += bb as f64 * 0.05;
                assert!(dense_objective(&x, &y, &w2, b, c) >= best - 1e-12);
            }
        }
    }

    #[test]
    fn the_intercept_is_not_penalised() {
        // No features at all: the model is the intercept alone, and with
        // no penalty on it, the probability equals the share of positives
        // exactly, however strong the regularisation.
        let x = Csr::new(4, 1, vec![0, 0, 0, 0, 0], vec![], vec![]).unwrap();
        for c in [1e-6, 1.0] {
            let (m, _) = fit(&x, &[1, 1, 1, 0], &tight(c)).unwrap();
            assert!(
                (m.intercept()[0] - 3f64.ln()).abs() < 1e-8,
                "{:?}",
                m.intercept()
            );
            let (m, _) = fit(&x, &[1, 0, 0, 0], &tight(c)).unwrap();
            assert!((m.intercept()[0] + 3f64.ln()).abs() < 1e-8);
        }
        // With features and a strong penalty, w shrinks to ~0 while b still
        // follows the balance of the labels.
        let (x, _) = data();
        let (m, _) = fit(&x, &[1, 1, 1, 1, 1, 1, 0, 0], &tight(1e-6)).unwrap();
        assert!(m.coef_rows().next().unwrap().iter().all(|w| w.abs() < 1e-4));
        assert!((m.intercept()[0] - 3f64.ln()).abs() < 1e-3);
    }

    #[test]
    fn multinomial_satisfies_the_optimality_condition() {
        let x = csr(&[
            &[1.0, 0.0],
            &[0.9, 0.2],
            &[0.0, 1.0],
            &[0.1, 0.8],
            &[0.5, 0.5],
            &[0.6, 0.4],
            &[0.2, 0.1],
        ]);
        let y = [0, 0, 1, 1, 2, 2, 0];
        let c = 2.0;
        let (m, info) = fit(&x, &y, &tight(c)).unwrap();
        assert!(info.stop.converged());
        assert_eq!(m.classes(), [0, 1, 2]);
        // Gradient of C·Σ loss + ½‖W‖² by hand: C·Σᵢ (pᵢₖ − [yᵢ = k]) xᵢ + w_k.
        let p = m.predict_proba(&x).unwrap();
        let dense = x.to_dense();
        for (k, w) in m.coef_rows().enumerate() {
            let mut gb = 0.0;
            let mut gw = w.to_vec();
            for (i, &yi) in y.iter().enumerate() {
                let r = c * (p.row(i)[k] - f64::from(u8::from(yi == k as i64)));
                gb += r;
                for (j, g) in gw.iter_mut().enumerate() {
                    *g += r * dense[i * 2 + j];
                }
            }
            let scale = c * 7.0;
            assert!(gb.abs() / scale < 1e-6 && gw.iter().all(|g| g.abs() / scale < 1e-6));
        }
        // Probabilities sum to one; intercepts sum to zero (start at zero,
        // gradients sum to zero).
        for i in 0..7 {
            assert!((p.row(i).iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert!(m.intercept().iter().sum::<f64>().abs() < 1e-9);
        let pred = m.predict(&x).unwrap();
        assert_eq!(&pred[..4], &[0, 0, 1, 1]);
    }

    #[test]
    fn predictions_follow_sklearn_conventions() {
        let (x, y) = data();
        let labels: Vec<i64> = y.iter().map(|&v| if v == 1 { 7 } else { -3 }).collect();
        let (m, _) = fit(&x, &labels, &tight(10.0)).unwrap();
        assert_eq!(m.classes(), [-3, 7]);
        let z = m.decision_function(&x).unwrap();
        let p = m.predict_proba(&x).unwrap();
        let pred = m.predict(&x).unwrap();
        for i in 0..x.nrows() {
            assert!((p.row(i)[1] - 1.0 / (1.0 + (-z[i]).exp())).abs() < 1e-15);
            assert!((p.row(i)[0] + p.row(i)[1] - 1.0).abs() < 1e-15);
            assert_eq!(pred[i], if z[i] > 0.0 { 7 } else { -3 });
        }
    }

    #[test]
    fn max_iter_stops_early_and_says_so() {
        let (x, y) = data();
        let p = LogisticParams {
            c: 1e4,
            max_iter: 2,
            tol: 1e-12,
        };
        let (_, info) = fit(&x, &y, &p).unwrap();
        assert_eq!((info.n_iter, info.stop), (2, Stop::MaxIterations));
        assert!(!info.stop.converged());
    }

    #[test]
    fn the_objective_matches_the_dense_formula_across_blocks_and_batches() {
        // More rows than one block and one ln batch, with |z| up to ~40.
        let n = 3 * MIN_BLOCK_ROWS + 77;
        let mut rows: Vec<Vec<f64>> = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let t = i as f64;
            rows.push(vec![
                (t * 0.37).sin(),
                (t * 0.11).cos(),
                if i % 3 == 0 { 0.5 } else { 0.0 },
            ]);
            y.push((i % 2) as i64);
        }
        let x = csr(&rows.iter().map(|r| &r[..]).collect::<Vec<_>>());
        assert_objective_is_dense(&x, &y, &[20.0, -30.0, 7.0], 1.5, 3.0);
    }

    /// The binary objective and gradient at `(w, b)` equal the dense
    /// formulas (scaled by `1 / (C·n)`) to 1e-12.
    fn assert_objective_is_dense(x: &Csr, y: &[i64], w: &[f64], b: f64, c: f64) {
        let n = y.len();
        let target: Vec<usize> = y.iter().map(|&v| v as usize).collect();
        let mut theta = w.to_vec();
        theta.push(b);
        let mut grad = vec![0.0; theta.len()];
        let f = Objective::new(x, &target, 1, c).eval(&theta, &mut grad);
        let want = dense_objective(x, y, w, b, c) / (c * n as f64);
        assert!((f - want).abs() <= 1e-12 * want.abs(), "{f} vs {want}");
        let (gw, gb) = dense_gradient(x, y, w, b, c);
        for (g, want) in grad.iter().zip(gw.iter().chain([&gb])) {
            let want = want / (c * n as f64);
            assert!(
                (g - want).abs() <= 1e-12 * (1.0 + want.abs()),
                "{g} vs {want}"
            );
        }
    }

    #[test]
    fn rows_of_every_length_match_the_dense_formula() {
        // Rows of 0 to 40 entries in an order that is not by length, so
        // that the sorted copy, the runs of one length, the unrolled loops
        // (up to 24 entries) and the plain loop (longer rows) all count.
        let (n, d) = (2 * MIN_BLOCK_ROWS + 333, 48);
        let mut rows: Vec<Vec<f64>> = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let len = (i * 7919) % 41;
            let mut row = vec![0.0; d];
            for e in 0..len {
                let j = (i * 31 + e * 17) % d;
                row[j] = ((i * 13 + e) as f64 * 0.7).sin() * 0.3;
            }
            rows.push(row);
            y.push(((i * 5) % 3 == 0) as i64);
        }
        let x = csr(&rows.iter().map(|r| &r[..]).collect::<Vec<_>>());
        assert_eq!(x.row(0).0.len(), 0);
        assert!((0..n).any(|i| x.row(i).0.len() > 24));
        let w: Vec<f64> = (0..d).map(|j| (j as f64 * 1.3).cos() * 4.0).collect();
        assert_objective_is_dense(&x, &y, &w, -0.4, 2.0);
        // The same rows through the multinomial path converge too.
        let three: Vec<i64> = (0..n).map(|i| (i % 3) as i64).collect();
        let (_, info) = fit(&x, &three, &tight(1.0)).unwrap();
        assert!(info.stop.converged(), "{info:?}");
    }

    #[test]
    fn bad_input_is_an_error() {
        let (x, y) = data();
        let p = LogisticParams::default();
        assert!(matches!(
            fit(&x, &y[..3], &p),
            Err(LogisticError::LengthMismatch { rows: 8, labels: 3 })
        ));
        assert_eq!(
            fit(&x, &[1; 8], &p).unwrap_err().to_string(),
            "the training labels contain only one class (1); logistic regression needs at least two"
        );
        let empty = Csr::new(0, 3, vec![0], vec![], vec![]).unwrap();
        assert_eq!(fit(&empty, &[], &p), Err(LogisticError::NoSamples));
        let nan = Csr::new(2, 1, vec![0, 1, 2], vec![0, 0], vec![1.0, f64::NAN]).unwrap();
        assert_eq!(
            fit(&nan, &[0, 1], &p),
            Err(LogisticError::NonFinite { row: 1 })
        );
        let (m, _) = fit(&x, &y, &p).unwrap();
        let narrow = Csr::new(1, 2, vec![0, 0], vec![], vec![]).unwrap();
        assert!(matches!(
            m.predict(&narrow),
            Err(LogisticError::FeatureMismatch {
                expected: 3,
                found: 2
            })
        ));
    }

    #[test]
    fn params_are_checked_and_roundtrip() {
        let p: Map<String, Value> =
            serde_json::from_str(r#"{"C": 100000, "max_iter": 1000, "tol": 0.0001}"#).unwrap();
        let p = LogisticParams::from_json(&p).unwrap();
        assert_eq!((p.c, p.max_iter, p.tol), (1e5, 1000, 1e-4));
        assert_eq!(LogisticParams::from_json(&p.to_json()).unwrap(), p);
        let err = |json: &str| {
            LogisticParams::from_json(&serde_json::from_str(json).unwrap()).unwrap_err()
        };
        assert!(err(r#"{"c": 1}"#).contains("spelled `C`"));
        assert!(err(r#"{"C": 0}"#).contains("positive"));
        assert!(err(r#"{"max_iter": 1.5}"#).contains("whole number"));
        assert!(err(r#"{"tol": -1}"#).contains(">= 0"));
        assert!(err(r#"{"penalty": "l1"}"#).contains("no param `penalty`"));
    }
}
