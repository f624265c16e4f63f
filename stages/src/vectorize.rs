//! `vectorize`: bag of words and TF-IDF, equal to scikit-learn's
//! `TfidfVectorizer` (= `CountVectorizer` followed by `TfidfTransformer`).
//!
//! # Fit (on the training texts only)
//!
//! 1. Every text is analysed into terms by [`Analyzer`] (lowercase,
//!    token pattern `(?u)\b\w\w+\b`, n-grams of `ngram_range`).
//! 2. For every term: its document frequency `df` (texts containing it)
//!    and its total count over the corpus.
//! 3. Pruning, as sklearn's `_limit_features`: with `n` texts, `min_df` and
//!    `max_df` become document counts (an integer is a count, a float a
//!    proportion of `n`, so `max_df = 1.0` keeps everything and `min_df =
//!    1` too); a term is kept when `min_count <= df <= max_count`. Then, if
//!    `max_features` is set and more terms remain, only the
//!    `max_features` terms with the largest total count are kept. **Ties**
//!    in total count are broken by term order (the alphabetically smaller
//!    term wins); sklearn ranks with a non-stable `argsort`, so when a tie
//!    straddles the cut its choice among the tied terms is unspecified and
//!    may differ.
//! 4. The kept terms, sorted (by Unicode code point, as Python sorts
//!    `str`), are the columns: the [`Vocabulary`].
//! 5. `idf[j] = ln((1 + n) / (1 + df[j])) + 1` (`smooth_idf=True`).
//!
//! # Transform (any texts, with the fitted vocabulary)
//!
//! Terms not in the vocabulary are ignored, so unseen words are fine and a
//! text without a known term becomes an all-zero row. For each row:
//! `tf` = the term's count in the text (or `1 + ln(count)` with
//! `sublinear_tf`), value = `tf · idf`, then the row is divided by its
//! Euclidean norm (`norm='l2'`; zero rows stay zero). Columns within a row
//! are sorted, as sklearn's matrices are.
//!
//! Always on, as in sklearn's defaults: lowercasing, the default token
//! pattern, `smooth_idf`, `norm='l2'`, `use_idf`. Bump [`VERSION`] whenever
//! the output would change for the same input and params.

use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::sparse::{Csr, CsrBuilder};
use crate::text::{Analyzer, NgramRange};

/// The algorithm version; it enters the stage fingerprint.
pub const VERSION: u32 = 1;

/// `min_df` / `max_df`: an absolute number of documents or a proportion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DocFreq {
    /// A number of documents (a JSON integer, as a Python `int`).
    Count(u64),
    /// A proportion of the documents in [0, 1] (a JSON float, as a
    /// Python `float`).
    Proportion(f64),
}

impl DocFreq {
    /// The bound in documents for a corpus of `n_docs`, as sklearn
    /// computes it (a proportion is not rounded).
    pub fn to_count(self, n_docs: usize) -> f64 {
        match self {
            DocFreq::Count(c) => c as f64,
            DocFreq::Proportion(p) => p * n_docs as f64,
        }
    }

    fn from_json(name: &str, value: &Value) -> Result<DocFreq, String> {
        if let Some(c) = value.as_u64() {
            return Ok(DocFreq::Count(c));
        }
        match value.as_f64() {
            Some(p) if value.is_f64() && (0.0..=1.0).contains(&p) => Ok(DocFreq::Proportion(p)),
            _ => Err(format!(
                "vectorize param `{name}` must be a whole number of documents (like 2) \
                 or a proportion from 0.0 to 1.0 (like 0.95), not {value}"
            )),
        }
    }

