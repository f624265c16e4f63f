//! `lbfgs`: unconstrained L-BFGS that stops where scipy's L-BFGS-B stops.
//!
//! scikit-learn's `LogisticRegression(solver="lbfgs")` calls
//! `scipy.optimize.minimize(method="L-BFGS-B")` without bounds. To stop at
//! the same place (same iteration count, same final coefficients up to
//! rounding) this module follows that code path step by step, rather than
//! a textbook L-BFGS:
//!
//! - **Direction.** Without bounds, L-BFGS-B's generalised Cauchy point and
//!   subspace minimisation reduce to the quasi-Newton step `d = -H·g`,
//!   where `H` is the inverse of the limited-memory BFGS matrix with the
//!   last `memory` pairs `(s, y)` and initial scaling `θ = yᵀy / sᵀy` of
//!   the newest pair. It is computed here with the two-loop recursion
//!   (same matrix, another formula). With no pair yet, `d = -g`.
//! - **First step length** `1 / ‖d‖` on the very first iteration, `1`
//!   afterwards.
//! - **Line search**: Moré–Thuente `dcsrch` from MINPACK-2 (see
//!   [`crate::line_search`]) with L-BFGS-B's constants: sufficient decrease
//!   `ftol = 1e-3`, curvature `gtol = 0.9`, `xtol = 0.1`, steps in `[0,
//!   1e10]`, at most `max_linesearch` evaluations (sklearn passes
//!   `maxls=50`). If it fails, the previous point is restored and the
//!   memory dropped (a steepest-descent restart); failing with an empty
//!   memory ends the run.
//! - **Update skipped** when `sᵀy <= ε · (-gᵀd) · step`, as L-BFGS-B does,
//!   to keep `H` positive definite.
//! - **Stopping**, tested after each iteration in L-BFGS-B's order:
//!   `iterations >= max_iter` (scipy's driver checks it first), then
//!   `max |gᵢ| <= gtol` (the projected gradient without bounds is the
//!   gradient), then `(f_old - f) / max(|f_old|, |f|, 1) <= ftol`. The
//!   gradient test is also made at the starting point (0 iterations).
//!
//! Everything is deterministic and single-threaded.

use crate::line_search::{Dcsrch, LineSearchStep};

/// Options of [`minimize`]; the defaults are scipy's except `max_linesearch`,
/// which is sklearn's 50.
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsOptions {
    /// Number of `(s, y)` pairs kept (scipy `maxcor`).
    pub memory: usize,
    pub max_iter: usize,
    /// Maximal function evaluations (scipy `maxfun`).
    pub max_eval: usize,
    /// Stop when `max |gᵢ| <= gtol`.
    pub gtol: f64,
    /// Stop when the relative decrease of `f` is `<= ftol`.
    pub ftol: f64,
    /// Evaluations allowed per line search (scipy `maxls`).
    pub max_linesearch: usize,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            memory: 10,
            max_iter: 15_000,
            max_eval: 15_000,
            gtol: 1e-5,
            ftol: 64.0 * f64::EPSILON,
            max_linesearch: 50,
        }
    }
}

/// Why [`minimize`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `max |gᵢ| <= gtol`: converged.
    Gradient,
    /// The relative decrease of `f` fell to `ftol`: converged.
    RelativeReduction,
    /// `max_iter` iterations were made (sklearn warns: not converged).
    MaxIterations,
    /// `max_eval` evaluations were made.
    MaxEvaluations,
    /// The line search failed right after a restart: no progress possible.
    LineSearchFailed,
    /// The objective or its gradient was NaN or infinite.
    NonFinite,
}

impl Stop {
    /// True for the two convergence tests.
    pub fn converged(self) -> bool {
        matches!(self, Stop::Gradient | Stop::RelativeReduction)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Stop::Gradient => "converged: largest gradient component <= tol",
            Stop::RelativeReduction => "converged: relative reduction of the objective <= 64 eps",
            Stop::MaxIterations => "stopped after max_iter iterations without converging",
            Stop::MaxEvaluations => "stopped after the maximal number of evaluations",
            Stop::LineSearchFailed => "stopped: the line search could not make progress",
            Stop::NonFinite => "stopped: the objective became NaN or infinite",
        }
    }
}

/// The outcome of [`minimize`].
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsResult {
    pub x: Vec<f64>,
    /// The objective at `x`.
    pub f: f64,
    /// `max |gᵢ|` at `x`.
    pub grad_max: f64,
    /// Iterations, counted as scipy's `nit` (and sklearn's `n_iter_`).
    pub n_iter: usize,
    pub n_eval: usize,
    pub stop: Stop,
}

