//! Reading YAML that may be hostile: alias bombs.
//!
//! An alias (`*a`) repeats the node its anchor (`&a`) names, so a few lines
//! can stand for billions of values ("billion laughs"). yaml_serde stops the
//! classic form, aliases of aliases, by capping the number of alias jumps
//! at 100 per event of the file, but each jump may repeat a large node: a
//! 20 KB file of `[*a, *a, …]` over a list of 10,000 items makes 100
//! million values and exhausts the memory of the machine. Nesting is
//! bounded already: yaml_serde refuses a document more than 128 levels
//! deep, which is also what keeps the recursive walks over a value
//! (templating, `to_json`, flattening) far from the end of the stack.
//!
//! [`from_str`] parses like `yaml_serde::from_str`, except that a text that
//! may hold an alias is first walked without building anything, counting one
//! unit per node plus the bytes of each string, and refused when that total
//! passes [`budget`]: twice the length of the text (which covers any file
//! without aliases, since a node takes at least a byte to write and escapes
//! at most double one) plus [`ALIAS_ALLOWANCE`], room for the aliases real
//! files use to share a list or a mapping. The walk stops as soon as the
//! budget is spent, so a bomb costs milliseconds, and a text without an
//! anchor (`&name`) and a `*` is not walked at all.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, Visitor};

use super::limits::thousands;

/// Units (nodes and string bytes) that aliases may add to a file.
pub const ALIAS_ALLOWANCE: usize = 1 << 20;

/// The most units a text of `len` bytes may expand to.
pub fn budget(len: usize) -> usize {
    len.saturating_mul(2).saturating_add(ALIAS_ALLOWANCE)
}

/// `yaml_serde::from_str`, refusing texts whose aliases expand them far
/// beyond their size (see the module documentation).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, yaml_serde::Error> {
    check_aliases(text)?;
    yaml_serde::from_str(text)
}

/// What to do about a YAML error that comes from these limits rather than
/// from the syntax.
pub fn hint(error: &yaml_serde::Error) -> Option<&'static str> {
    let message = error.to_string();
    if message.contains("alias bomb") {
        Some("write the repeated values out, or alias smaller parts of the file")
    } else if message.contains("recursion limit exceeded") {
        Some("YAML is read at most 128 levels deep: flatten the nested values")
    } else if message.contains("repetition limit exceeded") {
        Some("the file repeats its aliases too many times: write the repeated values out")
    } else {
        None
    }
}

/// Errs when the aliases of `text` expand it past [`budget`]. Other problems
/// are left to the real parse, which reports them with their location.
pub fn check_aliases(text: &str) -> Result<(), yaml_serde::Error> {
    if !may_have_aliases(text) {
        return Ok(());
    }
    let limit = budget(text.len());
    if within(text, limit) {
        return Ok(());
    }
    Err(de::Error::custom(format!(
        "its aliases (`*name`) expand its {} bytes to more than {} values and bytes of text \
         (an alias bomb); pipe refuses such YAML",
        thousands(text.len() as u128),
        thousands(limit as u128)
    )))
}

/// False when `text` certainly has no alias: an alias needs an anchor, a
/// `&` that starts a node (at the start of a line or after a space, `[`,
/// `{`, `,`, `:`, `?` or `-`) followed by its name; `a && b` and `2>&1` in
/// a command are not one. True for some texts without any (a quoted
/// `" &x"`), which only costs the walk.
fn may_have_aliases(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.contains('*')
        && bytes.iter().enumerate().any(|(i, &b)| {
            b == b'&'
                // 0xBF: the end of a byte order mark.
                && (i == 0 || b" \t\r\n[{,:?-\xbf".contains(&bytes[i - 1]))
                && bytes
                    .get(i + 1)
                    .is_some_and(|next| !b" \t\r\n&".contains(next))
        })
}

