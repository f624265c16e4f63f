//! `synth`: a deterministic synthetic corpus of labelled movie-review phrases.
//!
//! The project cannot ship the real "Sentiment Analysis on Movie Reviews"
//! data, so the demo pipeline starts from this generator. It writes the same
//! schema (`PhraseId SentenceId Phrase Sentiment`, tab-separated, with a
//! header) with labels 0 (very negative) to 4 (very positive). A sentence
//! is built from a hand-written lexicon: a subject, an opinion phrase whose
//! polarity sets the label, and neutral filler; each sentence also yields a
//! few of its sub-phrases as extra rows, as the real corpus does.
//!
//! The corpus is made hard for a bag of words, so that the demo's params
//! matter (`fit.C` trades under- for over-fitting; bigrams help):
//!
//! - a strong opinion is often said with a rare, made-up word (600 per
//!   polarity), seen a few times in training: a strongly regularised model
//!   cannot learn them;
//! - made-up names (`, with NAME`) recur but say nothing, and a share of
//!   labels (`noise`) is flipped: a model free to fit the noisy labels
//!   gives the names weight, and errs on the test set;
//! - negations ("not brilliant" is negative) and contrasts ("X , but Y":
//!   Y decides) that unigrams cannot read.
//!
//! The made-up words come from a fixed generator, so the vocabulary does
//! not depend on the seed. On the demo's 20,000 rows, logistic regression
//! scores about 0.78 with C = 0.01, 0.88 with C = 1 and 0.85 with
//! C = 100000.
//!
//! The random numbers come from SplitMix64, written here, so that the same
//! `rows` and `seed` give the same bytes on every machine and every version
//! of every dependency. Bump [`VERSION`] whenever the output would change.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{Map, Value};

/// The algorithm version; it enters the stage fingerprint.
pub const VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct SynthParams {
    /// Number of phrase rows to write (header excluded).
    pub rows: u64,
    pub seed: u64,
    /// Share of labels flipped to the opposite polarity, in [0, 1).
    pub noise: f64,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            rows: 20_000,
            seed: 42,
            noise: 0.05,
        }
    }
}

impl SynthParams {
    /// Reads `rows`, `seed` and `noise` from a params mapping; missing keys
    /// keep their defaults, unknown keys are refused.
    pub fn from_json(params: &Map<String, Value>) -> Result<SynthParams, String> {
        let mut p = SynthParams::default();
        for (key, value) in params {
            match key.as_str() {
                "rows" => {
                    p.rows = value
                        .as_u64()
                        .ok_or("synth param `rows` must be a whole number")?
                }
                "seed" => {
                    p.seed = value
                        .as_u64()
                        .ok_or("synth param `seed` must be a whole number")?
                }
                "noise" => {
                    p.noise = value.as_f64().filter(|n| (0.0..1.0).contains(n)).ok_or(
                        "synth param `noise` must be a number from 0 (inclusive) to 1 (exclusive)",
                    )?
                }
                other => {
                    return Err(format!(
                        "synth has no param `{other}` (it takes rows, seed and noise)"
                    ))
                }
            }
        }
        Ok(p)
    }
}

/// SplitMix64: tiny, fast, and fully specified, so streams are stable.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the tiny bias is irrelevant here.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const SUBJECTS: &[&str] = &[
    "the film",
    "this movie",
    "the plot",
    "the script",
    "the acting",
    "the cast",
    "the director",
    "the story",
    "the soundtrack",
    "the cinematography",
    "the dialogue",
    "the ending",
    "the pacing",
    "the lead performance",
    "the screenplay",
    "the visual effects",
    "the humor",
    "the sequel",
    "the characters",
    "the editing",
];
const VERY_POSITIVE: &[&str] = &[
    "a masterpiece",
    "brilliant",
    "extraordinary",
    "a triumph",
    "superb",
    "dazzling",
    "utterly captivating",
    "an absolute joy",
    "wonderful",
    "magnificent",
    "breathtaking",
    "a delight from start to finish",
];
const POSITIVE: &[&str] = &[
    "good",
    "enjoyable",
    "charming",
    "funny",
    "engaging",
    "solid",
    "likable",
    "warm",
    "clever",
    "entertaining",
    "well made",
    "sweet",
];
const NEUTRAL: &[&str] = &[
    "ordinary",
    "about what you expect",
    "a mixed bag",
    "uneven",
    "competent",
    "long",
    "familiar",
    "in color",
    "two hours",
    "a film about a family",
];
const NEGATIVE: &[&str] = &[
    "dull",
    "clumsy",
    "forgettable",
    "tedious",
    "flat",
    "predictable",
    "bland",
    "messy",
    "slow",
    "overlong",
    "thin",
    "silly",
];
const VERY_NEGATIVE: &[&str] = &[
    "a disaster",
    "unwatchable",
    "painfully bad",
    "a complete mess",
    "dreadful",
    "awful",
    "an insult to the audience",
    "terrible",
    "worthless",
    "excruciating",
    "a waste of time",
    "the worst of the year",
];
const FILLERS: &[&str] = &[
    "",
    "",
    "",
    "frankly",
    "in the end",
    "for most of its running time",
    "despite the hype",
    "as expected",
    "at times",
    "sadly",
    "happily",
    "once again",
    "on the whole",
];
const LINKS: &[&str] = &[
    "is",
    "feels",
    "seems",
    "turns out to be",
    "remains",
    "proves",
];

