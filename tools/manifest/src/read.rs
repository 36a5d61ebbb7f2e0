// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reading a parsed TOML document with spans: typed fields, required keys,
//! unknown keys, each mistake an error with its place and a hint.
//!
//! Built on `toml::de::DeTable`, which keeps the byte span of every key and
//! value. A [`TableReader`] remembers which keys were read, so that
//! [`TableReader::finish`] can report every other key as unknown, with the
//! nearest known key as a suggestion.

use std::borrow::Cow;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diag::{At, KeyPath, Place, Sink};

/// A TOML value with its span.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// A table key with its span.
type Key<'i> = Spanned<Cow<'i, str>>;

/// "a string", "an integer": a value's type for messages.
pub(crate) fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// One value found at a key or array index, with its place.
pub(crate) struct FieldAt<'a, 'i> {
    /// The value.
    pub(crate) value: &'a Value<'i>,
    /// Where it is.
    pub(crate) place: Place,
}

impl<'a, 'i> FieldAt<'a, 'i> {
    /// A field at `path`.
    pub(crate) fn new(value: &'a Value<'i>, path: KeyPath) -> Self {
        Self {
            place: Place {
                span: value.span(),
                path,
            },
            value,
        }
    }

    /// Reports that this value has the wrong type.
    pub(crate) fn wrong_type(&self, sink: &mut Sink<'_>, expected: &str, help: &str) {
        sink.error(
            &self.place,
            format!(
                "expected {expected}, found {}",
                type_name(self.value.get_ref())
            ),
            help,
        );
    }

    /// The value as a string.
    pub(crate) fn string(&self, sink: &mut Sink<'_>, help: &str) -> Option<At<String>> {
        if let DeValue::String(text) = self.value.get_ref() {
            Some(At::new(text.to_string(), self.place.clone()))
        } else {
            self.wrong_type(sink, "a string", help);
            None
        }
    }

    /// The value as an integer (as TOML wrote it, so `-1` and huge values
    /// are kept for the caller to judge).
    pub(crate) fn integer(&self, sink: &mut Sink<'_>, help: &str) -> Option<At<i128>> {
        match self.value.get_ref() {
            DeValue::Integer(integer) => {
                if let Ok(value) = i128::from_str_radix(integer.as_str(), integer.radix()) {
                    Some(At::new(value, self.place.clone()))
                } else {
                    sink.error(&self.place, "integer too large", help);
                    None
                }
            }
            _ => {
                self.wrong_type(sink, "an integer", help);
                None
            }
        }
    }

    /// The value as an integer in `range`, with `what` naming it in the
    /// error.
    pub(crate) fn integer_in(
        &self,
        sink: &mut Sink<'_>,
        range: std::ops::RangeInclusive<i128>,
        what: &str,
        help: &str,
    ) -> Option<At<i128>> {
        let value = self.integer(sink, help)?;
        if range.contains(&value.value) {
            Some(value)
        } else {
            sink.error(
                &self.place,
                format!(
                    "{what} {} is out of range: it must be {} to {}",
                    value.value,
                    range.start(),
                    range.end()
                ),
                help,
            );
            None
        }
    }

    /// The value as a boolean.
    pub(crate) fn boolean(&self, sink: &mut Sink<'_>, help: &str) -> Option<At<bool>> {
        if let DeValue::Boolean(value) = self.value.get_ref() {
            Some(At::new(*value, self.place.clone()))
        } else {
            self.wrong_type(sink, "`true` or `false`", help);
            None
        }
    }

    /// The value as an array's elements.
    pub(crate) fn array(&self, sink: &mut Sink<'_>, help: &str) -> Option<Vec<FieldAt<'a, 'i>>> {
        if let DeValue::Array(items) = self.value.get_ref() {
            Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| FieldAt::new(item, self.place.path.index(i)))
                    .collect(),
            )
        } else {
            self.wrong_type(sink, "an array", help);
            None
        }
    }

    /// The value as a table to read.
    pub(crate) fn table(
        &self,
        sink: &mut Sink<'_>,
        what: &'static str,
        help: &str,
    ) -> Option<TableReader<'a, 'i>> {
        if let DeValue::Table(table) = self.value.get_ref() {
            Some(TableReader::new(table, self.place.clone(), what))
        } else {
            self.wrong_type(sink, "a table", help);
            None
        }
    }

    /// Whether the value is a table.
    pub(crate) fn is_table(&self) -> bool {
        matches!(self.value.get_ref(), DeValue::Table(_))
    }

    /// Whether the value is a string.
    pub(crate) fn is_string(&self) -> bool {
        matches!(self.value.get_ref(), DeValue::String(_))
    }
}

/// A table being read.
pub(crate) struct TableReader<'a, 'i> {
    /// Entries in source order.
    entries: Vec<(&'a Key<'i>, &'a Value<'i>)>,
    /// Which entries were read.
    read: Vec<bool>,
    /// Where the table is (its header, inline braces or key).
    pub(crate) place: Place,
    /// What it is, for messages: "a partition", "the `[system]` table".
    what: &'static str,
}

