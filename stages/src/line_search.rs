//! `line_search`: the Moré–Thuente line search `dcsrch` of MINPACK-2.
//!
//! This is the line search inside L-BFGS-B (and so inside scikit-learn's
//! lbfgs solver), ported from the MINPACK-2 Fortran by Moré, Thuente,
//! Averick and Carter (1993) as scipy ports it (`scipy/optimize/_dcsrch.py`).
//! Along a descent direction it looks for a step `stp` with
//!
//! - sufficient decrease: `φ(stp) <= φ(0) + ftol · stp · φ'(0)`, and
//! - curvature (strong Wolfe): `|φ'(stp)| <= gtol · |φ'(0)|`,
//!
//! keeping an interval `[stx, sty]` known to contain such a step and
//! choosing trial steps by safeguarded cubic and quadratic interpolation
//! (`dcstep`). It is a reverse-communication routine: the caller
//! evaluates `φ` and `φ'` at the step it is given and reports back, so the
//! caller owns the function and its gradient vector.

/// What the caller must do after [`Dcsrch::step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LineSearchStep {
    /// Evaluate `φ` and `φ'` at this step and call [`Dcsrch::step`] again.
    Evaluate(f64),
    /// The last step satisfies both conditions.
    Converged,
    /// No better step can be found (rounding, `xtol`, or a bound); the
    /// last step is the best found. L-BFGS-B accepts it.
    Warning(&'static str),
}

/// The state of one line search.
#[derive(Debug, Clone)]
pub struct Dcsrch {
    gtol: f64,
    xtol: f64,
    stpmin: f64,
    stpmax: f64,
    brackt: bool,
    stage: u8,
    finit: f64,
    ginit: f64,
    gtest: f64,
    width: f64,
    width1: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
}

const XTRAPL: f64 = 1.1;
const XTRAPU: f64 = 4.0;

impl Dcsrch {
    /// Starts a search from `φ(0) = f0`, `φ'(0) = g0 < 0`; the first trial
    /// step is `stp` (the caller evaluates it first). Refuses arguments
    /// that MINPACK-2 refuses.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        f0: f64,
        g0: f64,
        stp: f64,
        ftol: f64,
        gtol: f64,
        xtol: f64,
        stpmin: f64,
        stpmax: f64,
    ) -> Result<Dcsrch, &'static str> {
        if stp < stpmin {
            return Err("step below stpmin");
        }
        if stp > stpmax {
            return Err("step above stpmax");
        }
        if g0 >= 0.0 {
            return Err("initial derivative is not negative");
        }
        if ftol < 0.0 || gtol < 0.0 || xtol < 0.0 || stpmin < 0.0 || stpmax < stpmin {
            return Err("bad tolerances or bounds");
        }
        let width = stpmax - stpmin;
        Ok(Dcsrch {
            gtol,
            xtol,
            stpmin,
            stpmax,
            brackt: false,
            stage: 1,
            finit: f0,
            ginit: g0,
            gtest: ftol * g0,
            width,
            width1: width / 0.5,
            stx: 0.0,
            fx: f0,
            gx: g0,
            sty: 0.0,
            fy: f0,
            gy: g0,
            stmin: 0.0,
            stmax: stp + XTRAPU * stp,
        })
    }

    /// Reports `φ(stp) = f` and `φ'(stp) = g` for the step last asked for.
    pub fn step(&mut self, stp: f64, f: f64, g: f64) -> LineSearchStep {
        let ftest = self.finit + stp * self.gtest;
        if self.stage == 1 && f <= ftest && g >= 0.0 {
            self.stage = 2;
        }

        // Warnings, then convergence (which overrides them).
        let mut outcome = None;
        if self.brackt && (stp <= self.stmin || stp >= self.stmax) {
            outcome = Some(LineSearchStep::Warning("rounding errors prevent progress"));
        }
        if self.brackt && self.stmax - self.stmin <= self.xtol * self.stmax {
            outcome = Some(LineSearchStep::Warning("xtol test satisfied"));
        }
        if stp == self.stpmax && f <= ftest && g <= self.gtest {
            outcome = Some(LineSearchStep::Warning("step at stpmax"));
        }
        if stp == self.stpmin && (f > ftest || g >= self.gtest) {
            outcome = Some(LineSearchStep::Warning("step at stpmin"));
        }
        if f <= ftest && g.abs() <= self.gtol * -self.ginit {
            outcome = Some(LineSearchStep::Converged);
        }
        if let Some(outcome) = outcome {
            return outcome;
        }

        let mut stp = stp;
        if self.stage == 1 && f <= self.fx && f > ftest {
            // A lower value but not a sufficient decrease: step on the
            // modified function ψ(α) = φ(α) - φ(0) - ftol·α·φ'(0).
            let mut s = StepState {
                stx: self.stx,
                fx: self.fx - self.stx * self.gtest,
                dx: self.gx - self.gtest,
                sty: self.sty,
                fy: self.fy - self.sty * self.gtest,
                dy: self.gy - self.gtest,
                stp,
                brackt: self.brackt,
            };
            dcstep(
                &mut s,
                f - stp * self.gtest,
                g - self.gtest,
                self.stmin,
                self.stmax,
            );
            self.stx = s.stx;
            self.sty = s.sty;
            self.fx = s.fx + s.stx * self.gtest;
            self.fy = s.fy + s.sty * self.gtest;
            self.gx = s.dx + self.gtest;
            self.gy = s.dy + self.gtest;
            self.brackt = s.brackt;
            stp = s.stp;
        } else {
            let mut s = StepState {
                stx: self.stx,
                fx: self.fx,
                dx: self.gx,
                sty: self.sty,
                fy: self.fy,
                dy: self.gy,
                stp,
                brackt: self.brackt,
            };
            dcstep(&mut s, f, g, self.stmin, self.stmax);
            self.stx = s.stx;
            self.fx = s.fx;
            self.gx = s.dx;
            self.sty = s.sty;
            self.fy = s.fy;
            self.gy = s.dy;
            self.brackt = s.brackt;
            stp = s.stp;
        }

        // Bisect when the interval does not shrink fast enough.
        if self.brackt {
            if (self.sty - self.stx).abs() >= 0.66 * self.width1 {
                stp = self.stx + 0.5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
        }
        if self.brackt {
            self.stmin = self.stx.min(self.sty);
            self.stmax = self.stx.max(self.sty);
        } else {
            self.stmin = stp + XTRAPL * (stp - self.stx);
            self.stmax = stp + XTRAPU * (stp - self.stx);
        }
        stp = stp.max(self.stpmin).min(self.stpmax);
        if self.brackt
            && (stp <= self.stmin
                || stp >= self.stmax
                || self.stmax - self.stmin <= self.xtol * self.stmax)
        {
            stp = self.stx;
        }
        if !stp.is_finite() {
            return LineSearchStep::Warning("the interpolated step is not finite");
        }
        LineSearchStep::Evaluate(stp)
    }
}

