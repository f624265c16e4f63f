//! Rendering a pipeline DAG for `pipe dag`: a terminal drawing in the style of
//! `git log --graph` / jj's graph log, plus Graphviz DOT, Mermaid, Markdown
//! and JSON. Nothing here prints; every renderer returns a value. Node names
//! are opaque strings (`split`, `train@cnn-f1`, `data/train.parquet`, ...).
//!
//! The input is a list of [`NodeView`]s in topological order, each naming its
//! parents by index; edges go parent → child (upstream → downstream). Parent
//! indices that break the order (`>=` the node's own index) are ignored and
//! duplicates count once, so every renderer sees the same edge set and none
//! of them can panic.
//!
//! # The lane algorithm behind [`DagView::text`]
//!
//! The drawing has one row per node, top to bottom in the given order. It
//! keeps a vector of *lanes* (columns, two characters wide); a busy lane
//! carries exactly one edge, parent → child, downwards from the parent's row
//! to the child's row and is labelled with the child it is waiting for. For
//! each node, in order:
//!
//! 1. The lanes waiting for the node are its incoming edges. None: the node
//!    is a root and takes the leftmost free lane. One: the node sits on it.
//!    Several: a *merge line* joins them into the leftmost one
//!    (`├─┴─╯`), right above the node, and the others become free.
//! 2. The node row is drawn: `●` in the node's lane, `│` in every other busy
//!    lane, then the name and, if any, two spaces and the detail, and two
//!    spaces and the description.
//! 3. The node's lane now carries the edge to its first child (or becomes
//!    free if it has none). Every further child gets the leftmost free lane,
//!    and a *fork line* (`├─┬─╮`) right below the node spreads the edges out.
//!    Free lanes are reused leftmost first, so a fork may also go left
//!    (`╭─┤`), and empty lanes at the right edge are dropped, which keeps the
//!    drawing narrow.
//! 4. When neither a fork line below one node nor a merge line above the next
//!    one separates two rows, a plain line of `│` is drawn between them; a
//!    lane that ended (a node without children) is blank there, so a root
//!    drawn right under a leaf is visibly not connected to it.
//!
//! Because a lane carries a single edge and edges only meet at a node they
//! share (a fork right below their common parent, a merge right above their
//! common child), every edge can be traced and no two edges are drawn as if
//! they were merged. A horizontal
//! stroke of a fork or merge line that passes an unrelated busy lane is drawn
//! *behind* it, `─│─`: the vertical stroke stays unbroken and the glyph has
//! no junction, whereas real junctions always use `├ ┤ ┼ ┬ ┴ ╭ ╮ ╯`.
//!
//! # The other formats
//!
//! [`DagView::dot`] writes a `strict digraph` with one quoted node line per
//! node and one line per edge. [`DagView::mermaid`] writes a `flowchart TD`
//! with node ids `n0`, `n1`, ... (so equal or odd names stay distinct) and
//! quoted labels using Mermaid entity codes; [`DagView::markdown`] wraps it in
//! a fenced block. [`DagView::json`] lists the nodes (name, detail and
//! description) and
//! the edges by name. Edges are listed per child, in node order, and for each
//! child in the order of its `parents` list.

use serde_json::{json, Value};

/// One node, given in topological order: every parent index is smaller than the node's own index.
///
/// Parent indices that are not smaller than the node's own index are ignored
/// by every renderer, and a parent listed twice counts once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub name: String,
    pub detail: Option<String>,
    /// A description (a stage's `desc:`), shown after the detail.
    pub desc: Option<String>,
    pub parents: Vec<usize>,
}

/// A pipeline DAG ready to be rendered; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DagView {
    pub nodes: Vec<NodeView>,
}

