//! `metrics`: classification scores computed as scikit-learn computes them.
//!
//! Binary metrics use labels `0` (negative) and `1` (positive); any other
//! label is an error, not a silent miscount. Each function mirrors one
//! sklearn function:
//!
//! | here | sklearn |
//! | --- | --- |
//! | [`accuracy`] | `accuracy_score` (any labels) |
//! | [`ConfusionCounts::from_labels`] | `confusion_matrix(y, ŷ).ravel()` → tn, fp, fn, tp |
//! | [`ConfusionCounts::rates`] | `confusion_matrix(y, ŷ, normalize="true")` |
//! | [`ConfusionCounts::precision`], `recall`, `f1` | `precision_score`, `recall_score`, `f1_score` |
//! | [`roc_curve`] | `roc_curve(y, score)` (`drop_intermediate=True`) |
//! | [`roc_auc`] | `roc_auc_score(y, score)` |
//! | [`log_loss`] | `log_loss(y, p)` |
//!
//! # Degenerate cases
//!
//! - Empty inputs or inputs of different lengths: an error.
//! - Only one class in `y_true`: [`roc_curve`] and [`roc_auc`] return
//!   [`MetricsError::SingleClass`] (sklearn raises too); in
//!   [`BinaryReport`] they are `None`. [`log_loss`] is still defined, since
//!   the two classes are known to be 0 and 1.
//! - A row of the confusion matrix without samples (no true positives and
//!   no false negatives, say) normalises to zeros, as sklearn's
//!   `normalize="true"` does (it replaces the 0/0 by 0).
//! - Precision with no predicted positive, recall with no actual positive,
//!   and F1 when both are zero are `0.0`: sklearn's default
//!   `zero_division="warn"` gives 0.0 (with a warning).
//!
//! No function returns NaN, and none panics on bad input: a NaN or infinite
//! score is an error.
//!
//! # ROC details
//!
//! Scores are sorted in decreasing order and every distinct score is a
//! threshold (tied samples enter together, which draws a diagonal segment:
//! ties count as half right, the usual trapezoid rule). Points in the
//! middle of a straight horizontal or vertical run are dropped, as
//! `drop_intermediate=True` does, and a first point `(0, 0)` is added with
//! the threshold `+∞` (JSON has no infinity: serde writes it as `null`).
//! The AUC is the trapezoidal area under these points.

use serde::Serialize;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    #[error("no samples to score")]
    Empty,
    #[error("{what} have different lengths ({left} and {right})")]
    LengthMismatch {
        what: &'static str,
        left: usize,
        right: usize,
    },
    #[error("binary metrics need labels 0 and 1, but sample {index} is labelled {label}")]
    NotBinary { index: usize, label: i64 },
    #[error(
        "only one class ({class}) is present in the true labels: the ROC curve and its AUC are not defined"
    )]
    SingleClass { class: i64 },
    #[error("score {index} is {value}, not a finite number")]
    NonFiniteScore { index: usize, value: f64 },
    #[error("probability {index} is {value}, not a number from 0 to 1")]
    NotAProbability { index: usize, value: f64 },
}

fn same_length(what: &'static str, left: usize, right: usize) -> Result<(), MetricsError> {
    if left != right {
        return Err(MetricsError::LengthMismatch { what, left, right });
    }
    if left == 0 {
        return Err(MetricsError::Empty);
    }
    Ok(())
}

fn check_binary(y: &[i64]) -> Result<(), MetricsError> {
    match y.iter().position(|&l| l != 0 && l != 1) {
        Some(index) => Err(MetricsError::NotBinary {
            index,
            label: y[index],
        }),
        None => Ok(()),
    }
}

/// The share of predictions equal to the truth (any labels).
pub fn accuracy(y_true: &[i64], y_pred: &[i64]) -> Result<f64, MetricsError> {
    same_length("true and predicted labels", y_true.len(), y_pred.len())?;
    let right = y_true.iter().zip(y_pred).filter(|(a, b)| a == b).count();
    Ok(right as f64 / y_true.len() as f64)
}

/// The binary confusion matrix, positive class 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConfusionCounts {
    pub true_negative: u64,
    pub false_positive: u64,
    pub false_negative: u64,
    pub true_positive: u64,
}

/// The confusion matrix normalised over the true labels: each actual class
/// sums to 1 (`true_negative + false_positive = 1`, `false_negative +
/// true_positive = 1`), or to 0 when the class has no sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ConfusionRates {
    pub true_negative: f64,
    pub false_positive: f64,
    pub false_negative: f64,
    pub true_positive: f64,
}

