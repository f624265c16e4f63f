//! `estimator`: the classifier behind linfa's traits.
//!
//! linfa is the Rust ML toolkit's common interface: an estimator's params
//! implement `Fit` over a `DatasetBase` of records and targets, and a fitted
//! model implements `PredictInplace` (and through linfa's blanket impls,
//! `Predict`). linfa-logistic itself needs dense ndarray records, which a
//! bag-of-words matrix must never become, so the solver is ours
//! ([`crate::logistic`]); this module puts it behind the same traits:
//!
//! - [`Csr`] is a linfa `Records` type (samples = rows, features = columns);
//! - [`LogisticParams`] implements `Fit<Csr, Array1<i64>, LogisticError>`,
//!   yielding the model and the solver's [`FitInfo`];
//! - [`LogisticModel`] implements `PredictInplace<Csr, Array1<i64>>`.
//!
//! `predict_inplace` cannot return an error, so, like linfa's own models,
//! it requires a matrix with the model's number of columns; the stages check
//! that (and [`LogisticModel::predict`] returns it as an error) before they
//! get here.

use linfa::dataset::{DatasetBase, Records};
use linfa::traits::{Fit, PredictInplace};
use ndarray::Array1;

use crate::logistic::{self, FitInfo, LogisticError, LogisticModel, LogisticParams};
use crate::sparse::Csr;

impl Records for Csr {
    type Elem = f64;

    fn nsamples(&self) -> usize {
        self.nrows()
    }

    fn nfeatures(&self) -> usize {
        self.ncols()
    }
}

impl Fit<Csr, Array1<i64>, LogisticError> for LogisticParams {
    type Object = (LogisticModel, FitInfo);

    fn fit(&self, dataset: &DatasetBase<Csr, Array1<i64>>) -> Result<Self::Object, LogisticError> {
        let labels = dataset.targets.to_vec();
        logistic::fit(&dataset.records, &labels, self)
    }
}

impl PredictInplace<Csr, Array1<i64>> for LogisticModel {
    fn predict_inplace(&self, x: &Csr, y: &mut Array1<i64>) {
        let predicted = self
            .predict(x)
            .expect("PredictInplace needs a matrix with the model's number of columns");
        y.assign(&Array1::from(predicted));
    }

    fn default_target(&self, x: &Csr) -> Array1<i64> {
        Array1::zeros(x.nrows())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectorize::{TfidfVectorizer, VectorizeParams};
    use linfa::traits::Predict;

    #[test]
    fn fits_and_predicts_through_linfa_traits_like_the_plain_functions() {
        let texts = [
            "great fun",
            "a great film",
            "wonderful",
            "dull mess",
            "a dull film",
            "boring",
        ];
        let labels = vec![1, 1, 1, 0, 0, 0];
        let (_, x) = TfidfVectorizer::fit_transform(&texts, &VectorizeParams::default()).unwrap();
        let params = LogisticParams::default();
        let dataset = DatasetBase::new(x.clone(), Array1::from(labels.clone()));
        assert_eq!(dataset.records.nsamples(), 6);
        let (model, info) = params.fit(&dataset).unwrap();
        let (plain, plain_info) = logistic::fit(&x, &labels, &params).unwrap();
        assert_eq!(info.n_iter, plain_info.n_iter);
        let via_trait: Array1<i64> = Predict::predict(&model, &dataset);
        assert_eq!(via_trait.to_vec(), plain.predict(&x).unwrap());
        assert_eq!(via_trait.to_vec(), labels);
    }

    #[test]
    fn a_single_class_is_an_error_through_the_trait_too() {
        let (_, x) =
            TfidfVectorizer::fit_transform(&["aa bb", "cc dd"], &VectorizeParams::default())
                .unwrap();
        let dataset = DatasetBase::new(x, Array1::from(vec![1, 1]));
        assert!(matches!(
            LogisticParams::default().fit(&dataset),
            Err(LogisticError::OneClass { class: 1 })
        ));
    }
}
