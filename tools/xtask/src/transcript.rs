// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reading what a machine's console printed: its lines, and who wrote each.
//!
//! Every line a partition prints reaches the console with the partition's
//! name in front, `[name] text`: the console service puts it there for its
//! clients, the kernel for a partition that logs through it (to the UART, or
//! to the kernel-log reader, which prints the kernel's lines as they are).
//! Both show a partition's control characters as `.` and drop its carriage
//! returns (`hv_abi::console::shown`), so a partition's text can neither
//! start a line of its own nor move a terminal's cursor back over its
//! prefix. A line without such a prefix is therefore the kernel's (or,
//! before the kernel starts, the firmware's: no partition runs then).
//!
//! **The checks.** A system test's checks go through [`Transcript`]: a
//! needle matches only at the start of a line, and only a line of the
//! writer it names. `[ping] ping: done` is a line of `ping` starting with
//! `ping: done`; `bulkhead: fault: ...` is a kernel line starting with that
//! text. So a partition that prints `bulkhead: fault: ...` or
//! `[ping] ping: done` has printed a line of its own, `[mimic] bulkhead:
//! fault: ...`, which matches neither (the system tests `oracle-*` try it).
//! A needle's line end (`\n`, `\r\n`, or a `\r` that ends it) makes the
//! text before it the whole line; a needle of several lines matches
//! consecutive lines.
//!
//! **What it trusts.** The partitions that write the bytes: the console and
//! the UART driver (with the kernel, which writes only until the console
//! takes over). A manifest that gives the console UART to another partition
//! gives it the power to print anything.
//!
//! **Failures are found anywhere.** [`crate::qemu::Outcome::failure`]
//! looks for the kernel's panic and refusal markers anywhere on any line: a
//! panic is printed straight to the UART, possibly in the middle of a line
//! another writer started, and must not be missed. A partition that prints
//! a panic marker can make a run fail, never pass.

use hv_image::NAME_LENGTH;

/// Who wrote a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Writer<'a> {
    /// The kernel (or the firmware before it): a line without a
    /// partition's prefix.
    Kernel,
    /// The partition of this name: `[name] text`.
    Partition(&'a str),
}

/// One line of the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// Who wrote it.
    pub(crate) writer: Writer<'a>,
    /// What it says: after the prefix, without the line end.
    pub(crate) text: &'a str,
    /// A line end followed (the console's last line may be cut anywhere).
    pub(crate) ended: bool,
}

impl<'a> Line<'a> {
    /// Reads `line` (without its `\n`; a `\r` before it is dropped).
    pub(crate) fn read(line: &'a str, ended: bool) -> Self {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match prefix(line) {
            Some((name, text)) => Self {
                writer: Writer::Partition(name),
                text,
                ended,
            },
            None => Self {
                writer: Writer::Kernel,
                text: line,
                ended,
            },
        }
    }

    /// Whether `self`, a needle's line, matches `line`: same writer, and
    /// `line` starts with the needle's text (is exactly it, if the needle's
    /// line ended).
    fn fits(&self, line: &Line<'_>) -> bool {
        self.writer == line.writer
            && if self.ended {
                line.ended && line.text == self.text
            } else {
                line.text.starts_with(self.text)
            }
    }
}

/// `[name] ` at the start of `line`, with a name the manifest allows (a
/// lowercase letter, then lowercase letters, digits and `-`), and the text
/// after it.
fn prefix(line: &str) -> Option<(&str, &str)> {
    let (name, text) = line.strip_prefix('[')?.split_once("] ")?;
    let mut bytes = name.bytes();
    let first = bytes.next()?;
    (first.is_ascii_lowercase()
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && name.len() <= NAME_LENGTH)
        .then_some((name, text))
}

/// What a check looks for: one or more consecutive lines, each written as
/// the console shows it (see the module's documentation).
#[derive(Debug)]
struct Needle<'a> {
    lines: Vec<Line<'a>>,
}

impl<'a> Needle<'a> {
    fn read(needle: &'a str) -> Self {
        let lines = needle
            .split_inclusive('\n')
            .map(|piece| match piece.strip_suffix('\n') {
                Some(line) => Line::read(line, true),
                None => Line::read(piece, piece.ends_with('\r')),
            })
            .collect();
        Self { lines }
    }

    /// Whether the needle matches the lines from `lines[0]` on.
    fn at(&self, lines: &[Line<'_>]) -> bool {
        lines.len() >= self.lines.len()
            && self
                .lines
                .iter()
                .zip(lines)
                .all(|(wanted, line)| wanted.fits(line))
    }
}

/// Whether `needle` may match in `console`: its first line's text, as
/// written, is somewhere in it. A cheap test before reading the console's
/// lines, for a console still being written.
pub(crate) fn may_have(console: &str, needle: &str) -> bool {
    let first = needle.split('\n').next().unwrap_or(needle);
    console.contains(first.strip_suffix('\r').unwrap_or(first))
}

/// A console's lines, each with its writer.
pub(crate) struct Transcript<'a> {
    lines: Vec<Line<'a>>,
}

