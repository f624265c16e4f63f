//! `text`: scikit-learn's default word analyzer, by hand.
//!
//! `CountVectorizer()` turns a document into terms in three steps, and this
//! module repeats them:
//!
//! 1. **Lowercase** the whole document (`str.lower()`).
//! 2. **Tokenize** with the pattern `(?u)\b\w\w+\b`. Because `\w+` is
//!    greedy and `\b` needs a non-word character (or the text's edge) on
//!    the outside, the matches are exactly the maximal runs of word
//!    characters that are at least two characters long. A word character
//!    is Python's `\w` on `str`: `str.isalnum()` or `_`. Everything else
//!    (punctuation, spaces, symbols, the apostrophe in "don't") separates
//!    tokens, and one-character runs ("a", "I", "5") are dropped.
//! 3. **N-grams** for an `ngram_range (min_n, max_n)`: every run of `n`
//!    consecutive tokens for `n` in `min_n..=max_n`, joined with one space,
//!    in sklearn's order (all the `min_n`-grams first, then the longer ones).
//!    N-grams are formed after the one-character tokens are dropped, so
//!    "a b cd ef" gives the bigram "cd ef" and nothing else.
//!
//! The scan is written by hand rather than with a regex engine: one pass
//! over the characters with an ASCII fast path, no allocation per unigram
//! (terms are handed to a callback as `&str`).
//!
//! # Differences from Python
//!
//! Both sides lowercase with Unicode's full mapping (special casing such as
//! `İ` → `i̇` and a final `Σ` → `ς` included), so they differ only where
//! the two were built with different Unicode versions. Word characters
//! differ slightly for some non-Latin scripts: Python's `isalnum()` is "a
//! letter (category L*) or a number (N*)", while Rust's
//! [`char::is_alphanumeric`] is "Alphabetic or Numeric", and the Unicode
//! Alphabetic property also covers some combining marks (for instance the
//! Devanagari vowel sign `ा`, U+093E) and circled letters (`Ⓐ`). Python
//! splits a token at such a character; this module keeps it inside the
//! token. ASCII and ordinary accented Latin text tokenize identically.

use std::borrow::Cow;

/// The `ngram_range` of sklearn's vectorizers: `1 <= min_n <= max_n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NgramRange {
    min_n: usize,
    max_n: usize,
}

impl Default for NgramRange {
    /// Unigrams only, sklearn's default `(1, 1)`.
    fn default() -> Self {
        NgramRange { min_n: 1, max_n: 1 }
    }
}

impl NgramRange {
    pub fn new(min_n: usize, max_n: usize) -> Result<NgramRange, String> {
        if min_n == 0 || min_n > max_n {
            return Err(format!(
                "ngram_range must be [min_n, max_n] with 1 <= min_n <= max_n, not [{min_n}, {max_n}]"
            ));
        }
        Ok(NgramRange { min_n, max_n })
    }

    pub fn min_n(&self) -> usize {
        self.min_n
    }

    pub fn max_n(&self) -> usize {
        self.max_n
    }
}

/// Python's `\w` on `str`: a letter, a digit or other number, or `_`.
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || c == '_'
    } else {
        c.is_alphanumeric()
    }
}

/// The document lowercased as `str.lower()` would (see the module docs);
/// borrowed when it has no uppercase ASCII and nothing else to change.
pub fn lowercase(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// The tokens of an already lowercased text: maximal runs of word
/// characters at least two characters long, in order.
pub fn tokens(text: &str) -> Tokens<'_> {
    Tokens { text, pos: 0 }
}

/// Iterator returned by [`tokens`].
#[derive(Debug, Clone)]
pub struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() {
            // Skip separators.
            let rest = &self.text[self.pos..];
            let Some((offset, _)) = rest.char_indices().find(|&(_, c)| is_word_char(c)) else {
                self.pos = bytes.len();
                return None;
            };
            let start = self.pos + offset;
            // Take the run of word characters, counting characters.
            let mut end = start;
            let mut chars = 0usize;
            for c in self.text[start..].chars() {
                if !is_word_char(c) {
                    break;
                }
                end += c.len_utf8();
                chars += 1;
            }
            self.pos = end;
            if chars >= 2 {
                return Some(&self.text[start..end]);
            }
        }
        None
    }
}

/// Lowercase, tokenize and build n-grams, as sklearn's `build_analyzer()`
/// does for `analyzer="word"` with the default token pattern.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Analyzer {
    ngram_range: NgramRange,
}

impl Analyzer {
    pub fn new(ngram_range: NgramRange) -> Analyzer {
        Analyzer { ngram_range }
    }