impl DagView {
    /// Terminal drawing with Unicode box-drawing characters, one row per node
    /// (`<lanes> ● name  detail`), with lane lines in between. Every line
    /// ends with `\n` and has no trailing whitespace; an empty view renders
    /// as an empty string.
    pub fn text(&self) -> String {
        let children = self.child_lists();
        // lanes[c] = Some(k): lane c carries an edge down to node k
        // (during a node's own row: the node itself).
        let mut lanes: Vec<Option<usize>> = Vec::new();
        let mut out = String::new();
        let mut need_gap = false;
        for (i, node) in self.nodes.iter().enumerate() {
            let incoming: Vec<usize> = (0..lanes.len()).filter(|&c| lanes[c] == Some(i)).collect();
            let col = match incoming.split_first() {
                Some((&hub, rest)) if !rest.is_empty() => {
                    push_line(&mut out, &connector_line(&lanes, hub, rest, true));
                    for &c in rest {
                        lanes[c] = None;
                    }
                    hub
                }
                Some((&hub, _)) => {
                    if need_gap {
                        push_line(&mut out, &lane_row(&lanes, None));
                    }
                    hub
                }
                None => {
                    if need_gap {
                        push_line(&mut out, &lane_row(&lanes, None));
                    }
                    allocate(&mut lanes, i)
                }
            };

            let mut row = lane_row(&lanes, Some(col));
            row.push(' ');
            push_clean(&mut row, &node.name);
            for text in [&node.detail, &node.desc].into_iter().flatten() {
                row.push_str("  ");
                push_clean(&mut row, text);
            }
            push_line(&mut out, &row);

            let kids = &children[i];
            lanes[col] = kids.first().copied();
            need_gap = true;
            if kids.len() > 1 {
                let new: Vec<usize> = kids[1..].iter().map(|&k| allocate(&mut lanes, k)).collect();
                push_line(&mut out, &connector_line(&lanes, col, &new, false));
                need_gap = false;
            }
            while lanes.last() == Some(&None) {
                lanes.pop();
            }
        }
        out
    }

    /// Graphviz source: `strict digraph {`, one `"name";` line per node, one
    /// `"a" -> "b";` line per edge, `}`. Backslashes and quotes in names are
    /// backslash-escaped.
    pub fn dot(&self) -> String {
        let mut s = String::from("strict digraph {\n");
        for node in &self.nodes {
            s.push_str(&format!("    {};\n", dot_quote(&node.name)));
        }
        for (p, c) in self.edges() {
            s.push_str(&format!(
                "    {} -> {};\n",
                dot_quote(&self.nodes[p].name),
                dot_quote(&self.nodes[c].name)
            ));
        }
        s.push_str("}\n");
        s
    }

    /// Mermaid source: `flowchart TD`, node lines `n0["name"]`, edge lines
    /// `n0 --> n1`. `"`, `#`, `<` and `>` in names become entity codes
    /// (`#quot;`, `#35;`, `#lt;`, `#gt;`).
    pub fn mermaid(&self) -> String {
        let mut s = String::from("flowchart TD\n");
        for (i, node) in self.nodes.iter().enumerate() {
            s.push_str(&format!("    n{i}[\"{}\"]\n", mermaid_escape(&node.name)));
        }
        for (p, c) in self.edges() {
            s.push_str(&format!("    n{p} --> n{c}\n"));
        }
        s
    }

    /// The [`mermaid`](Self::mermaid) text in a ```` ```mermaid ```` fenced block.
    pub fn markdown(&self) -> String {
        format!("```mermaid\n{}```\n", self.mermaid())
    }

    /// `{"nodes":[{"name":..,"detail":..,"desc":..}],"edges":[{"from":name,"to":name}]}`;
    /// a missing detail or description is `null`.
    pub fn json(&self) -> Value {
        let nodes: Vec<Value> = self
            .nodes
            .iter()
            .map(|n| json!({ "name": n.name, "detail": n.detail, "desc": n.desc }))
            .collect();
        let edges: Vec<Value> = self
            .edges()
            .into_iter()
            .map(|(p, c)| json!({ "from": self.nodes[p].name, "to": self.nodes[c].name }))
            .collect();
        json!({ "nodes": nodes, "edges": edges })
    }

    /// Valid, de-duplicated parents of every node, in the given order.
    fn parent_lists(&self) -> Vec<Vec<usize>> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let mut ps: Vec<usize> = Vec::with_capacity(node.parents.len());
                for &p in &node.parents {
                    if p < i && !ps.contains(&p) {
                        ps.push(p);
                    }
                }
                ps
            })
            .collect()
    }

    /// Children of every node, in ascending index order.
    fn child_lists(&self) -> Vec<Vec<usize>> {
        let mut children = vec![Vec::new(); self.nodes.len()];
        for (c, ps) in self.parent_lists().into_iter().enumerate() {
            for p in ps {
                children[p].push(c);
            }
        }
        children
    }

    /// All edges `(parent, child)`, per child in node order.
    fn edges(&self) -> Vec<(usize, usize)> {
        self.parent_lists()
            .into_iter()
            .enumerate()
            .flat_map(|(c, ps)| ps.into_iter().map(move |p| (p, c)))
            .collect()
    }
}