/// Minimises `fg`, which returns `f(x)` and writes `∇f(x)` into its second
/// argument, from `x0`.
pub fn minimize(
    mut fg: impl FnMut(&[f64], &mut [f64]) -> f64,
    x0: Vec<f64>,
    opts: &LbfgsOptions,
) -> LbfgsResult {
    const STEP_MAX: f64 = 1e10;
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    let mut f = fg(&x, &mut g);
    let mut n_eval = 1;
    let mut n_iter = 0;
    let finish = |x: Vec<f64>, f: f64, g: &[f64], n_iter, n_eval, stop| LbfgsResult {
        x,
        f,
        grad_max: max_abs(g),
        n_iter,
        n_eval,
        stop,
    };
    if !f.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return finish(x, f, &g, n_iter, n_eval, Stop::NonFinite);
    }
    if max_abs(&g) <= opts.gtol {
        return finish(x, f, &g, n_iter, n_eval, Stop::Gradient);
    }

    let mut memory = Memory::new(opts.memory.max(1));
    let mut d = vec![0.0; n];
    let mut x_old = vec![0.0; n];
    let mut g_old = vec![0.0; n];
    loop {
        memory.direction(&g, &mut d);
        let dnorm = dot(&d, &d).sqrt();
        let gd0 = dot(&g, &d);
        x_old.copy_from_slice(&x);
        g_old.copy_from_slice(&g);
        let f_old = f;

        // The line search along d, from x_old.
        let mut step = if n_iter == 0 {
            (1.0 / dnorm).min(STEP_MAX)
        } else {
            1.0
        };
        let mut search = if gd0 < 0.0 {
            Dcsrch::new(f_old, gd0, step, 1e-3, 0.9, 0.1, 0.0, STEP_MAX).ok()
        } else {
            None // not a descent direction
        };
        let mut gd = gd0;
        let mut accepted = false;
        let mut non_finite = false;
        let mut evals = 0;
        if let Some(search) = search.as_mut() {
            loop {
                if evals >= opts.max_linesearch {
                    break;
                }
                for i in 0..n {
                    x[i] = x_old[i] + step * d[i];
                }
                f = fg(&x, &mut g);
                n_eval += 1;
                evals += 1;
                if !f.is_finite() || g.iter().any(|v| !v.is_finite()) {
                    non_finite = true; // a failed search
                    break;
                }
                gd = dot(&g, &d);
                match search.step(step, f, gd) {
                    LineSearchStep::Evaluate(next) => step = next,
                    LineSearchStep::Converged | LineSearchStep::Warning(_) => {
                        accepted = true;
                        break;
                    }
                }
            }
        }
        if !accepted {
            x.copy_from_slice(&x_old);
            g.copy_from_slice(&g_old);
            f = f_old;
            if memory.is_empty() {
                let stop = if non_finite {
                    Stop::NonFinite
                } else {
                    Stop::LineSearchFailed
                };
                return finish(x, f, &g, n_iter, n_eval, stop);
            }
            memory.clear();
            continue;
        }

        n_iter += 1;
        if n_iter >= opts.max_iter {
            return finish(x, f, &g, n_iter, n_eval, Stop::MaxIterations);
        }
        if n_eval > opts.max_eval {
            return finish(x, f, &g, n_iter, n_eval, Stop::MaxEvaluations);
        }
        if max_abs(&g) <= opts.gtol {
            return finish(x, f, &g, n_iter, n_eval, Stop::Gradient);
        }
        if f_old - f <= opts.ftol * f_old.abs().max(f.abs()).max(1.0) {
            return finish(x, f, &g, n_iter, n_eval, Stop::RelativeReduction);
        }

        // s = step·d, y = g - g_old; sᵀy as L-BFGS-B computes it.
        let sy = (gd - gd0) * step;
        if sy > f64::EPSILON * (-gd0 * step) {
            let (mut s, mut y) = memory.spare(n);
            for i in 0..n {
                s[i] = step * d[i];
                y[i] = g[i] - g_old[i];
            }
            let yy = dot(&y, &y);
            memory.push(s, y, yy / sy);
        }
    }
}

/// The limited memory: the newest `capacity` pairs and `θ`.
struct Memory {
    capacity: usize,
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    rho: Vec<f64>,
    theta: f64,
    alpha: Vec<f64>,
}

impl Memory {
    fn new(capacity: usize) -> Memory {
        Memory {
            capacity,
            s: Vec::new(),
            y: Vec::new(),
            rho: Vec::new(),
            theta: 1.0,
            alpha: vec![0.0; capacity],
        }
    }

