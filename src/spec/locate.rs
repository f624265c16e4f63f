//! Finding where things are written in `pipeline.yaml`.
//!
//! yaml_serde gives locations only for syntax and schema errors. Checks that
//! come later (a missing dep, a cycle, an unknown param key) still want to
//! point at a line, so [`SourceMap`] scans the text for a stage's block under
//! `stages:` and for a word inside that block. It is a heuristic over plain
//! block-style YAML, which is what pipeline files are; when it cannot find a
//! place it answers `None` and the diagnostic names the stage alone.
//!
//! Building the map is one pass over the lines, and a stage's block is found
//! through a name → block index, so that a pipeline of many thousand stages
//! costs time in proportion to its size, not to its size squared.

use std::ops::Range;

use rustc_hash::FxHashMap;

/// Line-oriented index of a pipeline file.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    text: String,
    /// Where each line is in `text`, without its line break.
    lines: Vec<Range<usize>>,
    /// (stage name, first line index, end line index exclusive)
    blocks: Vec<(String, usize, usize)>,
    /// Stage name → index in `blocks` of its first declaration.
    by_name: FxHashMap<String, usize>,
}

impl SourceMap {
    pub fn new(text: &str) -> SourceMap {
        let base = text.as_ptr() as usize;
        let lines: Vec<Range<usize>> = text
            .lines()
            .map(|l| {
                let start = l.as_ptr() as usize - base;
                start..start + l.len()
            })
            .collect();
        let blocks = stage_blocks(lines.len(), |i| &text[lines[i].clone()]);
        let mut by_name = FxHashMap::default();
        by_name.reserve(blocks.len());
        for (i, (name, _, _)) in blocks.iter().enumerate() {
            by_name.entry(name.clone()).or_insert(i);
        }
        SourceMap {
            text: text.to_string(),
            lines,
            blocks,
            by_name,
        }
    }

    fn line(&self, i: usize) -> &str {
        &self.text[self.lines[i].clone()]
    }

    /// The 1-based line where stage `name` is declared. Generated stages
    /// (`train@cnn`) point at their template.
    pub fn stage_line(&self, name: &str) -> Option<usize> {
        self.block(name).map(|(start, _)| start + 1)
    }

    /// The 1-based line and column of `needle` inside the block of stage
    /// `name`. Occurrences in the stage's own fields (`deps:`, `outs:`, …)
    /// win over mentions in free text (`cmd:`, `desc:`), and whole words
    /// over parts of longer ones (`a.txt` inside `data.txt`).
    pub fn find_in_stage(&self, name: &str, needle: &str) -> Option<(usize, usize)> {
        if needle.is_empty() {
            return None;
        }
        let (start, end) = self.block(name)?;
        let field_indent = (start + 1..end)
            .map(|i| self.line(i))
            .find(|l| is_content(l))
            .map(indent_of);
        let mut in_text_field = false;
        let mut best: Option<((bool, bool), usize, usize)> = None;
        for i in start..end {
            let line = self.line(i);
            if i > start && is_content(line) && Some(indent_of(line)) == field_indent {
                in_text_field = matches!(key_of(line).as_deref(), Some("cmd" | "desc" | "meta"));
            }
            for (col, _) in line.match_indices(needle) {
                let before = line[..col].chars().next_back();
                let after = line[col + needle.len()..].chars().next();
                let part =
                    |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || "_-./".contains(c));
                let rank = (in_text_field && i > start, part(before) || part(after));
                if best.is_none_or(|(r, _, _)| rank < r) {
                    best = Some((rank, i + 1, col + 1));
                }
            }
        }
        best.map(|(_, line, col)| (line, col))
    }

    /// Stage names written more than once under `stages:`, with the lines of
    /// their first and second declaration.
    pub fn duplicates(&self) -> Vec<(&str, usize, usize)> {
        let mut out = Vec::new();
        for (i, (name, line, _)) in self.blocks.iter().enumerate() {
            let first = self.by_name[name];
            if first != i {
                out.push((name.as_str(), self.blocks[first].1 + 1, line + 1));
            }
        }
        out
    }

    /// The 1-based line of the top-level key `key` (`plots:`).
    pub fn top_line(&self, key: &str) -> Option<usize> {
        (0..self.lines.len())
            .find(|&i| {
                let line = self.line(i);
                indent_of(line) == 0 && key_of(line).as_deref() == Some(key)
            })
            .map(|i| i + 1)
    }

    /// The 1-based line and column of `needle` inside the top-level
    /// section `section` (its key line and the indented lines below it).
    pub fn find_in_top(&self, section: &str, needle: &str) -> Option<(usize, usize)> {
        let start = self.top_line(section)? - 1;
        let end = (start + 1..self.lines.len())
            .find(|&i| is_content(self.line(i)) && indent_of(self.line(i)) == 0)
            .unwrap_or(self.lines.len());
        if needle.is_empty() {
            return Some((start + 1, 1));
        }
        (start..end).find_map(|i| {
            self.line(i)
                .find(needle)
                .filter(|_| i > start || needle == section)
                .map(|col| (i + 1, col + 1))
        })
    }

    /// Stage names in the order they are written.
    pub fn declaration_order(&self) -> impl Iterator<Item = &str> {
        self.blocks.iter().map(|(n, _, _)| n.as_str())
    }

    fn block(&self, name: &str) -> Option<(usize, usize)> {
        let base = name.split('@').next().unwrap_or(name);
        let (_, start, end) = &self.blocks[*self.by_name.get(base)?];
        Some((*start, *end))
    }
}