/// The arguments of MINPACK-2's `dcstep` that it updates.
#[derive(Debug, Clone, Copy)]
struct StepState {
    /// Best step so far, with its value and derivative.
    stx: f64,
    fx: f64,
    dx: f64,
    /// Other end of the interval.
    sty: f64,
    fy: f64,
    dy: f64,
    /// Current step on entry, next trial step on exit.
    stp: f64,
    brackt: bool,
}

/// MINPACK-2 `dcstep`: a safeguarded step from the current step `s.stp`
/// with value `fp` and derivative `dp`, and the updated interval.
fn dcstep(s: &mut StepState, fp: f64, dp: f64, stpmin: f64, stpmax: f64) {
    let StepState {
        stx,
        fx,
        dx,
        sty,
        fy,
        dy,
        stp,
        ..
    } = *s;
    // sign(dp)·sign(dx), zero when either is zero (f64::signum(0.0) is 1).
    let sgnd = if dp == 0.0 || dx == 0.0 {
        0.0
    } else {
        dp.signum() * dx.signum()
    };
    let stpf;
    if fp > fx {
        // Case 1: a higher value; the minimum is bracketed. Take the cubic
        // step if closer to stx than the quadratic one, else their mean.
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let sc = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = sc * ((theta / sc).powi(2) - (dx / sc) * (dp / sc)).sqrt();
        if stp < stx {
            gamma = -gamma;
        }
        let p = (gamma - dx) + theta;
        let q = ((gamma - dx) + gamma) + dp;
        let r = p / q;
        let stpc = stx + r * (stp - stx);
        let stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx);
        stpf = if (stpc - stx).abs() <= (stpq - stx).abs() {
            stpc
        } else {
            stpc + (stpq - stpc) / 2.0
        };
        s.brackt = true;
    } else if sgnd < 0.0 {
        // Case 2: a lower value and derivatives of opposite signs; the
        // minimum is bracketed. Take the step farther from stp.
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let sc = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = sc * ((theta / sc).powi(2) - (dx / sc) * (dp / sc)).sqrt();
        if stp > stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + dx;
        let r = p / q;
        let stpc = stp + r * (stx - stp);
        let stpq = stp + (dp / (dp - dx)) * (stx - stp);
        stpf = if (stpc - stp).abs() > (stpq - stp).abs() {
            stpc
        } else {
            stpq
        };
        s.brackt = true;
    } else if dp.abs() < dx.abs() {
        // Case 3: a lower value, same-sign derivatives, and the derivative
        // shrinks in magnitude.
        let theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp;
        let sc = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = sc
            * ((theta / sc).powi(2) - (dx / sc) * (dp / sc))
                .max(0.0)
                .sqrt();
        if stp > stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = (gamma + (dx - dp)) + gamma;
        let r = p / q;
        let stpc = if r < 0.0 && gamma != 0.0 {
            stp + r * (stx - stp)
        } else if stp > stx {
            stpmax
        } else {
            stpmin
        };
        let stpq = stp + (dp / (dp - dx)) * (stx - stp);
        if s.brackt {
            let mut f = if (stpc - stp).abs() < (stpq - stp).abs() {
                stpc
            } else {
                stpq
            };
            if stp > stx {
                f = f.min(stp + 0.66 * (sty - stp));
            } else {
                f = f.max(stp + 0.66 * (sty - stp));
            }
            stpf = f;
        } else {
            let f = if (stpc - stp).abs() > (stpq - stp).abs() {
                stpc
            } else {
                stpq
            };
            stpf = f.max(stpmin).min(stpmax);
        }
    } else {
        // Case 4: a lower value, same-sign derivatives, and the derivative
        // does not shrink: the cubic step if bracketed, else a bound.
        stpf = if s.brackt {
            let theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp;
            let sc = theta.abs().max(dy.abs()).max(dp.abs());
            let mut gamma = sc * ((theta / sc).powi(2) - (dy / sc) * (dp / sc)).sqrt();
            if stp > sty {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + dy;
            let r = p / q;
            stp + r * (sty - stp)
        } else if stp > stx {
            stpmax
        } else {
            stpmin
        };
    }

    // Update the interval that contains a minimiser.
    if fp > fx {
        s.sty = stp;
        s.fy = fp;
        s.dy = dp;
    } else {
        if sgnd < 0.0 {
            s.sty = stx;
            s.fy = fx;
            s.dy = dx;
        }
        s.stx = stp;
        s.fx = fp;
        s.dx = dp;
    }
    s.stp = stpf;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search on φ and returns (step, evaluations, outcome).
    fn search(phi: impl Fn(f64) -> (f64, f64), stp0: f64) -> (f64, usize, LineSearchStep) {
        let (f0, g0) = phi(0.0);
        let mut ls = Dcsrch::new(f0, g0, stp0, 1e-3, 0.9, 0.1, 0.0, 1e10).unwrap();
        let mut stp = stp0;
        for evals in 1..=50 {
            let (f, g) = phi(stp);
            match ls.step(stp, f, g) {
                LineSearchStep::Evaluate(next) => stp = next,
                done => return (stp, evals, done),
            }
        }
        panic!("no convergence in 50 evaluations");
    }

    #[test]
    fn accepts_a_good_first_step() {
        // φ(α) = (α - 1)²: the step 1 is the minimiser.
        let (stp, evals, out) = search(|a| ((a - 1.0).powi(2), 2.0 * (a - 1.0)), 1.0);
        assert_eq!((stp, evals, out), (1.0, 1, LineSearchStep::Converged));
    }

    #[test]
    fn extrapolates_from_a_short_step_and_interpolates_from_a_long_one() {
        let phi = |a: f64| ((a - 10.0).powi(2), 2.0 * (a - 10.0));
        for stp0 in [0.01, 100.0] {
            let (stp, _, out) = search(phi, stp0);
            assert_eq!(out, LineSearchStep::Converged);
            // Strong Wolfe with gtol 0.9: |φ'(α)| <= 0.9·20.
            assert!((2.0 * (stp - 10.0)).abs() <= 18.0, "{stp0} -> {stp}");
            assert!(phi(stp).0 <= phi(0.0).0 + 1e-3 * stp * -20.0);
        }
    }

    #[test]
    fn satisfies_strong_wolfe_on_a_nonconvex_function() {
        // φ(α) = -α / (α² + 2) (Moré & Thuente's first test function, β = 2).
        let phi = |a: f64| {
            let den = a * a + 2.0;
            (-a / den, (a * a - 2.0) / (den * den))
        };
        let g0 = phi(0.0).1;
        for stp0 in [1e-3, 1e-1, 1e1, 1e3] {
            let (stp, evals, out) = search(phi, stp0);
            assert_eq!(out, LineSearchStep::Converged, "from {stp0}");
            assert!(phi(stp).1.abs() <= 0.9 * g0.abs(), "from {stp0}: {stp}");
            assert!(evals <= 20);
        }
    }

    #[test]
    fn refuses_an_ascent_direction() {
        assert!(Dcsrch::new(0.0, 1.0, 1.0, 1e-3, 0.9, 0.1, 0.0, 1e10).is_err());
    }
}
