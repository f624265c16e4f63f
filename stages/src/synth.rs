//! `synth`: a deterministic synthetic corpus of labelled movie-review phrases.
//!
//! The project cannot ship the real "Sentiment Analysis on Movie Reviews"
//! data, so the demo pipeline starts from this generator. It writes the same
//! schema (`PhraseId SentenceId Phrase Sentiment`, tab-separated, with a
//! header) with labels 0 (very negative) to 4 (very positive). A sentence
//! is built from a hand-written lexicon: a subject, an opinion phrase whose
//! polarity sets the label, and neutral filler; each sentence also yields a
//! few of its sub-phrases as extra rows, as the real corpus does. Some
//! opinions are negated ("not good"), and a share of labels is flipped so
//! that a model cannot reach 100 % accuracy.
//!
//! The random numbers come from SplitMix64, written here, so that the same
//! `rows` and `seed` give the same bytes on every machine and every version
//! of every dependency. Bump [`VERSION`] whenever the output would change.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::{Map, Value};

/// The algorithm version; it enters the stage fingerprint.
pub const VERSION: u32 = 1;

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

/// Writes the corpus to `out` (creating parent directories).
pub fn write_corpus(out: &Path, params: &SynthParams) -> std::io::Result<()> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut w = BufWriter::new(File::create(out)?);
    writeln!(w, "PhraseId\tSentenceId\tPhrase\tSentiment")?;
    let mut rng = SplitMix64::new(params.seed);
    let mut phrase_id = 0u64;
    let mut sentence_id = 0u64;
    while phrase_id < params.rows {
        sentence_id += 1;
        let (sentence, label, opinion) = sentence(&mut rng, params.noise);
        // The sentence, then a few of its sub-phrases, as in the real corpus.
        let mut rows = vec![(sentence.clone(), label)];
        rows.push((opinion.0.to_string(), opinion.1));
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

/// One sentence, its label, and its opinion phrase with that phrase's label.
fn sentence(rng: &mut SplitMix64, noise: f64) -> (String, u8, (&'static str, u8)) {
    let label = rng.below(5) as u8;
    let pool = match label {
        0 => VERY_NEGATIVE,
        1 => NEGATIVE,
        2 => NEUTRAL,
        3 => POSITIVE,
        _ => VERY_POSITIVE,
    };
    let opinion = rng.pick(pool);
    let negated = label != 2 && rng.below(8) == 0;
    let mut shown = label;
    let mut text_opinion = opinion.to_string();
    if negated {
        text_opinion = format!("not {opinion}");
        shown = 4 - label;
    }
    if label != 2 && rng.unit() < noise {
        shown = 4 - shown;
    }
    let filler = rng.pick(FILLERS);
    let subject = rng.pick(SUBJECTS);
    let link = rng.pick(LINKS);
    let mut s = String::new();
    if !filler.is_empty() {
        s.push_str(filler);
        s.push_str(" , ");
    }
    s.push_str(subject);
    s.push(' ');
    s.push_str(link);
    s.push(' ');
    s.push_str(&text_opinion);
    if rng.below(3) == 0 {
        s.push_str(" and ");
        s.push_str(rng.pick(pool));
    }
    s.push_str(" .");
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
    fn params_are_checked() {
        let ok: Map<String, Value> = serde_json::from_str(r#"{"rows": 10, "seed": 1}"#).unwrap();
        assert_eq!(SynthParams::from_json(&ok).unwrap().rows, 10);
        let bad: Map<String, Value> = serde_json::from_str(r#"{"rowz": 10}"#).unwrap();
        assert!(SynthParams::from_json(&bad).unwrap_err().contains("rowz"));
        let neg: Map<String, Value> = serde_json::from_str(r#"{"rows": -1}"#).unwrap();
        assert!(SynthParams::from_json(&neg).is_err());
    }
}