impl<'a> Transcript<'a> {
    /// Reads `console`: lines end at `\n` (a `\r` before it is dropped); a
    /// partition's line starts with `[name] `.
    pub(crate) fn new(console: &'a str) -> Self {
        let lines = console
            .split_inclusive('\n')
            .map(|piece| match piece.strip_suffix('\n') {
                Some(line) => Line::read(line, true),
                None => Line::read(piece, false),
            })
            .collect();
        Self { lines }
    }

    /// Every line, in order.
    pub(crate) fn lines(&self) -> &[Line<'a>] {
        &self.lines
    }

    /// Where `needle` matches, from line `from` on: the index of its
    /// (first) line.
    pub(crate) fn find(&self, needle: &str, from: usize) -> Option<usize> {
        let needle = Needle::read(needle);
        (from..self.lines.len()).find(|&at| needle.at(&self.lines[at..]))
    }

    /// Where `needle` matches: the index of its (first) line, each time.
    pub(crate) fn positions(&self, needle: &str) -> Vec<usize> {
        let needle = Needle::read(needle);
        (0..self.lines.len())
            .filter(|&at| needle.at(&self.lines[at..]))
            .collect()
    }

    /// Whether `needle` matches somewhere.
    pub(crate) fn has(&self, needle: &str) -> bool {
        self.find(needle, 0).is_some()
    }

    /// Whether a line matches `needle` (a single line) and has `rest`
    /// somewhere after the needle's text: for a line whose middle varies.
    pub(crate) fn has_with(&self, needle: &str, rest: &str) -> bool {
        let needle = Needle::read(needle);
        self.lines.iter().enumerate().any(|(at, line)| {
            needle.at(&self.lines[at..])
                && needle
                    .lines
                    .first()
                    .is_some_and(|start| line.text[start.text.len()..].contains(rest))
        })
    }

    /// How many times `needle` matches.
    pub(crate) fn count(&self, needle: &str) -> usize {
        self.positions(needle).len()
    }