    fn is_empty(&self) -> bool {
        self.s.is_empty()
    }

    fn clear(&mut self) {
        self.s.clear();
        self.y.clear();
        self.rho.clear();
        self.theta = 1.0;
    }

    /// Buffers for a new pair: the oldest pair's when the memory is full
    /// (it is dropped), fresh ones otherwise.
    fn spare(&mut self, n: usize) -> (Vec<f64>, Vec<f64>) {
        if self.s.len() == self.capacity {
            self.rho.remove(0);
            (self.s.remove(0), self.y.remove(0))
        } else {
            (vec![0.0; n], vec![0.0; n])
        }
    }

    /// Adds the newest pair (after [`Memory::spare`] made room).
    fn push(&mut self, s: Vec<f64>, y: Vec<f64>, theta: f64) {
        self.rho.push(1.0 / dot(&s, &y));
        self.s.push(s);
        self.y.push(y);
        self.theta = theta;
    }

    /// `d = -H·g` by the two-loop recursion, with `H₀ = I / θ`.
    fn direction(&mut self, g: &[f64], d: &mut [f64]) {
        for (di, gi) in d.iter_mut().zip(g) {
            *di = -gi;
        }
        let m = self.s.len();
        for i in (0..m).rev() {
            let a = self.rho[i] * dot(&self.s[i], d);
            self.alpha[i] = a;
            axpy(-a, &self.y[i], d);
        }
        let scale = 1.0 / self.theta;
        d.iter_mut().for_each(|v| *v *= scale);
        for i in 0..m {
            let b = self.rho[i] * dot(&self.y[i], d);
            axpy(self.alpha[i] - b, &self.s[i], d);
        }
    }
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rosenbrock function, the classic hard case for line searches.
    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn minimises_rosenbrock() {
        let opts = LbfgsOptions {
            gtol: 1e-8,
            ftol: 0.0,
            ..LbfgsOptions::default()
        };
        let r = minimize(rosenbrock, vec![-1.2, 1.0], &opts);
        assert_eq!(r.stop, Stop::Gradient, "{r:?}");
        assert!(
            (r.x[0] - 1.0).abs() < 1e-6 && (r.x[1] - 1.0).abs() < 1e-6,
            "{r:?}"
        );
        assert!(r.n_iter > 10 && r.n_iter < 100, "{r:?}");
    }

    #[test]
    fn minimises_a_quadratic_exactly() {
        // f(x) = ½ Σ cᵢ (xᵢ - i)², minimum at xᵢ = i.
        let c = [1.0, 10.0, 100.0, 0.5];
        let fg = |x: &[f64], g: &mut [f64]| {
            let mut f = 0.0;
            for i in 0..4 {
                let r = x[i] - i as f64;
                g[i] = c[i] * r;
                f += 0.5 * c[i] * r * r;
            }
            f
        };
        let opts = LbfgsOptions {
            gtol: 1e-10,
            ftol: 0.0,
            ..LbfgsOptions::default()
        };
        let r = minimize(fg, vec![0.0; 4], &opts);
        assert!(r.stop.converged(), "{r:?}");
        for (i, xi) in r.x.iter().enumerate() {
            assert!((xi - i as f64).abs() < 1e-9, "{r:?}");
        }
    }

    #[test]
    fn stops_at_the_starting_point_when_already_optimal() {
        let r = minimize(
            |x: &[f64], g: &mut [f64]| {
                g[0] = x[0];
                0.5 * x[0] * x[0]
            },
            vec![0.0],
            &LbfgsOptions::default(),
        );
        assert_eq!((r.n_iter, r.n_eval, r.stop), (0, 1, Stop::Gradient));
    }

    #[test]
    fn max_iter_is_counted_like_scipy() {
        let opts = LbfgsOptions {
            max_iter: 3,
            gtol: 0.0,
            ftol: 0.0,
            ..LbfgsOptions::default()
        };
        let r = minimize(rosenbrock, vec![-1.2, 1.0], &opts);
        assert_eq!((r.n_iter, r.stop), (3, Stop::MaxIterations));
    }

    #[test]
    fn a_non_finite_objective_stops_cleanly() {
        let r = minimize(
            |_: &[f64], g: &mut [f64]| {
                g[0] = f64::NAN;
                f64::NAN
            },
            vec![1.0],
            &LbfgsOptions::default(),
        );
        assert_eq!(r.stop, Stop::NonFinite);
    }
}
