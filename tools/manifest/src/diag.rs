// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Diagnostics: every error found, each with its file, line, column, key, what
//! is wrong and what would fix it.
//!
//! Checks never stop at the first error: they push onto a [`Sink`] and carry
//! on with what they could read. [`Diagnostics`] is what the caller sees; its
//! `Display` is the text `cargo xtask check` prints and the golden tests in
//! `tests/manifests/err/` compare against.

use std::fmt;
use std::ops::Range;

/// One error, located.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as the caller named it.
    pub file: String,
    /// 1-based line and column (in characters) of the offending key or
    /// value, if the error has a place in the file.
    pub position: Option<(usize, usize)>,
    /// The dotted key path, e.g. `partitions.console.memory`; empty for
    /// errors about the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// What would fix it.
    pub help: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.file)?;
        if let Some((line, column)) = self.position {
            write!(f, ":{line}:{column}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        writeln!(f, ": {}", self.message)?;
        if !self.help.is_empty() {
            writeln!(f, "  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// Every error found in a manifest (and the platform description it names).
/// Never empty when returned as an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics {
    /// The errors, in file order.
    pub errors: Vec<Diagnostic>,
}

impl Diagnostics {
    /// How many errors.
    #[must_use]
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for error in &self.errors {
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Where a value sits in the document: `partitions.console.memory`,
/// `channels[2].clients[0]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Step>);

impl KeyPath {
    /// The document's root.
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path, then `key`.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_owned()));
        Self(steps)
    }

    /// This path, then `[index]`.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut steps = self.0.clone();
        steps.push(Step::Index(index));
        Self(steps)
    }
}

/// Whether TOML accepts `key` unquoted.
fn is_bare_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare_key(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Where something is: its byte span in a file and its key path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Place {
    /// Byte range in the source.
    pub(crate) span: Range<usize>,
    /// Dotted key path.
    pub(crate) path: KeyPath,
}

/// A value with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct At<T> {
    /// The value.
    pub(crate) value: T,
    /// Where it was written.
    pub(crate) place: Place,
}

impl<T> At<T> {
    /// Pairs a value with its place.
    pub(crate) fn new(value: T, place: Place) -> Self {
        Self { value, place }
    }
}

/// Collects errors for one source file.
pub(crate) struct Sink<'s> {
    /// The file's name as shown.
    file: String,
    /// Its text, to turn byte offsets into lines and columns.
    source: &'s str,
    /// Errors so far.
    errors: Vec<(usize, Diagnostic)>,
}

impl<'s> Sink<'s> {
    /// A sink for `source`, shown as `file`.
    pub(crate) fn new(file: &str, source: &'s str) -> Self {
        Self {
            file: file.to_owned(),
            source,
            errors: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of byte `offset`.
    fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.source.len());
        while !self.source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// Records an error at `place`.
    pub(crate) fn error(
        &mut self,
        place: &Place,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        let position = self.position(place.span.start);
        self.errors.push((
            place.span.start,
            Diagnostic {
                file: self.file.clone(),
                position: Some(position),
                key: place.path.to_string(),
                message: message.into(),
                help: help.into(),
            },
        ));
    }

    /// Records an error about the whole file.
    pub(crate) fn file_error(&mut self, message: impl Into<String>, help: impl Into<String>) {
        self.errors.push((
            0,
            Diagnostic {
                file: self.file.clone(),
                position: None,
                key: String::new(),
                message: message.into(),
                help: help.into(),
            },
        ));
    }

    /// How many errors were recorded.
    pub(crate) fn count(&self) -> usize {
        self.errors.len()
    }

    /// Whether any error was recorded.
    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors, in file order (a stable sort: errors at one place keep
    /// the order they were found in).
    pub(crate) fn into_diagnostics(mut self) -> Vec<Diagnostic> {
        self.errors.sort_by_key(|(offset, _)| *offset);
        self.errors.into_iter().map(|(_, error)| error).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{KeyPath, Place, Sink};

    #[test]
    fn positions_count_lines_and_characters() {
        let source = "a = 1\nné = \"x\"\n";
        let mut sink = Sink::new("f.toml", source);
        let place = Place {
            span: source.find('=').unwrap()..0,
            path: KeyPath::root().key("a"),
        };
        sink.error(&place, "m", "h");
        let second = source.rfind('=').unwrap();
        sink.error(
            &Place {
                span: second..second,
                path: KeyPath::root().key("n é").index(2),
            },
            "m2",
            "",
        );
        let text: String = sink
            .into_diagnostics()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            "error: f.toml:1:3: a: m\n  help: h\nerror: f.toml:2:4: \"n é\"[2]: m2\n"
        );
    }
}