/// Words and names made up for the corpus: a fixed lexicon (it does not
/// depend on the seed), so that the vocabulary stays the same from one run
/// to the next.
struct Lexicon {
    /// Rare opinion words: `[negative, positive]`, [`RARE_WORDS`] each.
    rare: [Vec<String>; 2],
    /// Names of actors and directors, which say nothing of the opinion.
    names: Vec<String>,
}

/// How many rare opinion words each polarity has.
const RARE_WORDS: usize = 600;
/// How many made-up names there are.
const NAMES: usize = 300;
/// The share of strong opinions said with a rare word.
const RARE_SHARE: f64 = 0.6;

const SYLLABLES: &[&str] = &[
    "ba", "ko", "ri", "mu", "sel", "tor", "vin", "pla", "dra", "gen", "lu", "fo", "zen", "qua",
    "mi", "ster", "vo", "nal", "pe", "gri", "sha", "dul", "ca", "ther",
];
const ENDINGS: &[&str] = &["ous", "ing", "ful", "ish", "ive", "ant", "ic", "y"];

impl Lexicon {
    fn new() -> Lexicon {
        let mut rng = SplitMix64::new(0x005E_ED1E_71C0);
        let mut seen = std::collections::HashSet::new();
        let mut word = |rng: &mut SplitMix64, ending: bool| loop {
            let mut w = String::new();
            for _ in 0..2 + rng.below(2) {
                w.push_str(rng.pick(SYLLABLES));
            }
            if ending {
                w.push_str(rng.pick(ENDINGS));
            }
            if seen.insert(w.clone()) {
                break w;
            }
        };
        let rare = [
            (0..RARE_WORDS).map(|_| word(&mut rng, true)).collect(),
            (0..RARE_WORDS).map(|_| word(&mut rng, true)).collect(),
        ];
        let names = (0..NAMES).map(|_| word(&mut rng, false)).collect();
        Lexicon { rare, names }
    }
}

/// Writes the corpus to `out` (creating parent directories).
pub fn write_corpus(out: &Path, params: &SynthParams) -> std::io::Result<()> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let lexicon = Lexicon::new();
    let mut w = BufWriter::new(File::create(out)?);
    writeln!(w, "PhraseId\tSentenceId\tPhrase\tSentiment")?;
    let mut rng = SplitMix64::new(params.seed);
    let mut phrase_id = 0u64;
    let mut sentence_id = 0u64;
    while phrase_id < params.rows {
        sentence_id += 1;
        let (sentence, label, opinion) = sentence(&mut rng, &lexicon, params.noise);
        // The sentence, then a few of its sub-phrases, as in the real corpus.
        let mut rows = vec![(sentence, label)];
        rows.push(opinion);
        if rng.below(2) == 0 {
            rows.push((rng.pick(SUBJECTS).to_string(), 2));
        }
        for (text, label) in rows {
            if phrase_id == params.rows {
                break;
            }
            phrase_id += 1;
            writeln!(w, "{phrase_id}\t{sentence_id}\t{text}\t{label}")?;
        }
    }
    w.flush()
}

/// An opinion of polarity `label` (0 to 4): a common phrase, or for the
/// strong ones (0, 4) often a rare word.
fn opinion(rng: &mut SplitMix64, lexicon: &Lexicon, label: u8) -> String {
    let pool = match label {
        0 => VERY_NEGATIVE,
        1 => NEGATIVE,
        2 => NEUTRAL,
        3 => POSITIVE,
        _ => VERY_POSITIVE,
    };
    if matches!(label, 0 | 4) && rng.unit() < RARE_SHARE {
        let words = &lexicon.rare[usize::from(label == 4)];
        return words[rng.below(words.len() as u64) as usize].clone();
    }
    rng.pick(pool).to_string()
}