    /// The kernel's lines, as text.
    pub(crate) fn kernel_lines(&self) -> Vec<&'a str> {
        self.lines
            .iter()
            .filter(|l| l.writer == Writer::Kernel)
            .map(|l| l.text)
            .collect()
    }

    /// Partition `name`'s lines, as text (without the prefix).
    pub(crate) fn partition_lines(&self, name: &str) -> Vec<&'a str> {
        self.lines
            .iter()
            .filter(|l| l.writer == Writer::Partition(name))
            .map(|l| l.text)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Line, Transcript, Writer};

    /// A console as a system with `mimic` beside ping prints it: the kernel's
    /// boot, then partitions' lines, one of which imitates the kernel's.
    const CONSOLE: &str = "Bulkhead 0.1.0 on linux,dummy-virt (qemu-virt)\r\n\
        boot: cores online 2 of 2\r\n\
        bulkhead: system ready\r\n\
        [mimic] bulkhead: fault: partition `pong` stopped (reason 0x1); the others carry on\r\n\
        [mimic] .bulkhead: system ready\r\n\
        [mimic] [ping] ping: done\r\n\
        [ping] 1000 calls answered correctly (batch 1)\r\n\
        bulkhead: fault: partition `mimic` stopped (reason 0x1); the others carry on\r\n\
        [ping] ping: done\r\n\
        [ping] 4000 calls";

    #[test]
    fn lines_are_the_kernels_or_a_partitions() {
        let transcript = Transcript::new(CONSOLE);
        let lines = transcript.lines();
        assert_eq!(lines.len(), 10);
        assert_eq!(
            lines[2],
            Line {
                writer: Writer::Kernel,
                text: "bulkhead: system ready",
                ended: true
            }
        );
        assert_eq!(
            lines[3].writer,
            Writer::Partition("mimic"),
            "a partition's imitation is the partition's"
        );
        assert_eq!(
            lines[3].text,
            "bulkhead: fault: partition `pong` stopped (reason 0x1); the others carry on"
        );
        assert_eq!(lines[5].text, "[ping] ping: done");
        assert!(!lines[9].ended, "the last line was cut");
        assert_eq!(transcript.kernel_lines().len(), 4);
        assert_eq!(
            transcript.partition_lines("ping"),
            [
                "1000 calls answered correctly (batch 1)",
                "ping: done",
                "4000 calls"
            ]
        );
    }

    #[test]
    fn an_imitation_of_a_kernel_line_is_not_found() {
        let transcript = Transcript::new(CONSOLE);
        // The old oracle, a search of the whole console, was fooled.
        assert!(CONSOLE.contains("bulkhead: fault: partition `pong` stopped"));
        assert!(!transcript.has("bulkhead: fault: partition `pong` stopped"));
        assert!(!transcript.has("partition `pong` stopped"));
        assert!(transcript.has("bulkhead: fault: partition `mimic` stopped (reason 0x1)"));
        assert_eq!(transcript.count("bulkhead: system ready"), 1);
        assert_eq!(transcript.count("bulkhead: fault: "), 1);
    }

    #[test]
    fn an_imitation_of_another_partitions_line_is_not_found() {
        let transcript = Transcript::new(CONSOLE);
        assert_eq!(transcript.positions("[ping] ping: done"), [8]);
        assert_eq!(transcript.find("[ping] ping: done", 0), Some(8));
        assert_eq!(transcript.find("[mimic] [ping] ping: done", 0), Some(5));
    }

    #[test]
    fn needles_match_at_the_start_of_a_line_only() {
        let transcript = Transcript::new(CONSOLE);
        assert!(transcript.has("boot: cores online 2"));
        assert!(!transcript.has("cores online 2 of 2"));
        assert!(!transcript.has("ping: done"), "a kernel line");
        assert!(transcript.has("[ping] 1000 calls"));
        assert!(!transcript.has("[ping] calls answered"));
    }

    #[test]
    fn a_line_end_in_a_needle_asks_for_the_whole_line() {
        let transcript = Transcript::new(CONSOLE);
        assert!(transcript.has("boot: cores online 2 of 2\r\n"));
        assert!(transcript.has("boot: cores online 2 of 2\n"));
        assert!(transcript.has("boot: cores online 2 of 2\r"));
        assert!(!transcript.has("boot: cores online 2\r\n"));
        assert!(transcript.has("[ping] 4000 calls"));
        assert!(
            !transcript.has("[ping] 4000 calls\r\n"),
            "the last line has not ended"
        );
    }

    #[test]
    fn a_needle_of_several_lines_matches_consecutive_lines() {
        let transcript = Transcript::new(CONSOLE);
        assert_eq!(
            transcript.find(
                "bulkhead: fault: partition `mimic` stopped (reason 0x1); the others carry on\r\n\
                 [ping] ping: done",
                0
            ),
            Some(7)
        );
        assert!(!transcript.has("bulkhead: system ready\r\n[ping] 1000"));
        assert_eq!(transcript.find("[ping] ", 7), Some(8));
    }

    #[test]
    fn a_line_is_found_by_its_start_and_what_follows() {
        let transcript = Transcript::new(CONSOLE);
        assert!(transcript.has_with("bulkhead: fault: partition `mimic` ", "carry on"));
        assert!(!transcript.has_with("bulkhead: fault: partition `pong` ", "carry on"));
        assert!(!transcript.has_with("bulkhead: fault: ", "`pong`"));
        assert!(transcript.has_with("[mimic] bulkhead: fault: ", "`pong`"));
        assert!(!transcript.has_with("boot: cores ", "boot: cores"));
    }

    #[test]
    fn a_needle_that_matches_passes_the_cheap_test() {
        let transcript = Transcript::new(CONSOLE);
        for needle in [
            "[ping] ping: done\r\n",
            "bulkhead: fault: partition `mimic` stopped (reason 0x1); the others carry on\r\n\
             [ping] ping: done",
            "boot: cores online 2 of 2\r",
        ] {
            assert!(transcript.has(needle) && super::may_have(CONSOLE, needle));
        }
        assert!(!super::may_have(CONSOLE, "[pong] serving"));
    }

    #[test]
    fn a_prefix_needs_a_name_the_manifest_allows() {
        for (line, writer) in [
            ("[ping] x", Writer::Partition("ping")),
            ("[small-vmm] x", Writer::Partition("small-vmm")),
            ("[a1] ", Writer::Partition("a1")),
            ("[Ping] x", Writer::Kernel),
            ("[1ping] x", Writer::Kernel),
            ("[] x", Writer::Kernel),
            ("[ping]x", Writer::Kernel),
            (
                "[a-name-that-is-far-too-long-for-a-manifest] x",
                Writer::Kernel,
            ),
            ("ping] x", Writer::Kernel),
        ] {
            assert_eq!(Transcript::new(line).lines()[0].writer, writer, "{line:?}");
        }
    }

    #[test]
    fn carriage_returns_inside_a_line_do_not_end_it() {
        // What a terminal would show as the kernel's line is, in the bytes,
        // the end of a partition's line.
        let transcript = Transcript::new("[mimic] x\rbulkhead: fault: forged\r\n");
        assert_eq!(transcript.lines().len(), 1);
        assert!(!transcript.has("bulkhead: fault: forged"));
    }
}