pub(crate) fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

pub(crate) fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

pub(crate) fn key_of(line: &str) -> Option<String> {
    let t = line.trim();
    let colon = t.find(':')?;
    let key = t[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty()).then(|| key.to_string())
}

/// The blocks of the stages under `stages:`, in a file of `count` lines
/// (`line(i)` is the text of line `i`).
pub(crate) fn stage_blocks<'t>(
    count: usize,
    line: impl Fn(usize) -> &'t str,
) -> Vec<(String, usize, usize)> {
    let Some(stages_at) = (0..count)
        .map(&line)
        .position(|l| indent_of(l) == 0 && l.trim_end().starts_with("stages:"))
    else {
        return Vec::new();
    };
    let mut blocks: Vec<(String, usize, usize)> = Vec::new();
    let mut child_indent = None;
    let mut end = count;
    for i in stages_at + 1..count {
        let line = line(i);
        if !is_content(line) {
            continue;
        }
        let indent = indent_of(line);
        if indent == 0 {
            end = i;
            break;
        }
        let child = *child_indent.get_or_insert(indent);
        if indent == child {
            if let Some(last) = blocks.last_mut() {
                last.2 = i;
            }
            if let Some(key) = key_of(line) {
                blocks.push((key, i, count));
            }
        }
    }
    if let Some(last) = blocks.last_mut() {
        last.2 = last.2.min(end);
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "vars:\n  - x: 1\nstages:\n  # comment\n  prepare:\n    cmd: echo hi\n    deps: [raw.txt]\n\n  train:\n    foreach: [a, b]\n    do:\n      cmd: train ${item}\nother: 1\n";

    #[test]
    fn finds_stage_lines_and_words_within_a_stage() {
        let map = SourceMap::new(TEXT);
        assert_eq!(map.stage_line("prepare"), Some(5));
        assert_eq!(map.stage_line("train@a"), Some(9));
        assert_eq!(map.find_in_stage("prepare", "raw.txt"), Some((7, 12)));
        assert_eq!(map.find_in_stage("train", "raw.txt"), None);
        assert_eq!(
            map.declaration_order().collect::<Vec<_>>(),
            ["prepare", "train"]
        );
    }

    #[test]
    fn prefers_fields_and_whole_words_over_commands_and_parts() {
        let text = "stages:\n  s:\n    cmd: cp data.txt a.txt\n    deps: [data.txt]\n    outs:\n      - a.txt\n";
        let map = SourceMap::new(text);
        assert_eq!(map.find_in_stage("s", "data.txt"), Some((4, 12)));
        assert_eq!(map.find_in_stage("s", "a.txt"), Some((6, 9)));
        assert_eq!(map.find_in_stage("s", "cp"), Some((3, 10)));
    }

    #[test]
    fn finds_stages_declared_twice() {
        let map = SourceMap::new(
            "stages:\n  a:\n    cmd: x\n  b:\n    cmd: z\n  a:\n    cmd: y\n  a:\n    cmd: w\n",
        );
        assert_eq!(map.duplicates(), [("a", 2, 6), ("a", 2, 8)]);
        assert_eq!(map.stage_line("a"), Some(2));
    }
}