impl ConfusionCounts {
    pub fn from_labels(y_true: &[i64], y_pred: &[i64]) -> Result<ConfusionCounts, MetricsError> {
        same_length("true and predicted labels", y_true.len(), y_pred.len())?;
        check_binary(y_true)?;
        check_binary(y_pred)?;
        let mut c = ConfusionCounts {
            true_negative: 0,
            false_positive: 0,
            false_negative: 0,
            true_positive: 0,
        };
        for (&t, &p) in y_true.iter().zip(y_pred) {
            match (t, p) {
                (0, 0) => c.true_negative += 1,
                (0, _) => c.false_positive += 1,
                (_, 0) => c.false_negative += 1,
                _ => c.true_positive += 1,
            }
        }
        Ok(c)
    }

    pub fn rates(&self) -> ConfusionRates {
        let negatives = self.true_negative + self.false_positive;
        let positives = self.false_negative + self.true_positive;
        ConfusionRates {
            true_negative: ratio(self.true_negative, negatives),
            false_positive: ratio(self.false_positive, negatives),
            false_negative: ratio(self.false_negative, positives),
            true_positive: ratio(self.true_positive, positives),
        }
    }

    /// `tp / (tp + fp)`, 0 when nothing is predicted positive.
    pub fn precision(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_positive)
    }

    /// `tp / (tp + fn)`, 0 when no sample is positive.
    pub fn recall(&self) -> f64 {
        ratio(self.true_positive, self.true_positive + self.false_negative)
    }

    /// `2·tp / (2·tp + fp + fn)` (the harmonic mean of precision and
    /// recall), 0 when there is no true positive.
    pub fn f1(&self) -> f64 {
        ratio(
            2 * self.true_positive,
            2 * self.true_positive + self.false_positive + self.false_negative,
        )
    }
}

/// `a / b`, and 0 for 0/0.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Points of the ROC curve, from `(0, 0)` at threshold `+∞` to `(1, 1)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    /// A sample is predicted positive when its score is `>=` the threshold.
    pub thresholds: Vec<f64>,
}

/// The ROC curve of `score` (higher means more likely positive).
pub fn roc_curve(y_true: &[i64], score: &[f64]) -> Result<RocCurve, MetricsError> {
    same_length("true labels and scores", y_true.len(), score.len())?;
    check_binary(y_true)?;
    if let Some(index) = score.iter().position(|s| !s.is_finite()) {
        return Err(MetricsError::NonFiniteScore {
            index,
            value: score[index],
        });
    }
    let positives = y_true.iter().filter(|&&l| l == 1).count();
    if positives == 0 || positives == y_true.len() {
        return Err(MetricsError::SingleClass { class: y_true[0] });
    }

    // Cumulative false/true positives at each distinct score, decreasing.
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut fps, mut tps, mut thresholds) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fp, mut tp) = (0u64, 0u64);
    for (rank, &i) in order.iter().enumerate() {
        if y_true[i] == 1 {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order
            .get(rank + 1)
            .is_none_or(|&next| score[next] != score[i]);
        if last_of_tie {
            fps.push(fp as f64);
            tps.push(tp as f64);
            thresholds.push(score[i]);
        }
    }

    // drop_intermediate: keep the ends and every corner.
    let keep: Vec<usize> = if fps.len() > 2 {
        (0..fps.len())
            .filter(|&i| {
                i == 0
                    || i == fps.len() - 1
                    || fps[i + 1] - 2.0 * fps[i] + fps[i - 1] != 0.0
                    || tps[i + 1] - 2.0 * tps[i] + tps[i - 1] != 0.0
            })
            .collect()
    } else {
        (0..fps.len()).collect()
    };
    let (n_neg, n_pos) = ((y_true.len() - positives) as f64, positives as f64);
    let mut curve = RocCurve {
        fpr: vec![0.0],
        tpr: vec![0.0],
        thresholds: vec![f64::INFINITY],
    };
    for i in keep {
        curve.fpr.push(fps[i] / n_neg);
        curve.tpr.push(tps[i] / n_pos);
        curve.thresholds.push(thresholds[i]);
    }
    Ok(curve)
}

