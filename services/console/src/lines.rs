// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Every client's unfinished line, kept as the terminal shows it, and the
//! rules that make a client's bytes safe to show.
//!
//! A line holds a client's text since its last newline, already made safe:
//! carriage returns are dropped, terminal escape sequences (ESC and the
//! next byte, or a whole `ESC [` control sequence: a shell's colours, its
//! cursor position queries) are dropped, other control characters but tab
//! become `.`, and a backspace erases the line's last character if that
//! character is printable ASCII (otherwise it too becomes `.`). Printable ASCII is the
//! only text known to move the terminal's cursor by exactly one column, so
//! the backspaces let through never outnumber the columns the line's own
//! characters took: a client can erase its own text, never its `[name] `
//! prefix or anything before it. (This assumes a terminal that decodes
//! UTF-8, as the console always has: bytes from 0x80 up are passed on.)
//!
//! The lines live in RAM both vCPUs see, as atomics, and are read and
//! changed only under the output lock ([`crate::output`]): relaxed accesses
//! suffice, the lock orders them.

use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Bytes of text a client's line holds before it is printed in pieces.
pub(crate) const LINE_TEXT: usize = 200;

/// The backspace control character, `\b`.
const BACKSPACE: u8 = 0x08;

/// The escape control character, which starts a terminal escape sequence.
const ESC: u8 = 0x1b;

/// Where a client's bytes are in an escape sequence ([`Unfinished::swallow`]).
const PLAIN: u8 = 0;
/// After ESC.
const AFTER_ESC: u8 = 1;
/// Inside a control sequence (after `ESC [`), before its final byte.
const IN_CONTROL: u8 = 2;

/// What one byte from a client does to its line.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edit {
    /// Nothing (a carriage return).
    Ignore,
    /// Adds this byte, as it is shown.
    Append(u8),
    /// Removes the last character (a backspace the terminal is given).
    Erase,
    /// Ends the line (a newline).
    Finish,
}

impl Edit {
    /// What `byte` does to `line`.
    pub(crate) fn of(line: &Unfinished, byte: u8) -> Self {
        match byte {
            b'\n' => Self::Finish,
            BACKSPACE if line.last().is_some_and(|last| matches!(last, b' '..=b'~')) => Self::Erase,
            _ => shown(byte).map_or(Self::Ignore, Self::Append),
        }
    }

    /// The byte the terminal is given for this edit on an open line, if one.
    pub(crate) fn byte(self) -> Option<u8> {
        match self {
            Self::Append(byte) => Some(byte),
            Self::Erase => Some(BACKSPACE),
            Self::Ignore | Self::Finish => None,
        }
    }
}

/// `byte` as a terminal may safely show it: carriage returns dropped, other
/// control characters (but tab) shown as `.`. The kernel shows the text of a
/// partition that logs through it by the same rule.
pub(crate) use hv_abi::console::shown;

/// A client's text since its last newline, as shown.
pub(crate) struct Unfinished {
    bytes: [AtomicU8; LINE_TEXT],
    len: AtomicUsize,
    /// Where the client's bytes are in an escape sequence.
    escape: AtomicU8,
}

impl Unfinished {
    pub(crate) const fn new() -> Self {
        Self {
            bytes: [const { AtomicU8::new(0) }; LINE_TEXT],
            len: AtomicUsize::new(0),
            escape: AtomicU8::new(PLAIN),
        }
    }

    /// Whether `byte` is part of a terminal escape sequence, which is
    /// dropped: ESC and the byte after it, or, for `ESC [`, everything up
    /// to the sequence's final byte (0x40 to 0x7e). A newline, or any byte
    /// a sequence cannot hold, ends it early and is not part of it.
    pub(crate) fn swallow(&self, byte: u8) -> bool {
        let state = self.escape.load(Ordering::Relaxed);
        let (swallowed, next) = match (state, byte) {
            (PLAIN, ESC) => (true, AFTER_ESC),
            (PLAIN, _) => (false, PLAIN),
            (_, b'\n') => (false, PLAIN),
            (AFTER_ESC, b'[') => (true, IN_CONTROL),
            (AFTER_ESC, 0x20..=0x7e) => (true, PLAIN),
            (IN_CONTROL, 0x20..=0x3f) => (true, IN_CONTROL),
            (IN_CONTROL, 0x40..=0x7e) => (true, PLAIN),
            // A control character or a byte from 0x7f up: not a sequence's.
            _ => (false, PLAIN),
        };
        if next != state {
            self.escape.store(next, Ordering::Relaxed);
        }
        swallowed
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed).min(LINE_TEXT)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len() == LINE_TEXT
    }

    /// The text, byte by byte.
    pub(crate) fn text(&self) -> impl Iterator<Item = u8> + '_ {
        self.bytes[..self.len()]
            .iter()
            .map(|byte| byte.load(Ordering::Relaxed))
    }

    fn last(&self) -> Option<u8> {
        let len = self.len();
        len.checked_sub(1)
            .map(|at| self.bytes[at].load(Ordering::Relaxed))
    }

    /// Makes `edit` (an [`Edit::Append`] needs a line that is not full:
    /// the caller finishes a full line first; here it would be dropped).
    pub(crate) fn apply(&self, edit: Edit) {
        let len = self.len();
        match edit {
            Edit::Ignore => {}
            Edit::Append(byte) => {
                if let Some(slot) = self.bytes.get(len) {
                    slot.store(byte, Ordering::Relaxed);
                    self.len.store(len + 1, Ordering::Relaxed);
                }
            }
            Edit::Erase => self.len.store(len.saturating_sub(1), Ordering::Relaxed),
            Edit::Finish => self.len.store(0, Ordering::Relaxed),
        }
    }
}