/// One clause: `[filler ,] subject link opinion`.
fn clause(rng: &mut SplitMix64, opinion: &str) -> String {
    let filler = rng.pick(FILLERS);
    let subject = rng.pick(SUBJECTS);
    let link = rng.pick(LINKS);
    let mut s = String::new();
    if !filler.is_empty() {
        s.push_str(filler);
        s.push_str(" , ");
    }
    s.push_str(&format!("{subject} {link} {opinion}"));
    s
}

/// One sentence, its label, and its opinion phrase with that phrase's
/// label. What makes it hard for a bag of words: negations ("not
/// brilliant" is negative), contrasts ("X , but Y": Y decides), rare
/// opinion words seen a few times in training, names that say nothing but
/// recur (a model free to fit the noisy labels learns them), and labels
/// flipped at random (`noise`).
fn sentence(rng: &mut SplitMix64, lexicon: &Lexicon, noise: f64) -> (String, u8, (String, u8)) {
    let label = rng.below(5) as u8;
    let opinion = opinion(rng, lexicon, label);
    let negated = label != 2 && rng.below(8) == 0;
    let mut shown = label;
    let mut text_opinion = opinion.clone();
    if negated {
        text_opinion = format!("not {opinion}");
        shown = 4 - label;
    }
    let mut s = String::new();
    if label != 2 && rng.below(6) == 0 {
        // A contrast: the first clause says the opposite.
        let other = self::opinion(rng, lexicon, 4 - label);
        s.push_str(&clause(rng, &other));
        s.push_str(" , but ");
    }
    s.push_str(&clause(rng, &text_opinion));
    if rng.below(3) == 0 {
        s.push_str(" and ");
        s.push_str(&self::opinion(rng, lexicon, label));
    }
    if rng.below(2) == 0 {
        let name = &lexicon.names[rng.below(lexicon.names.len() as u64) as usize];
        s.push_str(&format!(" , with {name}"));
    }
    s.push_str(" .");
    if label != 2 && rng.unit() < noise {
        shown = 4 - shown;
    }
    (s, shown, (opinion, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_its_reference_sequence() {
        // First outputs of SplitMix64 seeded with 0, from the published
        // reference implementation by Sebastiano Vigna.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220A8397B1DCDAF);
        assert_eq!(r.next_u64(), 0x6E789E6AA1B965F4);
    }

    #[test]
    fn same_params_same_bytes_and_exact_row_count() {
        let dir = tempfile::tempdir().unwrap();
        let p = SynthParams {
            rows: 500,
            seed: 7,
            noise: 0.1,
        };
        write_corpus(&dir.path().join("a.tsv"), &p).unwrap();
        write_corpus(&dir.path().join("b.tsv"), &p).unwrap();
        let a = std::fs::read_to_string(dir.path().join("a.tsv")).unwrap();
        assert_eq!(
            a,
            std::fs::read_to_string(dir.path().join("b.tsv")).unwrap()
        );
        let lines: Vec<&str> = a.lines().collect();
        assert_eq!(lines[0], "PhraseId\tSentenceId\tPhrase\tSentiment");
        assert_eq!(lines.len(), 501);
        for line in &lines[1..] {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "{line}");
            assert!(matches!(cols[3], "0" | "1" | "2" | "3" | "4"), "{line}");
        }
        let other = SynthParams { seed: 8, ..p };
        write_corpus(&dir.path().join("c.tsv"), &other).unwrap();
        assert_ne!(
            a,
            std::fs::read_to_string(dir.path().join("c.tsv")).unwrap()
        );
    }

    #[test]
    fn the_bytes_are_pinned_to_the_version() {
        // FNV-1a of a small corpus: when this changes, so does every
        // corpus; bump VERSION (and update this value).
        let dir = tempfile::tempdir().unwrap();
        write_corpus(&dir.path().join("a.tsv"), &SynthParams::default()).unwrap();
        let bytes = std::fs::read(dir.path().join("a.tsv")).unwrap();
        let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((VERSION, hash), (2, 14_384_898_409_724_329_446));
    }

    #[test]
    fn params_are_checked() {
        let ok: Map<String, Value> = serde_json::from_str(r#"{"rows": 10, "seed": 1}"#).unwrap();
        assert_eq!(SynthParams::from_json(&ok).unwrap().rows, 10);
        let bad: Map<String, Value> = serde_json::from_str(r#"{"rowz": 10}"#).unwrap();
        assert!(SynthParams::from_json(&bad).unwrap_err().contains("rowz"));
        let neg: Map<String, Value> = serde_json::from_str(r#"{"rows": -1}"#).unwrap();
        assert!(SynthParams::from_json(&neg).is_err());
    }
}