    fn to_json(self) -> Value {
        match self {
            DocFreq::Count(c) => Value::from(c),
            DocFreq::Proportion(p) => Value::from(p),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct VectorizeParams {
    pub ngram_range: NgramRange,
    /// Drop terms in fewer documents than this (default: 1 document).
    pub min_df: DocFreq,
    /// Drop terms in more documents than this (default: 100 %).
    pub max_df: DocFreq,
    /// Keep at most this many terms, the most frequent (default: all).
    pub max_features: Option<usize>,
    /// Use `1 + ln(count)` instead of the count (default: false).
    pub sublinear_tf: bool,
}

impl Default for VectorizeParams {
    /// sklearn's defaults.
    fn default() -> Self {
        VectorizeParams {
            ngram_range: NgramRange::default(),
            min_df: DocFreq::Count(1),
            max_df: DocFreq::Proportion(1.0),
            max_features: None,
            sublinear_tf: false,
        }
    }
}

const KEYS: &str = "ngram_range, min_df, max_df, max_features and sublinear_tf";

impl VectorizeParams {
    /// Reads the params from a mapping; missing keys keep sklearn's
    /// defaults, unknown keys are refused. `ngram_range` is a two-element
    /// array `[min_n, max_n]`; `max_features` a positive integer or null.
    pub fn from_json(params: &Map<String, Value>) -> Result<VectorizeParams, String> {
        let mut p = VectorizeParams::default();
        for (key, value) in params {
            match key.as_str() {
                "ngram_range" => {
                    let bad = || {
                        format!(
                            "vectorize param `ngram_range` must be [min_n, max_n], like [1, 2], not {value}"
                        )
                    };
                    let pair = value.as_array().filter(|a| a.len() == 2).ok_or_else(bad)?;
                    let (Some(lo), Some(hi)) = (pair[0].as_u64(), pair[1].as_u64()) else {
                        return Err(bad());
                    };
                    p.ngram_range = NgramRange::new(lo as usize, hi as usize)
                        .map_err(|e| format!("vectorize param {e}"))?;
                }
                "min_df" => p.min_df = DocFreq::from_json("min_df", value)?,
                "max_df" => p.max_df = DocFreq::from_json("max_df", value)?,
                "max_features" => p.max_features = match value {
                    Value::Null => None,
                    v => Some(v.as_u64().filter(|&n| n >= 1).ok_or(
                        "vectorize param `max_features` must be a positive whole number or null",
                    )? as usize),
                },
                "sublinear_tf" => {
                    p.sublinear_tf = value
                        .as_bool()
                        .ok_or("vectorize param `sublinear_tf` must be true or false")?
                }
                other => {
                    return Err(format!(
                        "vectorize has no param `{other}` (it takes {KEYS})"
                    ))
                }
            }
        }
        Ok(p)
    }

    /// The params as a mapping that [`VectorizeParams::from_json`] reads
    /// back to the same value (all keys written).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "ngram_range".into(),
            Value::from(vec![self.ngram_range.min_n(), self.ngram_range.max_n()]),
        );
        m.insert("min_df".into(), self.min_df.to_json());
        m.insert("max_df".into(), self.max_df.to_json());
        m.insert(
            "max_features".into(),
            self.max_features.map_or(Value::Null, Value::from),
        );
        m.insert("sublinear_tf".into(), Value::from(self.sublinear_tf));
        m
    }
}

/// Why a vectorizer could not be fitted.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum VectorizeError {
    #[error(
        "empty vocabulary: the {n_docs} training texts contain no word of two or more characters"
    )]
    EmptyVocabulary { n_docs: usize },
    #[error(
        "max_df ({max_df} documents) is below min_df ({min_df} documents) for {n_docs} training texts"
    )]
    MaxDfBelowMinDf {
        max_df: f64,
        min_df: f64,
        n_docs: usize,
    },
    #[error(
        "no term is left after pruning ({min_df} <= document frequency <= {max_df} of {n_docs} texts)\n\
         Hint: lower min_df or raise max_df"
    )]
    NothingLeft {
        min_df: f64,
        max_df: f64,
        n_docs: usize,
    },
    #[error("the vocabulary has {0} terms, more than a u32 column index can address")]
    TooManyTerms(usize),
}

/// The fitted terms: term → column, columns in sorted term order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vocabulary {
    terms: Vec<String>,
    index: HashMap<String, u32>,
}

impl Vocabulary {
    /// A vocabulary from terms already in column order; they must be
    /// sorted and unique, as a fitted vocabulary is.
    pub fn from_sorted_terms(terms: Vec<String>) -> Result<Vocabulary, String> {
        if let Some(w) = terms.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "vocabulary terms must be sorted and unique, but {:?} comes before {:?}",
                w[0], w[1]
            ));
        }
        if terms.len() > u32::MAX as usize {
            return Err(format!(
                "a vocabulary of {} terms is too large",
                terms.len()
            ));
        }
        let index = terms
            .iter()
            .enumerate()
            .map(|(j, t)| (t.clone(), j as u32))
            .collect();
        Ok(Vocabulary { terms, index })
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The column of `term`, if it is in the vocabulary.
    pub fn column(&self, term: &str) -> Option<u32> {
        self.index.get(term).copied()
    }

    /// The terms in column order (sklearn's `get_feature_names_out()`).
    pub fn terms(&self) -> &[String] {
        &self.terms
    }
}

