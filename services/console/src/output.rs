// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The terminal: what it shows, and queuing output to the UART driver.
//!
//! Both vCPUs print (vCPU 0 the clients' lines, vCPU 1 focus changes and
//! the kernel's lines), and the driver's transmit ring has one producer, so
//! a lock ([`QUEUING`], an atomic flag in RAM) is held while a vCPU reads or
//! changes the terminal's state ([`TERMINAL`]: who has the focus, whether
//! its line is open, every client's unfinished line) and copies the bytes
//! that go with the change into the ring. A change is made only if all its
//! bytes fit, so the state always says what the terminal shows, a line is
//! never split, and nobody waits while holding the lock. When the ring is
//! full, vCPU 0 sleeps on `uart-space` (the driver's back-pressure protocol,
//! see `svc_uart_pl011`); vCPU 1, which prints rarely, yields and tries
//! again.
//!
//! **The open line.** The focused client's bytes are shown as they come:
//! its first byte prints `[name] ` and the text so far, and the terminal line
//! stays open for it, later bytes are appended, its newline ends it. Any
//! other line (another client's, the console's, the kernel's) first ends the
//! open line with `\r\n`, and the open line is printed again, prefix and text
//! so far, after it, in the same turn at the lock. When the focus moves, the
//! old focus's open line is ended and its text stays in its buffer (it is
//! printed whole with its newline, or again as an open line when the focus
//! comes back); the new focus's unfinished text, if any, is printed as its
//! open line. Only the focused client's line is ever open.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use svc_rt::call;
use svc_rt::hypercall::CapSlot;
use svc_uart_pl011::Buffers;

use crate::lines::{Edit, LINE_TEXT, Unfinished, shown};
use crate::table::{MAX_CLIENTS, Table};

/// Signalled after queuing output: the driver's notification.
const UART_EVENTS: CapSlot = svc_rt::cap!(UART_EVENTS);
/// Waited on for transmit space.
const UART_SPACE: CapSlot = svc_rt::cap!(UART_SPACE);

/// Held while a vCPU reads or changes [`TERMINAL`] and copies the bytes
/// that go with it into the transmit ring.
static QUEUING: AtomicBool = AtomicBool::new(false);

/// What the terminal shows; read and changed only under [`QUEUING`].
static TERMINAL: Terminal = Terminal {
    focus: AtomicUsize::new(0),
    open: AtomicBool::new(false),
    lines: [const { Unfinished::new() }; MAX_CLIENTS],
};

/// The longest line queued: `[`, the name, `] `, the text, `\r\n`.
const LINE_MAX: usize = 256;

/// The most bytes of a name a prefix shows: what a line leaves for it (the
/// manifest's names are far shorter).
const NAME_SHOWN: usize = LINE_MAX - LINE_TEXT - 5;

/// The most bytes one turn at the lock queues: its changes, and room kept
/// for printing the open line again at its end.
const TURN_MAX: usize = 3 * LINE_MAX;

/// What a vCPU does while the transmit ring is full.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Sleep on `uart-space` (vCPU 0 only: one waiter per notification).
    Sleep,
    /// Yield and try again.
    Yield,
}

/// The terminal's state.
///
/// Invariant: when `open` is set, the terminal's current line is the
/// focused client's, showing `[name] ` and its unfinished text, with the
/// cursor after it; when it is clear, the terminal is at the start of a line.
struct Terminal {
    /// The client with the keyboard (an index into the [`Table`]).
    focus: AtomicUsize,
    /// The focused client's line is open on the terminal.
    open: AtomicBool,
    /// Every client's unfinished line.
    lines: [Unfinished; MAX_CLIENTS],
}

impl Terminal {
    fn focus(&self) -> usize {
        self.focus.load(Ordering::Relaxed)
    }

    fn is_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }
}

/// The client with the keyboard. (vCPU 1 changes it, through [`focus`], so
/// vCPU 1 may read it without the lock.)
pub(crate) fn focused() -> usize {
    TERMINAL.focus()
}