/// False when the document in `text` expands to more than `limit` units.
/// A text that does not parse is within: the real parse reports it.
fn within(text: &str, limit: usize) -> bool {
    let left = Cell::new(limit);
    let over = Cell::new(false);
    let count = Count {
        left: &left,
        over: &over,
    };
    let _ = count.deserialize(yaml_serde::Deserializer::from_str(text));
    !over.get()
}

/// Walks a document, spending one unit per node and one per string byte;
/// fails once the budget is spent.
#[derive(Clone, Copy)]
struct Count<'a> {
    left: &'a Cell<usize>,
    over: &'a Cell<bool>,
}

impl Count<'_> {
    fn spend<E: de::Error>(self, units: usize) -> Result<(), E> {
        match self.left.get().checked_sub(units) {
            Some(rest) => {
                self.left.set(rest);
                Ok(())
            }
            None => {
                self.over.set(true);
                Err(E::custom("alias expansion budget spent"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.spend(1 + v.len())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.spend(1 + v.len())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.spend(1)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend(1)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.spend(1)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag value`): the tag, then the value.
        let ((), variant) = data.variant_seed(self)?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_serde::Value;

    /// `a` is a list of `n` strings; `b` repeats it `m` times; `c` repeats
    /// `b` `m` times: n·m² values in a text of about n + 3m·2 bytes.
    fn wide_bomb(n: usize, m: usize) -> String {
        format!(
            "a: &a [{}]\nb: &b [{}]\nc: [{}]\n",
            vec!["x"; n].join(","),
            vec!["*a"; m].join(","),
            vec!["*b"; m].join(",")
        )
    }

    #[test]
    fn refuses_aliases_that_expand_far_beyond_the_text() {
        let text = wide_bomb(10_000, 100);
        let started = std::time::Instant::now();
        let err = from_str::<Value>(&text).unwrap_err().to_string();
        assert!(err.contains("alias bomb"), "{err}");
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    }

    #[test]
    fn refuses_one_long_string_repeated() {
        let text = format!(
            "a: &a \"{}\"\nb: [{}]\n",
            "x".repeat(100_000),
            vec!["*a"; 1000].join(",")
        );
        assert!(from_str::<Value>(&text).is_err());
    }

    #[test]
    fn keeps_files_with_modest_aliases_and_reports_other_errors_as_yaml_serde_does() {
        let text =
            "base: &base {lr: 0.1, layers: [1, 2]}\nsmall: *base\nlarge: *base\ncmd: a && b *\n";
        let v: Value = from_str(text).unwrap();
        assert_eq!(v["large"]["lr"], Value::from(0.1));
        let bad = "a: &a [1\nb: *a\n";
        assert_eq!(
            from_str::<Value>(bad).unwrap_err().to_string(),
            yaml_serde::from_str::<Value>(bad).unwrap_err().to_string()
        );
    }

    #[test]
    fn only_texts_that_may_have_an_anchor_are_walked() {
        for text in [
            "cmd: cat data/* && echo ok 2>&1 > out.txt",
            "cmd: a & b &&c *",
            "plain: text",
        ] {
            assert!(!may_have_aliases(text), "{text}");
        }
        for text in [
            "a: &x 1\nb: *x",
            "[&x 1, *x]",
            "&x a: *x",
            "{\"a\":&x 1, b: *x}",
            "- &x 1\n- *x",
            "\u{feff}&x a: *x",
        ] {
            assert!(may_have_aliases(text), "{text}");
            let _: Value = from_str(text).unwrap();
        }
    }

    #[test]
    fn a_file_without_aliases_is_always_within_budget() {
        // Short nodes, escapes that grow (`\L` is 3 bytes), empty strings.
        let text = format!(
            "l: [{}]\ns: \"{}\"\ne: [{}]\nr: &r 1\nq: *r\n",
            vec!["x"; 50_000].join(","),
            "\\L".repeat(50_000),
            vec!["''"; 50_000].join(",")
        );
        assert!(within(&text, text.len() * 2));
        assert!(!within(&wide_bomb(100, 10), 100 * 10 * 10));
    }
}