/// Puts `target` into the leftmost free lane and returns that lane.
fn allocate(lanes: &mut Vec<Option<usize>>, target: usize) -> usize {
    match lanes.iter().position(Option::is_none) {
        Some(c) => {
            lanes[c] = Some(target);
            c
        }
        None => {
            lanes.push(Some(target));
            lanes.len() - 1
        }
    }
}

/// A node row's lane part (`node` = the node's lane, drawn `●`) or, with
/// `node` = `None`, a plain line of `│`.
fn lane_row(lanes: &[Option<usize>], node: Option<usize>) -> String {
    let busy = lanes.iter().rposition(Option::is_some).map_or(0, |c| c + 1);
    let width = busy.max(node.map_or(0, |c| c + 1));
    let mut s = String::new();
    for c in 0..width {
        if c > 0 {
            s.push(' ');
        }
        s.push(if Some(c) == node {
            '●'
        } else if lanes.get(c).is_some_and(Option::is_some) {
            '│'
        } else {
            ' '
        });
    }
    s
}

/// Which strokes of a connector-line cell are drawn.
#[derive(Clone, Copy, Default)]
struct Cell {
    up: bool,
    down: bool,
    left: bool,
    right: bool,
    /// A busy lane that a horizontal stroke passes behind (`─│─`).
    behind: bool,
}

impl Cell {
    fn glyph(self) -> char {
        if self.behind {
            return '│';
        }
        match (self.up, self.down, self.left, self.right) {
            (true, true, false, false) => '│',
            (true, true, false, true) => '├',
            (true, true, true, false) => '┤',
            (true, true, true, true) => '┼',
            (false, true, false, true) => '╭',
            (false, true, true, false) => '╮',
            (true, false, false, true) => '╰',
            (true, false, true, false) => '╯',
            (false, true, true, true) => '┬',
            (true, false, true, true) => '┴',
            (true, false, false, false) => '╵',
            (false, true, false, false) => '╷',
            (false, false, false, false) => ' ',
            (false, false, _, _) => '─',
        }
    }
}

/// A merge line (`merge`: the lanes `ends` flow into lane `hub`, which goes
/// on down into the node) or a fork line (the node's lane `hub` spreads into
/// the new lanes `ends`). `lanes` is the state around the line; lanes other
/// than `hub` and `ends` pass straight through.
fn connector_line(lanes: &[Option<usize>], hub: usize, ends: &[usize], merge: bool) -> String {
    let lo = ends.iter().copied().fold(hub, usize::min);
    let hi = ends.iter().copied().fold(hub, usize::max);
    let width = lanes.len().max(hi + 1);
    let cells: Vec<Cell> = (0..width)
        .map(|c| {
            let busy = lanes.get(c).is_some_and(Option::is_some);
            if c == hub {
                Cell {
                    up: true,
                    down: true,
                    left: lo < c,
                    right: c < hi,
                    behind: false,
                }
            } else if ends.contains(&c) {
                Cell {
                    up: merge,
                    down: !merge,
                    left: lo < c,
                    right: c < hi,
                    behind: false,
                }
            } else if lo < c && c < hi {
                Cell {
                    up: busy,
                    down: busy,
                    left: true,
                    right: true,
                    behind: busy,
                }
            } else {
                Cell {
                    up: busy,
                    down: busy,
                    ..Cell::default()
                }
            }
        })
        .collect();
    let mut s = String::new();
    for (c, cell) in cells.iter().enumerate() {
        if c > 0 {
            s.push(if cells[c - 1].right { '─' } else { ' ' });
        }
        s.push(cell.glyph());
    }
    s
}