/// A fitted TF-IDF vectorizer: params, vocabulary and idf.
#[derive(Debug, Clone, PartialEq)]
pub struct TfidfVectorizer {
    params: VectorizeParams,
    vocabulary: Vocabulary,
    idf: Vec<f64>,
}

impl TfidfVectorizer {
    /// Fits on `texts` and returns the vectorizer with the TF-IDF matrix
    /// of those same texts (sklearn's `fit_transform`).
    pub fn fit_transform<S: AsRef<str> + Sync>(
        texts: &[S],
        params: &VectorizeParams,
    ) -> Result<(TfidfVectorizer, Csr), VectorizeError> {
        let analyzer = Analyzer::new(params.ngram_range);
        let n_docs = texts.len();

        // Pass 1: provisional ids in order of first appearance, and each
        // text's (id, count) pairs. Blocks of texts are tokenized on all
        // cores with ids of their own, then renumbered in block order, which
        // gives the ids one pass in text order would.
        let blocks: Vec<BlockTerms> = texts
            .par_chunks(TEXTS_PER_TASK)
            .map(|block| BlockTerms::of(&analyzer, block))
            .collect();
        let mut ids: HashMap<String, u32> = HashMap::default();
        let mut provisional: Vec<String> = Vec::new();
        let mut doc_ptr = vec![0usize];
        let mut doc_terms: Vec<(u32, u32)> =
            Vec::with_capacity(blocks.iter().map(|b| b.doc_terms.len()).sum());
        for block in blocks {
            let global: Vec<u32> = block
                .terms
                .into_iter()
                .map(|term| match ids.get(&term) {
                    Some(&id) => id,
                    None => {
                        let id = provisional.len() as u32;
                        ids.insert(term.clone(), id);
                        provisional.push(term);
                        id
                    }
                })
                .collect();
            let base = doc_terms.len();
            doc_terms.extend(
                block
                    .doc_terms
                    .iter()
                    .map(|&(local, count)| (global[local as usize], count)),
            );
            doc_ptr.extend(block.doc_ptr[1..].iter().map(|p| p + base));
        }
        drop(ids);
        if provisional.is_empty() {
            return Err(VectorizeError::EmptyVocabulary { n_docs });
        }
        if provisional.len() > u32::MAX as usize {
            return Err(VectorizeError::TooManyTerms(provisional.len()));
        }

        // Document frequencies and total counts.
        let mut df = vec![0u64; provisional.len()];
        let mut total = vec![0u64; provisional.len()];
        for &(id, count) in &doc_terms {
            df[id as usize] += 1;
            total[id as usize] += count as u64;
        }

        // Pruning.
        let max_count = params.max_df.to_count(n_docs);
        let min_count = params.min_df.to_count(n_docs);
        if max_count < min_count {
            return Err(VectorizeError::MaxDfBelowMinDf {
                max_df: max_count,
                min_df: min_count,
                n_docs,
            });
        }
        let mut kept: Vec<u32> = (0..provisional.len() as u32)
            .filter(|&id| {
                let d = df[id as usize] as f64;
                min_count <= d && d <= max_count
            })
            .collect();
        kept.sort_unstable_by(|&a, &b| provisional[a as usize].cmp(&provisional[b as usize]));
        if let Some(limit) = params.max_features {
            if kept.len() > limit {
                // Stable: among equal totals the earlier (smaller) term wins.
                kept.sort_by(|&a, &b| total[b as usize].cmp(&total[a as usize]));
                kept.truncate(limit);
                kept.sort_unstable_by(|&a, &b| {
                    provisional[a as usize].cmp(&provisional[b as usize])
                });
            }
        }
        if kept.is_empty() {
            return Err(VectorizeError::NothingLeft {
                min_df: min_count,
                max_df: max_count,
                n_docs,
            });
        }

        // Columns, idf, and the vocabulary.
        let mut column_of = vec![u32::MAX; provisional.len()];
        let mut idf = Vec::with_capacity(kept.len());
        for (col, &id) in kept.iter().enumerate() {
            column_of[id as usize] = col as u32;
            idf.push(smooth_idf(n_docs, df[id as usize]));
        }
        let terms = kept
            .iter()
            .map(|&id| std::mem::take(&mut provisional[id as usize]))
            .collect();
        let vocabulary = Vocabulary::from_sorted_terms(terms)
            .expect("kept terms are sorted and unique by construction");

        let vectorizer = TfidfVectorizer {
            params: params.clone(),
            vocabulary,
            idf,
        };
        let mut builder = CsrBuilder::new(vectorizer.idf.len());
        let mut row: Vec<(u32, f64)> = Vec::new();
        for d in 0..n_docs {
            row.clear();
            row.extend(
                doc_terms[doc_ptr[d]..doc_ptr[d + 1]]
                    .iter()
                    .filter(|&&(id, _)| column_of[id as usize] != u32::MAX)
                    .map(|&(id, count)| (column_of[id as usize], count as f64)),
            );
            vectorizer.push_weighted_row(&mut builder, &mut row);
        }
        let x = builder.finish().expect("columns come from the vocabulary");
        Ok((vectorizer, x))
    }

