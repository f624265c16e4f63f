//! Limits on what a pipeline may ask for, checked while it is resolved.
//!
//! - **Stages**: at most [`MAX_STAGES`] in a pipeline, counting every stage
//!   `foreach` and `matrix` generate. A matrix's size is the product of its
//!   lists' lengths, so a few hundred bytes can ask for millions of stages;
//!   the size is computed (with checked arithmetic) and refused before any
//!   stage is made, with a message naming the generator and its size
//!   ([`generated`]).
//! - **Paths**: a component of at most [`MAX_NAME`] bytes and a path of at
//!   most [`MAX_PATH`] bytes, the project's directory included, as Linux
//!   (and most Unix filesystems) allow. A longer path could not be hashed
//!   or written later; it is refused where it is written instead
//!   ([`check_path`]).

use std::path::Path;

use crate::paths::RelPath;

/// The most stages a pipeline may have, generated ones included.
pub const MAX_STAGES: usize = 100_000;

/// The longest file name, in bytes (`NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// The longest path, in bytes, without its terminating NUL (`PATH_MAX - 1`).
pub const MAX_PATH: usize = 4095;

/// What a `foreach` or `matrix` stage asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generator {
    /// A plain stage.
    One,
    /// `foreach` over this many items (or keys of a mapping).
    Foreach(usize),
    /// `matrix` with lists of these lengths.
    Matrix(Vec<usize>),
}

impl Generator {
    /// How many stages it makes; `None` past `u128`.
    pub fn size(&self) -> Option<u128> {
        match self {
            Generator::One => Some(1),
            Generator::Foreach(n) => Some(*n as u128),
            Generator::Matrix(lens) => lens
                .iter()
                .try_fold(1u128, |acc, &n| acc.checked_mul(n as u128)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Generator::One => "the stage".to_string(),
            Generator::Foreach(n) => format!("foreach over {} items", thousands(*n as u128)),
            Generator::Matrix(lens) => match lens.as_slice() {
                [n] => format!("matrix of {} values", thousands(*n as u128)),
                [first, rest @ ..] if rest.iter().all(|n| n == first) => format!(
                    "matrix of {} keys × {} values",
                    lens.len(),
                    thousands(*first as u128)
                ),
                _ => {
                    let parts: Vec<String> = lens.iter().map(|&n| thousands(n as u128)).collect();
                    format!("matrix of {} values", parts.join(" × "))
                }
            },
        }
    }
}

/// Checks that `generator`, coming after `before` stages, keeps the
/// pipeline within [`MAX_STAGES`]. Returns the number of stages it makes.
pub fn generated(generator: &Generator, before: usize) -> Result<usize, String> {
    let size = generator.size();
    let total = size.map(|n| n + before as u128);
    match (size, total) {
        (Some(n), Some(total)) if total <= MAX_STAGES as u128 => Ok(n as usize),
        _ if *generator == Generator::One => Err(format!(
            "the pipeline has more than {} stages, the most pipe handles",
            thousands(MAX_STAGES as u128)
        )),
        (Some(n), _) if n > MAX_STAGES as u128 || before == 0 => Err(format!(
            "{} makes {} stages; pipe handles at most {} stages in a pipeline",
            generator.describe(),
            thousands(n),
            thousands(MAX_STAGES as u128)
        )),
        (Some(n), Some(total)) => Err(format!(
            "{} makes {} stages, {} with the {} before it; pipe handles at most {} stages in a pipeline",
            generator.describe(),
            thousands(n),
            thousands(total),
            thousands(before as u128),
            thousands(MAX_STAGES as u128)
        )),
        _ => Err(format!(
            "{} makes more than 10^38 stages; pipe handles at most {} stages in a pipeline",
            generator.describe(),
            thousands(MAX_STAGES as u128)
        )),
    }
}

/// What to do about too many stages.
pub const TOO_MANY_STAGES_HINT: &str = "generate fewer stages (fewer items, keys or values), or let each stage handle a batch of items";

/// A message when `path` (a project path) is longer than the system allows
/// once joined to `root`.
pub fn check_path(root: &Path, path: &RelPath) -> Option<String> {
    if let Some(name) = path.as_str().split('/').find(|c| c.len() > MAX_NAME) {
        return Some(format!(
            "the name `{}` is {} bytes long; a file or directory name may have at most {MAX_NAME} bytes",
            abbreviate(name),
            thousands(name.len() as u128)
        ));
    }
    let len = path.as_str().len();
    let full = root.as_os_str().len() + 1 + len;
    if len > MAX_PATH {
        Some(format!(
            "the path `{}` is {} bytes long; a path may have at most {} bytes",
            abbreviate(path.as_str()),
            thousands(len as u128),
            thousands(MAX_PATH as u128)
        ))
    } else if full > MAX_PATH {
        Some(format!(
            "the path `{}` is {} bytes long, {} with the project's directory; a path may have at most {} bytes",
            abbreviate(path.as_str()),
            thousands(len as u128),
            thousands(full as u128),
            thousands(MAX_PATH as u128)
        ))
    } else {
        None
    }
}

/// What to do about a path that is too long.
pub const LONG_PATH_HINT: &str = "use shorter names, or fewer nested directories";

/// The first 40 characters of `text`, then `…` if there was more.
fn abbreviate(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// `10000000` → `10,000,000`.
pub fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }

    #[test]
    fn sizes_generators_and_refuses_too_many_stages() {
        let grid = Generator::Matrix(vec![10; 7]);
        assert_eq!(
            generated(&grid, 0).unwrap_err(),
            "matrix of 7 keys × 10 values makes 10,000,000 stages; pipe handles at most 100,000 stages in a pipeline"
        );
        assert_eq!(generated(&Generator::Matrix(vec![2, 3]), 10), Ok(6));
        assert_eq!(
            generated(&Generator::Foreach(60_000), 50_000).unwrap_err(),
            "foreach over 60,000 items makes 60,000 stages, 110,000 with the 50,000 before it; pipe handles at most 100,000 stages in a pipeline"
        );
        assert_eq!(
            generated(&Generator::Matrix(vec![1000; 20]), 0).unwrap_err(),
            "matrix of 20 keys × 1,000 values makes more than 10^38 stages; pipe handles at most 100,000 stages in a pipeline"
        );
        assert_eq!(
            generated(&Generator::Matrix(vec![2, 1000, 1000]), 0).unwrap_err(),
            "matrix of 2 × 1,000 × 1,000 values makes 2,000,000 stages; pipe handles at most 100,000 stages in a pipeline"
        );
        assert_eq!(
            generated(&Generator::Foreach(MAX_STAGES), 0),
            Ok(MAX_STAGES)
        );
        assert!(generated(&Generator::Foreach(1), MAX_STAGES).is_err());
        assert_eq!(generated(&Generator::One, MAX_STAGES - 1), Ok(1));
        assert_eq!(
            generated(&Generator::One, MAX_STAGES).unwrap_err(),
            "the pipeline has more than 100,000 stages, the most pipe handles"
        );
    }

    #[test]
    fn refuses_long_names_and_paths() {
        let root = Path::new("/project");
        let ok = RelPath::from_normalized(format!("d/{}", "n".repeat(MAX_NAME)));
        assert_eq!(check_path(root, &ok), None);
        let long_name = RelPath::from_normalized(format!("d/{}", "n".repeat(MAX_NAME + 1)));
        assert_eq!(
            check_path(root, &long_name).unwrap(),
            format!("the name `{}…` is 256 bytes long; a file or directory name may have at most 255 bytes", "n".repeat(40))
        );
        let deep = RelPath::from_normalized(vec!["d"; 2100].join("/"));
        assert_eq!(
            check_path(root, &deep).unwrap(),
            format!(
                "the path `{}…` is 4,199 bytes long; a path may have at most 4,095 bytes",
                "d/".repeat(20)
            )
        );
        let nearly = RelPath::from_normalized(vec!["d"; 2045].join("/"));
        assert_eq!(
            check_path(root, &nearly).unwrap(),
            format!("the path `{}…` is 4,089 bytes long, 4,098 with the project's directory; a path may have at most 4,095 bytes", "d/".repeat(20))
        );
    }
}