/// Appends `line` without trailing whitespace, plus `\n`.
fn push_line(out: &mut String, line: &str) {
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Appends a name or detail, escaping control characters (a newline in a
/// name must not break the drawing).
fn push_clean(out: &mut String, s: &str) {
    for ch in s.chars() {
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
}

fn dot_quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for ch in s.chars() {
        match ch {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            _ => q.push(ch),
        }
    }
    q.push('"');
    q
}

fn mermaid_escape(s: &str) -> String {
    let mut e = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '#' => e.push_str("#35;"),
            '"' => e.push_str("#quot;"),
            '<' => e.push_str("#lt;"),
            '>' => e.push_str("#gt;"),
            '\n' | '\r' => e.push(' '),
            _ => e.push(ch),
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn dag(spec: &[(&str, &[usize])]) -> DagView {
        DagView {
            nodes: spec
                .iter()
                .map(|(name, parents)| NodeView {
                    name: name.to_string(),
                    detail: None,
                    desc: None,
                    parents: parents.to_vec(),
                })
                .collect(),
        }
    }

    fn diamond() -> DagView {
        dag(&[("a", &[]), ("b", &[0]), ("c", &[0]), ("d", &[1, 2])])
    }

    /// Checks the exact drawing and that it parses back to the same DAG.
    fn check(view: &DagView, expected: &str) {
        assert_eq!(view.text(), expected, "\n{}", view.text());
        check_roundtrip(view);
    }

    #[test]
    fn empty_view_renders_nothing() {
        let view = DagView::default();
        assert_eq!(view.text(), "");
        assert_eq!(view.dot(), "strict digraph {\n}\n");
        assert_eq!(view.mermaid(), "flowchart TD\n");
        assert_eq!(view.markdown(), "```mermaid\nflowchart TD\n```\n");
        assert_eq!(view.json(), json!({ "nodes": [], "edges": [] }));
    }

    #[test]
    fn single_node() {
        check(&dag(&[("only", &[])]), "● only\n");
    }

    #[test]
    fn chain() {
        check(
            &dag(&[("a", &[]), ("b", &[0]), ("c", &[1])]),
            "\
● a
│
● b
│
● c
",
        );
    }

    #[test]
    fn diamond_text() {
        check(
            &diamond(),
            "\
● a
├─╮
● │ b
│ │
│ ● c
├─╯
● d
",
        );
    }

    #[test]
    fn sentiment_pipeline_with_details() {
        let mut view = dag(&[
            ("split", &[]),
            ("vectorize", &[0]),
            ("fit", &[1]),
            ("score", &[2, 1]),
        ]);
        view.nodes[2].detail = Some("changed: params.C".to_string());
        view.nodes[3].detail = Some("up to date".to_string());
        check(
            &view,
            "\
● split
│
● vectorize
├─╮
● │ fit  changed: params.C
├─╯
● score  up to date
",
        );
    }

    #[test]
    fn two_independent_chains() {
        check(
            &dag(&[("a", &[]), ("b", &[0]), ("c", &[]), ("d", &[2])]),
            "\
● a
│
● b

● c
│
● d
",
        );
    }

    #[test]
    fn interleaved_components_use_side_by_side_lanes() {
        check(
            &dag(&[("a", &[]), ("x", &[]), ("b", &[0]), ("y", &[1])]),
            "\
● a
│
│ ● x
│ │
● │ b
  │
  ● y
",
        );
    }

    #[test]
    fn three_parents() {
        check(
            &dag(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[0, 1, 2])]),
            "\
● a
│
│ ● b
│ │
│ │ ● c
├─┴─╯
● d
",
        );
    }

    #[test]
    fn fan_out_of_three() {
        check(
            &dag(&[("a", &[]), ("b", &[0]), ("c", &[0]), ("d", &[0])]),
            "\
● a
├─┬─╮
● │ │ b
  │ │
  ● │ c
    │
    ● d
",
        );
    }

    #[test]
    fn long_edge_skipping_a_row() {
        check(
            &dag(&[("a", &[]), ("b", &[0]), ("c", &[1, 0])]),
            "\
● a
├─╮
● │ b
├─╯
● c
",
        );
    }

    #[test]
    fn long_edge_over_several_rows() {
        check(
            &dag(&[("a", &[]), ("b", &[0]), ("c", &[1]), ("d", &[2, 0])]),
            "\
● a
├─╮
● │ b
│ │
● │ c
├─╯
● d
",
        );
    }

    #[test]
    fn merge_passes_behind_an_unrelated_lane() {
        // a -> d and c -> d merge across the lane b -> e.
        check(
            &dag(&[
                ("a", &[]),
                ("b", &[]),
                ("c", &[]),
                ("d", &[0, 2]),
                ("e", &[1]),
            ]),
            "\
● a
│
│ ● b
│ │
│ │ ● c
├─│─╯
● │ d
  │
  ● e
",
        );
    }

    #[test]
    fn fork_reuses_free_lanes_on_both_sides() {
        // y ends and frees lane 0, so q's second child goes left.
        check(
            &dag(&[
                ("x", &[]),
                ("r", &[]),
                ("y", &[0]),
                ("q", &[1]),
                ("s", &[3]),
                ("t", &[3]),
                ("u", &[3]),
            ]),
            "\
● x
│
│ ● r
│ │
● │ y
  │
  ● q
╭─┼─╮
│ ● │ s
│   │
●   │ t
    │
    ● u
",
        );
    }

    #[test]
    fn names_are_opaque_and_sanitised() {
        let mut view = dag(&[("data/train.parquet", &[]), ("train@cnn-f1\nx", &[0])]);
        view.nodes[0].detail = Some("  ".to_string());
        assert_eq!(view.text(), "● data/train.parquet\n│\n● train@cnn-f1\\nx\n");
    }

    #[test]
    fn invalid_and_duplicate_parents_are_ignored() {
        let view = dag(&[("a", &[0, 7]), ("b", &[0, 0, 1, 5])]);
        assert_eq!(view.text(), "● a\n│\n● b\n");
        assert_eq!(view.edges(), vec![(0, 1)]);
        assert_eq!(
            view.dot(),
            "strict digraph {\n    \"a\";\n    \"b\";\n    \"a\" -> \"b\";\n}\n"
        );
    }

    fn quoted_diamond() -> DagView {
        let mut view = dag(&[
            ("prep", &[]),
            ("train \"big\"", &[0]),
            ("train#2", &[0]),
            ("eval", &[1, 2]),
        ]);
        view.nodes[0].detail = Some("cached".to_string());
        view
    }

    #[test]
    fn dot_of_diamond() {
        assert_eq!(
            quoted_diamond().dot(),
            r#"strict digraph {
    "prep";
    "train \"big\"";
    "train#2";
    "eval";
    "prep" -> "train \"big\"";
    "prep" -> "train#2";
    "train \"big\"" -> "eval";
    "train#2" -> "eval";
}
"#
        );
        let mut odd = dag(&[("back\\slash", &[])]);
        odd.nodes[0].name.push('\\');
        assert_eq!(
            odd.dot(),
            "strict digraph {\n    \"back\\\\slash\\\\\";\n}\n"
        );
    }

    #[test]
    fn mermaid_and_markdown_of_diamond() {
        let mermaid = r#"flowchart TD
    n0["prep"]
    n1["train #quot;big#quot;"]
    n2["train#35;2"]
    n3["eval"]
    n0 --> n1
    n0 --> n2
    n1 --> n3
    n2 --> n3
"#;
        assert_eq!(quoted_diamond().mermaid(), mermaid);
        assert_eq!(
            quoted_diamond().markdown(),
            format!("```mermaid\n{mermaid}```\n")
        );
    }

    #[test]
    fn json_of_diamond() {
        assert_eq!(
            quoted_diamond().json(),
            json!({
                "nodes": [
                    { "name": "prep", "detail": "cached", "desc": null },
                    { "name": "train \"big\"", "detail": null, "desc": null },
                    { "name": "train#2", "detail": null, "desc": null },
                    { "name": "eval", "detail": null, "desc": null },
                ],
                "edges": [
                    { "from": "prep", "to": "train \"big\"" },
                    { "from": "prep", "to": "train#2" },
                    { "from": "train \"big\"", "to": "eval" },
                    { "from": "train#2", "to": "eval" },
                ],
            })
        );
    }

    /// Arms of a connector-line glyph: (up, down, left, right).
    fn arms(ch: char) -> (bool, bool, bool, bool) {
        match ch {
            ' ' => (false, false, false, false),
            '│' => (true, true, false, false),
            '─' => (false, false, true, true),
            '├' => (true, true, false, true),
            '┤' => (true, true, true, false),
            '┼' => (true, true, true, true),
            '╭' => (false, true, false, true),
            '╮' => (false, true, true, false),
            '╰' => (true, false, false, true),
            '╯' => (true, false, true, false),
            '┬' => (false, true, true, true),
            '┴' => (true, false, true, true),
            other => panic!("unexpected glyph {other:?}"),
        }
    }

    /// Reads a drawing back, tracking which edges (by source node) each lane
    /// carries, and returns the labels and edges it shows. Panics on anything
    /// inconsistent: strokes that do not join up, lanes appearing or
    /// vanishing, a junction with several inputs and several outputs, a fork
    /// that does not start right below its node, or merged edges that do not
    /// end in the node right below.
    fn parse(text: &str) -> (Vec<String>, BTreeSet<(usize, usize)>) {
        let mut lanes: Vec<Option<Vec<usize>>> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        let mut edges = BTreeSet::new();
        // Lane of the node drawn on the previous line.
        let mut fresh: Option<usize> = None;
        // Lane holding merged edges; must end in the next row's node.
        let mut merged: Option<usize> = None;
        for line in text.lines() {
            let chars: Vec<char> = line.chars().collect();
            let at = |i: usize| chars.get(i).copied().unwrap_or(' ');
            let busy =
                |lanes: &[Option<Vec<usize>>], c: usize| lanes.get(c).is_some_and(Option::is_some);
            if let Some(pos) = chars.iter().position(|&ch| ch == '●') {
                assert!(fresh.is_none(), "two node rows in a row");
                assert_eq!(pos % 2, 0, "misaligned node in {line:?}");
                let col = pos / 2;
                let last = lanes
                    .iter()
                    .rposition(Option::is_some)
                    .map_or(col, |c| c.max(col));
                for c in 0..=last {
                    if c != col {
                        let want = if busy(&lanes, c) { '│' } else { ' ' };
                        assert_eq!(at(2 * c), want, "lane {c} in {line:?}");
                    }
                    assert_eq!(at(2 * c + 1), ' ', "{line:?}");
                }
                let label: String = chars.iter().skip(2 * last + 2).collect();
                let node = labels.len();
                labels.push(label);
                if lanes.len() <= col {
                    lanes.resize(col + 1, None);
                }
                for p in lanes[col].take().unwrap_or_default() {
                    assert!(edges.insert((p, node)), "edge drawn twice");
                }
                assert!(
                    merged.is_none() || merged == Some(col),
                    "merge away from node"
                );
                merged = None;
                lanes[col] = Some(vec![node]);
                fresh = Some(col);
                continue;
            }
            assert!(merged.is_none(), "merge line not followed by its node");
            let width = lanes.len().max(chars.len().div_ceil(2));
            let hz = |c: usize| at(2 * c + 1) == '─'; // stroke between c and c + 1
            let mut cells = Vec::new(); // (up, down, left, right, behind)
            for c in 0..width {
                let left = c > 0 && hz(c - 1);
                let right = hz(c);
                let ch = at(2 * c);
                let cell = if ch == '│' && (left || right) {
                    assert!(left && right, "half crossing at {c} in {line:?}");
                    (true, true, true, true, true)
                } else {
                    let (u, d, l, r) = arms(ch);
                    assert_eq!((l, r), (left, right), "strokes at {c} in {line:?}");
                    (u, d, l, r, false)
                };
                let (up, down) = (cell.0, cell.1);
                if up {
                    assert!(busy(&lanes, c), "stroke from nowhere at {c} in {line:?}");
                } else if busy(&lanes, c) {
                    assert_eq!(fresh, Some(c), "edge lost at {c} in {line:?}");
                }
                assert!(up || down || ch == ' ' || ch == '─', "{line:?}");
                cells.push(cell);
            }
            let mut next: Vec<Option<Vec<usize>>> = vec![None; width];
            let mut c = 0;
            while c < width {
                let (up, down, _, right, _) = cells[c];
                if !right {
                    if up && down {
                        next[c] = lanes[c].clone();
                    }
                    c += 1;
                    continue;
                }
                // A horizontal group from c to the end of the stroke.
                let mut end = c;
                while cells[end].3 {
                    end += 1;
                }
                let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
                for (k, &(up, down, _, _, behind)) in cells.iter().enumerate().take(end + 1).skip(c)
                {
                    if behind {
                        next[k] = lanes[k].clone();
                        continue;
                    }
                    if up {
                        inputs.push(k);
                    }
                    if down {
                        outputs.push(k);
                    }
                }
                assert!(!inputs.is_empty() && !outputs.is_empty(), "{line:?}");
                if let [input] = inputs[..] {
                    assert_eq!(fresh, Some(input), "fork away from its node: {line:?}");
                    for &o in &outputs {
                        next[o] = lanes[input].clone();
                    }
                } else {
                    let [output] = outputs[..] else {
                        panic!("ambiguous junction in {line:?}");
                    };
                    assert!(merged.is_none(), "two merges before one node");
                    let mut all: Vec<usize> = Vec::new();
                    for &i in &inputs {
                        all.extend(lanes[i].clone().unwrap());
                    }
                    next[output] = Some(all);
                    merged = Some(output);
                }
                c = end + 1;
            }
            lanes = next;
            fresh = None;
        }
        if let Some(col) = fresh {
            lanes[col] = None;
        }
        assert!(lanes.iter().all(Option::is_none), "edges left dangling");
        (labels, edges)
    }

    fn check_roundtrip(view: &DagView) {
        let text = view.text();
        assert!(text.is_empty() || text.ends_with('\n'));
        for line in text.lines() {
            assert_eq!(line, line.trim_end(), "trailing whitespace");
        }
        assert_eq!(text.matches('●').count(), view.nodes.len());
        let (labels, edges) = parse(&text);
        let want_labels: Vec<String> = view
            .nodes
            .iter()
            .map(|n| match &n.detail {
                Some(d) if !d.trim().is_empty() => format!("{}  {}", n.name, d),
                _ => n.name.clone(),
            })
            .collect();
        assert_eq!(labels, want_labels, "\n{text}");
        let want_edges: BTreeSet<(usize, usize)> = view.edges().into_iter().collect();
        assert_eq!(edges, want_edges, "\n{text}");
    }

    #[test]
    fn hand_made_dags_round_trip() {
        let views = [
            diamond(),
            quoted_diamond(),
            // A sweep: prepare -> 4 trainers -> evaluate, plus a report.
            dag(&[
                ("prepare", &[]),
                ("train@a", &[0]),
                ("train@b", &[0]),
                ("train@c", &[0]),
                ("train@d", &[0]),
                ("evaluate", &[1, 2, 3, 4]),
                ("report", &[5, 0]),
            ]),
            // Crossings and interleaved components.
            dag(&[
                ("x", &[]),
                ("a", &[]),
                ("y", &[0]),
                ("b", &[1]),
                ("z", &[0, 2]),
                ("w", &[1, 3]),
                ("v", &[4, 1]),
            ]),
            // K3,3: cannot be drawn without crossings.
            dag(&[
                ("a", &[]),
                ("b", &[]),
                ("c", &[]),
                ("x", &[0, 1, 2]),
                ("y", &[0, 1, 2]),
                ("z", &[0, 1, 2]),
            ]),
        ];
        for view in &views {
            check_roundtrip(view);
        }
    }

    /// Deterministic pseudo-random DAGs, including invalid and duplicate
    /// parents, must all draw and parse back to the same edges.
    #[test]
    fn random_dags_round_trip() {
        let mut state: u64 = 0x5eed;
        let mut rand = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for _ in 0..2000 {
            let len = 1 + rand(16) as usize;
            let density = 5 + rand(60);
            let nodes = (0..len)
                .map(|i| {
                    let mut parents: Vec<usize> = (0..i).filter(|_| rand(100) < density).collect();
                    if rand(10) == 0 {
                        parents.push(i + rand(3) as usize); // invalid
                    }
                    if !parents.is_empty() && rand(10) == 0 {
                        parents.push(parents[0]); // duplicate
                    }
                    NodeView {
                        name: format!("n{i}"),
                        detail: (rand(3) == 0).then(|| format!("d{i}")),
                        desc: None,
                        parents,
                    }
                })
                .collect();
            check_roundtrip(&DagView { nodes });
        }
    }
}