    /// Rebuilds a fitted vectorizer from its parts (as stored in a model
    /// file); `idf` must have one positive finite value per term.
    pub fn from_parts(
        params: VectorizeParams,
        vocabulary: Vocabulary,
        idf: Vec<f64>,
    ) -> Result<TfidfVectorizer, String> {
        if idf.len() != vocabulary.len() {
            return Err(format!(
                "the vocabulary has {} terms but there are {} idf values",
                vocabulary.len(),
                idf.len()
            ));
        }
        if let Some(v) = idf.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(format!("idf values must be positive and finite, found {v}"));
        }
        Ok(TfidfVectorizer {
            params,
            vocabulary,
            idf,
        })
    }

    /// The TF-IDF matrix of `texts` with the fitted vocabulary; unknown
    /// terms are ignored (sklearn's `transform`).
    pub fn transform<S: AsRef<str>>(&self, texts: &[S]) -> Csr {
        let analyzer = Analyzer::new(self.params.ngram_range);
        let mut builder = CsrBuilder::new(self.idf.len());
        let mut cols: Vec<u32> = Vec::new();
        let mut counts: Vec<(u32, u32)> = Vec::new();
        let mut row: Vec<(u32, f64)> = Vec::new();
        for text in texts {
            cols.clear();
            analyzer.for_each_term(text.as_ref(), |term| {
                if let Some(col) = self.vocabulary.column(term) {
                    cols.push(col);
                }
            });
            counts.clear();
            run_lengths(&mut cols, &mut counts);
            row.clear();
            row.extend(counts.iter().map(|&(col, c)| (col, c as f64)));
            self.push_weighted_row(&mut builder, &mut row);
        }
        builder.finish().expect("columns come from the vocabulary")
    }

    /// Turns one row of raw counts into TF-IDF and appends it.
    fn push_weighted_row(&self, builder: &mut CsrBuilder, row: &mut [(u32, f64)]) {
        // sklearn's order of operations: tf (maybe sublinear), times idf,
        // then divide by the row's l2 norm (summed in column order).
        row.sort_unstable_by_key(|&(j, _)| j);
        for (j, v) in row.iter_mut() {
            if self.params.sublinear_tf {
                *v = v.ln() + 1.0;
            }
            *v *= self.idf[*j as usize];
        }
        let norm = row.iter().map(|&(_, v)| v * v).sum::<f64>().sqrt();
        if norm > 0.0 {
            for (_, v) in row.iter_mut() {
                *v /= norm;
            }
        }
        builder.push_row(row);
    }

    pub fn params(&self) -> &VectorizeParams {
        &self.params
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// The idf of each column.
    pub fn idf(&self) -> &[f64] {
        &self.idf
    }
}

/// `ln((1 + n) / (1 + df)) + 1`, sklearn's idf with `smooth_idf=True`.
pub fn smooth_idf(n_docs: usize, df: u64) -> f64 {
    ((n_docs as f64 + 1.0) / (df as f64 + 1.0)).ln() + 1.0
}

/// Sorts `ids` and appends each distinct id with its number of repeats
/// (never merging with what `out` held before).
/// Texts per parallel task of the first pass of `fit_transform`.
const TEXTS_PER_TASK: usize = 8192;