impl RocCurve {
    /// The area under the curve, by trapezoids (sklearn's `auc`).
    pub fn auc(&self) -> f64 {
        self.fpr
            .windows(2)
            .zip(self.tpr.windows(2))
            .map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) / 2.0)
            .sum()
    }
}

/// The area under the ROC curve (trapezoids; ties count half).
pub fn roc_auc(y_true: &[i64], score: &[f64]) -> Result<f64, MetricsError> {
    Ok(roc_curve(y_true, score)?.auc())
}

/// The mean negative log-likelihood of the labels under the predicted
/// probability `p` of class 1, with probabilities clipped to
/// `[ε, 1 − ε]`, `ε = f64::EPSILON`, as sklearn does for float64 input.
pub fn log_loss(y_true: &[i64], p: &[f64]) -> Result<f64, MetricsError> {
    same_length("true labels and probabilities", y_true.len(), p.len())?;
    check_binary(y_true)?;
    if let Some(index) = p.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(MetricsError::NotAProbability {
            index,
            value: p[index],
        });
    }
    let eps = f64::EPSILON;
    let clip = |v: f64| v.clamp(eps, 1.0 - eps);
    let total: f64 = y_true
        .iter()
        .zip(p)
        .map(|(&y, &pi)| {
            if y == 1 {
                -clip(pi).ln()
            } else {
                -clip(1.0 - pi).ln()
            }
        })
        .sum();
    Ok(total / y_true.len() as f64)
}

/// Every binary score at once: what the `score` stage reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BinaryReport {
    pub accuracy: f64,
    pub confusion: ConfusionRates,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// `None` when `y_true` has one class only.
    pub roc_auc: Option<f64>,
    pub log_loss: f64,
    pub counts: ConfusionCounts,
    /// `None` when `y_true` has one class only.
    pub roc: Option<RocCurve>,
}