/// Gives client `index` the focus and prints `[console] text` (vCPU 0 at
/// start, then vCPU 1).
pub(crate) fn focus(
    buffers: &Buffers,
    clients: &Table,
    index: usize,
    text: &[u8],
    when_full: WhenFull,
) {
    turns(buffers, clients, when_full, |turn| turn.focus(index, text));
}

/// Prints `[name] text` as one line.
pub(crate) fn line(
    buffers: &Buffers,
    clients: &Table,
    name: &str,
    text: &[u8],
    when_full: WhenFull,
) {
    turns(buffers, clients, when_full, |turn| {
        turn.whole(Some(name), text)
    });
}

/// Prints `text` as one line without a prefix: a line of the kernel's own,
/// which already says whose it is.
pub(crate) fn kernel_line(buffers: &Buffers, clients: &Table, text: &[u8], when_full: WhenFull) {
    turns(buffers, clients, when_full, |turn| turn.whole(None, text));
}

/// Adds client `index`'s bytes to its line (vCPU 0): shown at once if it
/// has the focus, else printed at its newline (or in pieces when the buffer
/// is full).
pub(crate) fn write(buffers: &Buffers, clients: &Table, index: usize, bytes: &[u8]) {
    let mut done = 0;
    turns(buffers, clients, WhenFull::Sleep, |turn| {
        while let Some(&byte) = bytes.get(done) {
            if !turn.byte(index, byte) {
                return false;
            }
            done += 1;
        }
        true
    });
}

/// Bytes to queue, within the room the ring had when the turn began.
struct Out {
    bytes: [u8; TURN_MAX],
    len: usize,
    /// How far `len` may go.
    room: usize,
    /// Something did not fit.
    short: bool,
}

impl Out {
    fn push(&mut self, byte: u8) {
        if self.len < self.room {
            self.bytes[self.len] = byte;
            self.len += 1;
        } else {
            self.short = true;
        }
    }

    fn extend(&mut self, bytes: impl IntoIterator<Item = u8>) {
        for byte in bytes {
            self.push(byte);
        }
    }

    /// `[name] `.
    fn prefix(&mut self, name: &str) {
        self.push(b'[');
        self.extend(name.bytes().take(NAME_SHOWN).filter_map(shown));
        self.extend(*b"] ");
    }
}

/// One turn at the lock: changes to [`TERMINAL`], and the bytes that go with
/// them.
struct Turn<'a> {
    clients: &'a Table,
    out: Out,
    /// The open line was ended for another line during this turn: it is
    /// printed again at the turn's end.
    hidden: bool,
}