/// The terms of a block of texts, with ids local to the block (in order of
/// first appearance) and each text's (id, count) pairs.
struct BlockTerms {
    terms: Vec<String>,
    doc_ptr: Vec<usize>,
    doc_terms: Vec<(u32, u32)>,
}

impl BlockTerms {
    fn of<S: AsRef<str>>(analyzer: &Analyzer, texts: &[S]) -> BlockTerms {
        let mut ids: HashMap<String, u32> = HashMap::default();
        let mut terms: Vec<String> = Vec::new();
        let mut doc_ptr = vec![0usize];
        let mut doc_terms: Vec<(u32, u32)> = Vec::new();
        let mut scratch: Vec<u32> = Vec::new();
        for text in texts {
            scratch.clear();
            analyzer.for_each_term(text.as_ref(), |term| {
                let id = match ids.get(term) {
                    Some(&id) => id,
                    None => {
                        let id = terms.len() as u32;
                        ids.insert(term.to_string(), id);
                        terms.push(term.to_string());
                        id
                    }
                };
                scratch.push(id);
            });
            run_lengths(&mut scratch, &mut doc_terms);
            doc_ptr.push(doc_terms.len());
        }
        BlockTerms {
            terms,
            doc_ptr,
            doc_terms,
        }
    }
}