impl<'a, 'i> TableReader<'a, 'i> {
    /// A reader over `table`, found at `place`.
    pub(crate) fn new(table: &'a DeTable<'i>, place: Place, what: &'static str) -> Self {
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let read = vec![false; entries.len()];
        Self {
            entries,
            read,
            place,
            what,
        }
    }

    /// The value at `key`, marking it read.
    pub(crate) fn get(&mut self, key: &str) -> Option<FieldAt<'a, 'i>> {
        let index = self.entries.iter().position(|(k, _)| k.get_ref() == key)?;
        if let Some(read) = self.read.get_mut(index) {
            *read = true;
        }
        let (_, value) = self.entries.get(index)?;
        Some(FieldAt::new(value, self.place.path.key(key)))
    }

    /// The value at `key`, or an error at the table if it is missing.
    pub(crate) fn require(
        &mut self,
        sink: &mut Sink<'_>,
        key: &str,
        help: &str,
    ) -> Option<FieldAt<'a, 'i>> {
        let field = self.get(key);
        if field.is_none() {
            sink.error(
                &self.place,
                format!("{} needs the key `{key}`", self.what),
                help,
            );
        }
        field
    }

    /// Every entry, in source order, marking all read: for tables whose keys
    /// are names (partitions, devices). Yields the key with its place and the
    /// value.
    pub(crate) fn entries(&mut self) -> Vec<(At<String>, FieldAt<'a, 'i>)> {
        self.read.fill(true);
        self.entries
            .iter()
            .map(|(key, value)| {
                let path = self.place.path.key(key.get_ref());
                let key_at = At::new(
                    key.get_ref().to_string(),
                    Place {
                        span: key.span(),
                        path: path.clone(),
                    },
                );
                (key_at, FieldAt::new(value, path))
            })
            .collect()
    }

    /// Renames what the table is, for messages about its keys.
    pub(crate) fn set_what(&mut self, what: &'static str) {
        self.what = what;
    }

    /// Reports every key not read as unknown; `allowed` lists what the table
    /// takes, for the hint.
    pub(crate) fn finish(self, sink: &mut Sink<'_>, allowed: &[&str]) {
        for ((key, _), read) in self.entries.iter().zip(&self.read) {
            if *read {
                continue;
            }
            let place = Place {
                span: key.span(),
                path: self.place.path.key(key.get_ref()),
            };
            let takes = format!("{} takes {}", self.what, list(allowed));
            let help = match closest(key.get_ref(), allowed) {
                Some(near) => format!("did you mean `{near}`? {takes}"),
                None => takes,
            };
            sink.error(&place, format!("unknown key `{}`", key.get_ref()), help);
        }
    }
}

/// "`a`, `b` and `c`".
pub(crate) fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("`{item}`")).collect();
    match quoted.split_last() {
        None => "nothing".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The candidate nearest to `word` by edit distance, if near enough to be a
/// likely typo.
pub(crate) fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|candidate| (edit_distance(word, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let next = (previous + cost)
                .min(above.saturating_add(1))
                .min(left.saturating_add(1));
            previous = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = next;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

/// The syntax errors worth reporting. A table declared twice makes the
/// parser also call every key inside the second declaration a duplicate; only
/// the table's own error is kept.
pub(crate) fn cascade_free<'e>(
    source: &str,
    errors: &'e [toml::de::Error],
) -> Vec<&'e toml::de::Error> {
    let line_start = |offset: usize| {
        source
            .get(..offset)
            .and_then(|s| s.rfind('\n'))
            .map_or(0, |n| n + 1)
    };
    let is_header = |offset: usize| {
        source
            .get(line_start(offset)..)
            .is_some_and(|line| line.trim_start().starts_with('['))
    };
    let mut kept = Vec::new();
    let mut duplicate_table: Option<usize> = None;
    for error in errors {
        let duplicate = error.message().contains("duplicate key");
        let Some(start) = error.span().map(|span| span.start).filter(|_| duplicate) else {
            kept.push(error);
            continue;
        };
        if is_header(start) {
            duplicate_table = Some(start);
            kept.push(error);
            continue;
        }
        let inside = duplicate_table.is_some_and(|table| {
            let after_header = source
                .get(table..)
                .and_then(|s| s.find('\n'))
                .map_or(start, |n| table + n);
            after_header <= start
                && source
                    .get(after_header..line_start(start))
                    .is_some_and(|between| {
                        !between.lines().any(|l| l.trim_start().starts_with('['))
                    })
        });
        if !inside {
            kept.push(error);
        }
    }
    kept
}

/// Reports a TOML syntax error.
pub(crate) fn syntax_error(sink: &mut Sink<'_>, error: &toml::de::Error) {
    let message = error.message().trim_end();
    let help = if message.contains("duplicate key") {
        "each key, partition and device may be defined only once in its table"
    } else {
        "fix the TOML syntax (see https://toml.io)"
    };
    match error.span() {
        Some(span) => sink.error(
            &Place {
                span,
                path: KeyPath::root(),
            },
            format!("TOML syntax: {message}"),
            help,
        ),
        None => sink.file_error(format!("TOML syntax: {message}"), help),
    }
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance, list};

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("memroy", "memory"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("memroy", &["program", "memory"]), Some("memory"));
        assert_eq!(closest("zzz", &["program", "memory"]), None);
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` and `c`");
    }
}