impl Turn<'_> {
    /// Where a change starts, to go back to if its bytes do not fit.
    fn mark(&self) -> (usize, bool) {
        (self.out.len, self.hidden)
    }

    /// Whether the bytes since `mark` fit; if not, they are taken back and
    /// the caller must not make its change.
    fn fits(&mut self, (len, hidden): (usize, bool)) -> bool {
        if self.out.short {
            self.out.len = len;
            self.out.short = false;
            self.hidden = hidden;
            return false;
        }
        true
    }

    /// Ends the open line on the terminal, if it shows, for another line.
    fn interrupt(&mut self) {
        if TERMINAL.is_open() && !self.hidden {
            self.out.extend(*b"\r\n");
            self.hidden = true;
        }
    }

    /// `[name] ` and the focused client's text: its line, opened again.
    fn reopen(&mut self) {
        let index = TERMINAL.focus();
        let (Some(client), Some(line)) = (self.clients.get(index), TERMINAL.lines.get(index))
        else {
            return;
        };
        self.out.prefix(client.name);
        self.out.extend(line.text());
        self.hidden = false;
    }

    /// Prints a whole line of the console's (`[name] text`) or the kernel's
    /// (`text`, no prefix).
    fn whole(&mut self, name: Option<&str>, text: &[u8]) -> bool {
        let mark = self.mark();
        self.interrupt();
        if let Some(name) = name {
            self.out.prefix(name);
        }
        self.out
            .extend(text.iter().take(LINE_TEXT).copied().filter_map(shown));
        self.out.extend(*b"\r\n");
        self.fits(mark)
    }

    /// Moves the focus to client `index`, printing `[console] text`.
    fn focus(&mut self, index: usize, text: &[u8]) -> bool {
        if !self.whole(Some("console"), text) {
            return false;
        }
        let open = TERMINAL.lines.get(index).is_some_and(|l| !l.is_empty());
        TERMINAL.focus.store(index, Ordering::Relaxed);
        TERMINAL.open.store(open, Ordering::Relaxed);
        // Not shown yet: the end of the turn prints it.
        self.hidden = open;
        true
    }

    /// One byte from client `index`.
    fn byte(&mut self, index: usize, byte: u8) -> bool {
        let Some(line) = TERMINAL.lines.get(index) else {
            return true;
        };
        if line.swallow(byte) {
            return true;
        }
        let edit = Edit::of(line, byte);
        if matches!(edit, Edit::Append(_)) && line.is_full() && !self.edit(index, Edit::Finish) {
            return false;
        }
        self.edit(index, edit)
    }

    /// Makes `edit` to client `index`'s line, with what the terminal is
    /// given for it.
    fn edit(&mut self, index: usize, edit: Edit) -> bool {
        let (Some(client), Some(line)) = (self.clients.get(index), TERMINAL.lines.get(index))
        else {
            return true;
        };
        let mark = self.mark();
        let focused = index == TERMINAL.focus();
        if focused && edit != Edit::Ignore {
            if !TERMINAL.is_open() || self.hidden {
                self.out.prefix(client.name);
                self.out.extend(line.text());
                self.hidden = false;
            }
            match edit.byte() {
                Some(byte) => self.out.push(byte),
                None => self.out.extend(*b"\r\n"),
            }
        } else if edit == Edit::Finish {
            self.interrupt();
            self.out.prefix(client.name);
            self.out.extend(line.text());
            self.out.extend(*b"\r\n");
        }
        if !self.fits(mark) {
            return false;
        }
        line.apply(edit);
        if focused && edit != Edit::Ignore {
            TERMINAL.open.store(edit != Edit::Finish, Ordering::Relaxed);
        }
        true
    }
}

/// Takes turns at the lock until `work` returns `true` (done); `work`
/// returns `false` when the ring had no room for its next change, and the
/// vCPU waits for room as `when_full` says before the next turn.
fn turns(
    buffers: &Buffers,
    clients: &Table,
    when_full: WhenFull,
    mut work: impl FnMut(&mut Turn<'_>) -> bool,
) {
    loop {
        if QUEUING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            call::yield_now();
            continue;
        }
        let room = buffers.tx.free().min(TURN_MAX);
        let mut turn = Turn {
            clients,
            out: Out {
                bytes: [0; TURN_MAX],
                len: 0,
                // Keep a line's room for the open line at the end.
                room: room.saturating_sub(LINE_MAX),
                short: false,
            },
            hidden: false,
        };
        let done = work(&mut turn);
        turn.out.room = room;
        if turn.hidden && TERMINAL.is_open() {
            turn.reopen();
        }
        let bytes = &turn.out.bytes[..turn.out.len];
        // The room was measured under the lock, and only the driver takes
        // from the ring meanwhile: it all fits.
        let queued = buffers.tx.push(bytes);
        QUEUING.store(false, Ordering::Release);
        if queued > 0 {
            let _ = call::signal(UART_EVENTS);
        }
        if done {
            return;
        }
        match when_full {
            WhenFull::Sleep => {
                buffers.set_waiting();
                if buffers.tx.free() < TURN_MAX {
                    let _ = call::wait(UART_SPACE);
                }
            }
            WhenFull::Yield => call::yield_now(),
        }
    }
}

/// The longest text of the console's own lines.
const TEXT_MAX: usize = 200;

/// A short text being composed for the console's own lines.
pub(crate) struct Text {
    bytes: [u8; TEXT_MAX],
    len: usize,
}

impl Text {
    pub(crate) const fn new() -> Self {
        Self {
            bytes: [0; TEXT_MAX],
            len: 0,
        }
    }

    /// Appends what fits of `bytes`.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}