impl BinaryReport {
    /// Scores predicted labels `y_pred` and positive-class probabilities
    /// `p` against `y_true`.
    pub fn compute(
        y_true: &[i64],
        y_pred: &[i64],
        p: &[f64],
    ) -> Result<BinaryReport, MetricsError> {
        let counts = ConfusionCounts::from_labels(y_true, y_pred)?;
        let log_loss = log_loss(y_true, p)?;
        let roc = match roc_curve(y_true, p) {
            Ok(c) => Some(c),
            Err(MetricsError::SingleClass { .. }) => None,
            Err(e) => return Err(e),
        };
        Ok(BinaryReport {
            accuracy: accuracy(y_true, y_pred)?,
            confusion: counts.rates(),
            precision: counts.precision(),
            recall: counts.recall(),
            f1: counts.f1(),
            roc_auc: roc.as_ref().map(RocCurve::auc),
            log_loss,
            counts,
            roc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn accuracy_and_confusion() {
        let y = [0, 0, 0, 1, 1, 1, 1, 0];
        let p = [0, 1, 0, 1, 1, 0, 1, 0];
        assert!(close(accuracy(&y, &p).unwrap(), 6.0 / 8.0));
        let c = ConfusionCounts::from_labels(&y, &p).unwrap();
        assert_eq!(
            c,
            ConfusionCounts {
                true_negative: 3,
                false_positive: 1,
                false_negative: 1,
                true_positive: 3
            }
        );
        let r = c.rates();
        assert!(close(r.true_negative, 0.75) && close(r.false_positive, 0.25));
        assert!(close(r.false_negative, 0.25) && close(r.true_positive, 0.75));
        assert!(close(c.precision(), 0.75) && close(c.recall(), 0.75) && close(c.f1(), 0.75));
        // Unbalanced: precision 2/3, recall 2/4, F1 = 2·(2/3)(1/2)/(2/3 + 1/2) = 4/7.
        let c = ConfusionCounts::from_labels(&[1, 1, 1, 1, 0, 0], &[1, 1, 0, 0, 1, 0]).unwrap();
        assert!(close(c.precision(), 2.0 / 3.0));
        assert!(close(c.recall(), 0.5));
        assert!(close(c.f1(), 4.0 / 7.0));
    }

    #[test]
    fn zero_divisions_give_zero_like_sklearn() {
        // Nothing predicted positive, and no positive sample at all.
        let c = ConfusionCounts::from_labels(&[0, 0], &[0, 0]).unwrap();
        assert_eq!((c.precision(), c.recall(), c.f1()), (0.0, 0.0, 0.0));
        let r = c.rates();
        assert_eq!(
            (r.true_negative, r.false_negative, r.true_positive),
            (1.0, 0.0, 0.0)
        );
    }

    #[test]
    fn roc_auc_by_hand() {
        // Perfect ranking, reversed ranking, and one swapped pair of four.
        assert_eq!(roc_auc(&[0, 0, 1, 1], &[0.1, 0.2, 0.8, 0.9]).unwrap(), 1.0);
        assert_eq!(roc_auc(&[1, 1, 0, 0], &[0.1, 0.2, 0.8, 0.9]).unwrap(), 0.0);
        // Pairs (neg, pos): 0.1<0.35 ok, 0.1<0.8 ok, 0.4>0.35 bad, 0.4<0.8 ok.
        assert!(close(
            roc_auc(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]).unwrap(),
            0.75
        ));
    }

    #[test]
    fn roc_auc_counts_ties_as_half() {
        // All scores tied: AUC 0.5.
        assert!(close(roc_auc(&[0, 1, 0, 1], &[0.5; 4]).unwrap(), 0.5));
        // Pairs: (n=0.2 vs p=0.6) 1, (0.2 vs 0.4) 1, (0.6 vs 0.6) ½,
        // (0.6 vs 0.4) 0 → 2.5 / 4.
        let auc = roc_auc(&[0, 1, 0, 1], &[0.2, 0.6, 0.6, 0.4]).unwrap();
        assert!(close(auc, 0.625), "{auc}");
    }

    #[test]
    fn roc_curve_points_and_dropped_intermediates() {
        let c = roc_curve(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert_eq!(c.fpr, [0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(c.tpr, [0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(c.thresholds, [f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
        // Three positives in a row: the middle point of the vertical run
        // (threshold 0.8) is dropped.
        let c = roc_curve(&[1, 1, 1, 0], &[0.9, 0.8, 0.7, 0.1]).unwrap();
        assert_eq!(c.thresholds, [f64::INFINITY, 0.9, 0.7, 0.1]);
        assert_eq!(c.tpr, [0.0, 1.0 / 3.0, 1.0, 1.0]);
        assert_eq!(c.fpr, [0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn log_loss_by_hand_with_clipping() {
        let l = log_loss(&[1, 0, 1], &[0.9, 0.2, 0.5]).unwrap();
        let want = -(0.9f64.ln() + 0.8f64.ln() + 0.5f64.ln()) / 3.0;
        assert!(close(l, want));
        // A confident mistake is clipped at ε, not infinite.
        let l = log_loss(&[1, 0], &[0.0, 1.0]).unwrap();
        assert!(close(l, -f64::EPSILON.ln()));
        assert!(log_loss(&[1], &[1.5]).is_err());
        assert!(log_loss(&[1], &[f64::NAN]).is_err());
    }

    #[test]
    fn degenerate_inputs_are_errors_not_nan() {
        assert_eq!(
            roc_auc(&[1, 1], &[0.2, 0.3]).unwrap_err(),
            MetricsError::SingleClass { class: 1 }
        );
        assert_eq!(accuracy(&[], &[]).unwrap_err(), MetricsError::Empty);
        assert!(matches!(
            accuracy(&[1], &[1, 0]).unwrap_err(),
            MetricsError::LengthMismatch {
                left: 1,
                right: 2,
                ..
            }
        ));
        assert_eq!(
            ConfusionCounts::from_labels(&[0, 2], &[0, 1])
                .unwrap_err()
                .to_string(),
            "binary metrics need labels 0 and 1, but sample 1 is labelled 2"
        );
        assert!(matches!(
            roc_auc(&[0, 1], &[0.1, f64::INFINITY]),
            Err(MetricsError::NonFiniteScore { index: 1, .. })
        ));
        // The report keeps what is defined and says None for the rest.
        let r = BinaryReport::compute(&[0, 0], &[0, 1], &[0.2, 0.7]).unwrap();
        assert_eq!((r.roc_auc, r.roc.is_none()), (None, true));
        assert!(close(r.accuracy, 0.5));
        assert!(r.log_loss.is_finite());
    }

    #[test]
    fn report_serialises_infinity_as_null() {
        let r = BinaryReport::compute(&[0, 1], &[0, 1], &[0.3, 0.6]).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["roc_auc"], 1.0);
        assert_eq!(json["roc"]["thresholds"][0], serde_json::Value::Null);
        assert_eq!(json["confusion"]["true_positive"], 1.0);
    }
}