    pub fn ngram_range(&self) -> NgramRange {
        self.ngram_range
    }

    /// Calls `f` with every term of `text`, repeats included, in sklearn's
    /// order. Unigrams are slices of the lowercased text; longer n-grams
    /// are built in one reused buffer.
    pub fn for_each_term(&self, text: &str, mut f: impl FnMut(&str)) {
        let lower = lowercase(text);
        let NgramRange { min_n, max_n } = self.ngram_range;
        if max_n == 1 {
            tokens(&lower).for_each(f);
            return;
        }
        let toks: Vec<&str> = tokens(&lower).collect();
        let mut joined = String::new();
        for n in min_n..=max_n.min(toks.len()) {
            if n == 1 {
                toks.iter().for_each(|t| f(t));
                continue;
            }
            for window in toks.windows(n) {
                joined.clear();
                for (i, t) in window.iter().enumerate() {
                    if i > 0 {
                        joined.push(' ');
                    }
                    joined.push_str(t);
                }
                f(&joined);
            }
        }
    }

    /// All terms of `text` as owned strings (convenient for tests and
    /// small inputs; [`Analyzer::for_each_term`] does not allocate per term).
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_term(text, |t| out.push(t.to_string()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unigrams(text: &str) -> Vec<String> {
        Analyzer::default().terms(text)
    }

    fn ngrams(text: &str, min_n: usize, max_n: usize) -> Vec<String> {
        Analyzer::new(NgramRange::new(min_n, max_n).unwrap()).terms(text)
    }

    #[test]
    fn punctuation_separates_and_single_characters_are_dropped() {
        assert_eq!(
            unigrams("Neither revelatory nor truly edgy -- merely crassly flamboyant ."),
            [
                "neither",
                "revelatory",
                "nor",
                "truly",
                "edgy",
                "merely",
                "crassly",
                "flamboyant"
            ]
        );
        assert_eq!(unigrams("I don't like a film"), ["don", "like", "film"]);
        assert_eq!(
            unigrams("well-made,fun!!ok?"),
            ["well", "made", "fun", "ok"]
        );
        assert_eq!(unigrams("a b c . , ;"), Vec::<String>::new());
        assert_eq!(unigrams(""), Vec::<String>::new());
    }

    #[test]
    fn digits_and_underscores_are_word_characters() {
        assert_eq!(
            unigrams("R2-D2 in 1999, snake_case _x 7 42"),
            ["r2", "d2", "in", "1999", "snake_case", "_x", "42"]
        );
    }

    #[test]
    fn unicode_letters_are_lowercased_and_kept() {
        assert_eq!(
            unigrams("Ça CRÉE des Émotions, naïve café"),
            ["ça", "crée", "des", "émotions", "naïve", "café"]
        );
        // Greek final sigma, as Python's str.lower() gives it.
        assert_eq!(unigrams("ΟΔΟΣ"), ["οδο\u{3c2}"]);
        // Non-Latin letters and non-ASCII digits are word characters.
        assert_eq!(unigrams("映画 ٣٤ x"), ["映画", "٣٤"]);
        // A one-character non-ASCII run is dropped: length is in characters.
        assert_eq!(unigrams("é ü ab"), ["ab"]);
        // Symbols and non-ASCII punctuation separate.
        assert_eq!(
            unigrams("good…great—fine «ok»"),
            ["good", "great", "fine", "ok"]
        );
    }

    #[test]
    fn lowercase_borrows_when_nothing_changes() {
        assert!(matches!(lowercase("already lower"), Cow::Borrowed(_)));
        assert_eq!(lowercase("MiXeD"), "mixed");
        assert_eq!(lowercase("ÀB"), "àb");
    }

    #[test]
    fn ngrams_follow_sklearn_word_ngrams() {
        assert_eq!(
            ngrams("The cat sat", 1, 2),
            ["the", "cat", "sat", "the cat", "cat sat"]
        );
        assert_eq!(
            ngrams("The cat sat", 2, 3),
            ["the cat", "cat sat", "the cat sat"]
        );
        // Longer than the document: nothing beyond its length.
        assert_eq!(ngrams("one two", 2, 5), ["one two"]);
        assert_eq!(ngrams("single", 2, 2), Vec::<String>::new());
        // One-character tokens are dropped before n-grams are formed.
        assert_eq!(ngrams("a b cd, ef", 2, 2), ["cd ef"]);
    }

    #[test]
    fn ngram_range_is_checked() {
        assert!(NgramRange::new(0, 1).is_err());
        assert!(NgramRange::new(2, 1).unwrap_err().contains("[2, 1]"));
        assert_eq!(NgramRange::new(1, 3).unwrap().max_n(), 3);
    }
}