fn run_lengths(ids: &mut [u32], out: &mut Vec<(u32, u32)>) {
    ids.sort_unstable();
    let start = out.len();
    for &id in ids.iter() {
        match out[start..].last_mut() {
            Some((last, count)) if *last == id => *count += 1,
            _ => out.push((id, 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(texts: &[&str], params: &VectorizeParams) -> (TfidfVectorizer, Csr) {
        TfidfVectorizer::fit_transform(texts, params).unwrap()
    }

    fn params(json: &str) -> VectorizeParams {
        VectorizeParams::from_json(&serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn texts_across_several_blocks_keep_their_terms_and_counts() {
        // More texts than two parallel blocks; text i has words w{i % 97}
        // (twice) and v{i % 13}.
        let texts: Vec<String> = (0..TEXTS_PER_TASK * 2 + 123)
            .map(|i| format!("w{0} v{1} w{0}", i % 97, i % 13))
            .collect();
        let (fitted, x) =
            TfidfVectorizer::fit_transform(&texts, &VectorizeParams::default()).unwrap();
        assert_eq!(fitted.vocabulary().len(), 97 + 13);
        for i in [
            0,
            5,
            TEXTS_PER_TASK - 1,
            TEXTS_PER_TASK,
            TEXTS_PER_TASK * 2 + 122,
        ] {
            let w = fitted.vocabulary().column(&format!("w{}", i % 97)).unwrap();
            let u = fitted.vocabulary().column(&format!("v{}", i % 13)).unwrap();
            let mut want = [w, u];
            want.sort_unstable();
            assert_eq!(x.row(i).0, want, "text {i}");
            assert!(x.get(i, w as usize) > x.get(i, u as usize), "text {i}");
            // The same words 97·13 texts later, in another block: the same row.
            if i + 97 * 13 < texts.len() {
                assert_eq!(x.row(i), x.row(i + 97 * 13), "text {i}");
            }
        }
    }

    const CORPUS: [&str; 4] = [
        "The cat sat on the mat.",
        "The dog sat.",
        "A cat and a dog!",
        "Mat, mat, MAT",
    ];

    /// The TF-IDF row computed from the formulas: counts per term, times
    /// idf, l2-normalised.
    fn expected_row(counts: &[(&str, f64)], idf: impl Fn(&str) -> f64) -> Vec<(String, f64)> {
        let raw: Vec<(String, f64)> = counts
            .iter()
            .map(|&(t, c)| (t.to_string(), c * idf(t)))
            .collect();
        let norm = raw.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        raw.into_iter().map(|(t, v)| (t, v / norm)).collect()
    }

    #[test]
    fn tfidf_matches_the_formulas() {
        let (v, x) = fit(&CORPUS, &VectorizeParams::default());
        // "a" is one character long: never a term.
        assert_eq!(
            v.vocabulary().terms(),
            ["and", "cat", "dog", "mat", "on", "sat", "the"]
        );
        let n: f64 = 4.0;
        let df = |t: &str| -> f64 {
            match t {
                "and" | "on" => 1.0,
                "cat" | "dog" | "mat" | "sat" | "the" => 2.0,
                _ => unreachable!(),
            }
        };
        let idf = |t: &str| ((1.0 + n) / (1.0 + df(t))).ln() + 1.0;
        for (j, t) in v.vocabulary().terms().iter().enumerate() {
            assert!((v.idf()[j] - idf(t)).abs() < 1e-12, "{t}");
        }
        let rows = [
            expected_row(
                &[
                    ("the", 2.0),
                    ("cat", 1.0),
                    ("sat", 1.0),
                    ("on", 1.0),
                    ("mat", 1.0),
                ],
                idf,
            ),
            expected_row(&[("the", 1.0), ("dog", 1.0), ("sat", 1.0)], idf),
            expected_row(&[("cat", 1.0), ("and", 1.0), ("dog", 1.0)], idf),
            expected_row(&[("mat", 3.0)], idf),
        ];
        assert_eq!(x.nrows(), 4);
        assert_eq!(x.ncols(), 7);
        assert_eq!(x.nnz(), 5 + 3 + 3 + 1);
        for (i, row) in rows.iter().enumerate() {
            for (t, want) in row {
                let j = v.vocabulary().column(t).unwrap() as usize;
                assert!((x.get(i, j) - want).abs() < 1e-9, "row {i} term {t}");
            }
            let norm: f64 = x.row(i).1.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-12);
        }
        // The last row has a single term: exactly 1 after normalisation.
        assert_eq!(x.row(3), (&[3u32][..], &[1.0][..]));
    }

    #[test]
    fn transform_ignores_unknown_words_and_gives_empty_rows() {
        let (v, x) = fit(&CORPUS, &VectorizeParams::default());
        let y = v.transform(&["the zebra sat", "zebra !", "", "THE CAT SAT ON THE MAT"]);
        assert_eq!(y.nrows(), 4);
        assert_eq!(y.ncols(), 7);
        let idf_the = v.idf()[6];
        let idf_sat = v.idf()[5];
        let norm = (idf_the * idf_the + idf_sat * idf_sat).sqrt();
        assert_eq!(y.row(0).0, [5, 6]);
        assert!((y.get(0, 6) - idf_the / norm).abs() < 1e-12);
        assert!((y.get(0, 5) - idf_sat / norm).abs() < 1e-12);
        assert_eq!(y.row(1).0.len(), 0);
        assert_eq!(y.row(2).0.len(), 0);
        // The same text gives the same row as at fit time.
        assert_eq!(y.row(3), x.row(0));
    }

    #[test]
    fn sublinear_tf_uses_one_plus_log_count() {
        let p = params(r#"{"sublinear_tf": true}"#);
        let (v, x) = fit(&CORPUS, &p);
        // Row 0: "the" twice, every other term once.
        let tf_the = 1.0 + 2f64.ln();
        let terms = ["cat", "mat", "on", "sat", "the"];
        let raw: Vec<f64> = terms
            .iter()
            .map(|t| {
                let j = v.vocabulary().column(t).unwrap() as usize;
                (if *t == "the" { tf_the } else { 1.0 }) * v.idf()[j]
            })
            .collect();
        let norm = raw.iter().map(|r| r * r).sum::<f64>().sqrt();
        for (t, r) in terms.iter().zip(&raw) {
            let j = v.vocabulary().column(t).unwrap() as usize;
            assert!((x.get(0, j) - r / norm).abs() < 1e-12, "{t}");
        }
    }

    #[test]
    fn min_df_and_max_df_prune_by_document_frequency() {
        // Counts: df 2 for cat, dog, mat, sat, the; df 1 for and, on.
        let (v, x) = fit(&CORPUS, &params(r#"{"min_df": 2}"#));
        assert_eq!(v.vocabulary().terms(), ["cat", "dog", "mat", "sat", "the"]);
        // idf still uses the number of texts and the term's own df.
        assert!((v.idf()[0] - ((5.0f64 / 3.0).ln() + 1.0)).abs() < 1e-12);
        assert_eq!(x.ncols(), 5);
        // Proportions: 0.5 of 4 texts = 2 documents.
        let (v, _) = fit(&CORPUS, &params(r#"{"min_df": 0.5}"#));
        assert_eq!(v.vocabulary().len(), 5);
        let (v, _) = fit(&CORPUS, &params(r#"{"max_df": 1}"#));
        assert_eq!(v.vocabulary().terms(), ["and", "on"]);
        let (v, _) = fit(&CORPUS, &params(r#"{"max_df": 0.3}"#));
        assert_eq!(v.vocabulary().terms(), ["and", "on"]);
        // A float 1.0 is 100 % of the texts, an integer 1 one text.
        let (v, _) = fit(&CORPUS, &params(r#"{"max_df": 1.0}"#));
        assert_eq!(v.vocabulary().len(), 7);
    }

    #[test]
    fn max_features_keeps_the_most_frequent_terms_ties_alphabetically() {
        // Totals: mat 4, the 3, cat 2, dog 2, sat 2, and 1, on 1.
        let (v, x) = fit(&CORPUS, &params(r#"{"max_features": 2}"#));
        assert_eq!(v.vocabulary().terms(), ["mat", "the"]);
        assert_eq!(x.ncols(), 2);
        // A tie at the cut: cat, dog and sat all have 2; cat wins.
        let (v, _) = fit(&CORPUS, &params(r#"{"max_features": 3}"#));
        assert_eq!(v.vocabulary().terms(), ["cat", "mat", "the"]);
        // Applied after min_df/max_df.
        let (v, _) = fit(&CORPUS, &params(r#"{"max_features": 1, "max_df": 1}"#));
        assert_eq!(v.vocabulary().terms(), ["and"]);
    }

    #[test]
    fn ngrams_enter_the_vocabulary() {
        let (v, _) = fit(
            &["good film", "bad film"],
            &params(r#"{"ngram_range": [1, 2]}"#),
        );
        assert_eq!(
            v.vocabulary().terms(),
            ["bad", "bad film", "film", "good", "good film"]
        );
    }

    #[test]
    fn fit_errors_are_clear() {
        let e =
            TfidfVectorizer::fit_transform(&["a b", "!"], &VectorizeParams::default()).unwrap_err();
        assert!(matches!(e, VectorizeError::EmptyVocabulary { n_docs: 2 }));
        let e = TfidfVectorizer::fit_transform(&[] as &[&str], &VectorizeParams::default())
            .unwrap_err();
        assert!(matches!(e, VectorizeError::EmptyVocabulary { n_docs: 0 }));
        let e = TfidfVectorizer::fit_transform(&CORPUS, &params(r#"{"min_df": 3, "max_df": 2}"#))
            .unwrap_err();
        assert!(e.to_string().contains("below min_df"), "{e}");
        let e = TfidfVectorizer::fit_transform(&CORPUS, &params(r#"{"min_df": 3}"#)).unwrap_err();
        assert!(e.to_string().contains("Hint: lower min_df"), "{e}");
    }

    #[test]
    fn params_are_checked_and_roundtrip() {
        let p = params(
            r#"{"ngram_range": [1, 3], "min_df": 2, "max_df": 0.9, "max_features": 100, "sublinear_tf": true}"#,
        );
        assert_eq!(p.ngram_range.max_n(), 3);
        assert_eq!(p.min_df, DocFreq::Count(2));
        assert_eq!(p.max_df, DocFreq::Proportion(0.9));
        assert_eq!(VectorizeParams::from_json(&p.to_json()).unwrap(), p);
        assert_eq!(
            VectorizeParams::from_json(&VectorizeParams::default().to_json()).unwrap(),
            VectorizeParams::default()
        );
        let err = |json: &str| {
            VectorizeParams::from_json(&serde_json::from_str(json).unwrap()).unwrap_err()
        };
        assert!(err(r#"{"max_dff": 1}"#).contains("no param `max_dff`"));
        assert!(err(r#"{"ngram_range": [2, 1]}"#).contains("ngram_range"));
        assert!(err(r#"{"ngram_range": 2}"#).contains("[min_n, max_n]"));
        assert!(err(r#"{"min_df": 1.5}"#).contains("min_df"));
        assert!(err(r#"{"min_df": -1}"#).contains("min_df"));
        assert!(err(r#"{"max_features": 0}"#).contains("max_features"));
        assert!(err(r#"{"sublinear_tf": 1}"#).contains("sublinear_tf"));
    }
}
