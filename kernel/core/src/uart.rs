// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Printing through a UART the kernel cannot make drain: bounded waits, and
//! output dropped and counted instead of a hang.
//!
//! The kernel prints with interrupts masked, some of it under locks every
//! core needs. A UART that never drains (disabled, transmitter off, or
//! waiting for a clear-to-send that never comes) would hold the kernel for
//! ever if the driver waited for room without a bound. [`Transmitter`]
//! decides, for each byte, whether to send it or drop it, from the
//! transmit FIFO's full flag polled a bounded number of times: at most
//! [`POLLS_PER_BYTE`] once, and after the UART has once been found stalled
//! a single poll per byte until it takes a byte again. What is dropped is
//! counted, so the console can say so once output flows again.
//!
//! The driver (`platforms/<p>/src/mmio.rs`) reads the registers; this module
//! only decides, so the bound is tested on the host. QEMU's PL011 model
//! never reports a full FIFO, so these tests are where a stalled UART is
//! shown (docs/testing.md).

/// Polls of the transmit FIFO's full flag (or the busy flag) spent on one
/// byte before the UART is judged stalled. A register read takes well under
/// a microsecond on hardware and about one under QEMU, and a byte at
/// 9600 baud takes about a millisecond to leave, so a UART that is merely
/// slow is never judged stalled, and a stalled one costs the kernel some
/// tens of milliseconds once, then one read per byte.
pub const POLLS_PER_BYTE: u32 = 100_000;

/// What to do with one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// There is room: write it.
    Send,
    /// The UART is stalled: drop it (it has been counted).
    Drop,
}

/// What the kernel knows about a transmitter it prints through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transmitter {
    /// Whether the last wait for room ran out of polls.
    stalled: bool,
    /// Bytes dropped since the start.
    dropped: u64,
}

impl Transmitter {
    /// A transmitter not (yet) found stalled.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            stalled: false,
            dropped: 0,
        }
    }

    /// The polls to spend now: the full bound, or one if already stalled.
    const fn budget(&self) -> u32 {
        if self.stalled { 1 } else { POLLS_PER_BYTE }
    }

    /// Decides one byte's fate. `full` reads the transmit FIFO's full flag;
    /// it is called at most [`POLLS_PER_BYTE`] times (once if the UART was
    /// already stalled). A dropped byte is counted.
    pub fn admit(&mut self, mut full: impl FnMut() -> bool) -> Decision {
        if (0..self.budget()).any(|_| !full()) {
            self.stalled = false;
            Decision::Send
        } else {
            self.stalled = true;
            self.dropped = self.dropped.saturating_add(1);
            Decision::Drop
        }
    }

    /// Waits, boundedly, until `busy` (the transmitter's busy flag) clears:
    /// as [`Self::admit`], but nothing is dropped; a UART still busy after
    /// the bound is judged stalled.
    pub fn drain(&mut self, mut busy: impl FnMut() -> bool) {
        self.stalled = !(0..self.budget()).any(|_| !busy());
    }

    /// Whether the last wait ran out of polls.
    #[must_use]
    pub const fn stalled(&self) -> bool {
        self.stalled
    }

    /// Bytes dropped so far.
    #[must_use]
    pub const fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::{Decision, POLLS_PER_BYTE, Transmitter};

    /// A flag that reads `true` for `busy_for` polls, then `false`; counts
    /// every poll.
    struct Flag {
        busy_for: u64,
        polls: u64,
    }

    impl Flag {
        fn read(&mut self) -> bool {
            self.polls += 1;
            self.polls <= self.busy_for
        }
    }

    #[test]
    fn a_ready_uart_takes_every_byte_at_the_first_poll() {
        let mut tx = Transmitter::new();
        let mut flag = Flag {
            busy_for: 0,
            polls: 0,
        };
        for _ in 0..100 {
            assert_eq!(tx.admit(|| flag.read()), Decision::Send);
        }
        assert_eq!(flag.polls, 100);
        assert_eq!(tx.dropped(), 0);
    }

    #[test]
    fn a_slow_uart_is_waited_for() {
        let mut tx = Transmitter::new();
        let mut flag = Flag {
            busy_for: u64::from(POLLS_PER_BYTE) - 1,
            polls: 0,
        };
        assert_eq!(tx.admit(|| flag.read()), Decision::Send);
        assert_eq!(flag.polls, u64::from(POLLS_PER_BYTE));
        assert!(!tx.stalled());
    }

    /// A UART whose FIFO never drains (disabled, CTS never asserted): the
    /// first byte costs the bound, every later one a single poll, and all
    /// are counted as dropped.
    #[test]
    fn a_stalled_uart_costs_a_bounded_number_of_polls() {
        let mut tx = Transmitter::new();
        let mut polls = 0u64;
        let mut full = || {
            polls += 1;
            true
        };
        for _ in 0..1000 {
            assert_eq!(tx.admit(&mut full), Decision::Drop);
        }
        assert_eq!(polls, u64::from(POLLS_PER_BYTE) + 999);
        assert_eq!(tx.dropped(), 1000);
        assert!(tx.stalled());
    }

    /// Once the UART takes bytes again, output resumes at once and the
    /// count of what was lost remains for the console to report.
    #[test]
    fn a_uart_that_recovers_is_used_again() {
        let mut tx = Transmitter::new();
        for _ in 0..3 {
            assert_eq!(tx.admit(|| true), Decision::Drop);
        }
        assert_eq!(tx.admit(|| false), Decision::Send);
        assert!(!tx.stalled());
        assert_eq!(tx.dropped(), 3);
        // Stalled again: the full bound once more, not one poll.
        let mut polls = 0u32;
        assert_eq!(
            tx.admit(|| {
                polls += 1;
                true
            }),
            Decision::Drop
        );
        assert_eq!(polls, POLLS_PER_BYTE);
    }

    #[test]
    fn draining_is_bounded_and_marks_a_stall() {
        let mut tx = Transmitter::new();
        let mut polls = 0u32;
        tx.drain(|| {
            polls += 1;
            true
        });
        assert_eq!(polls, POLLS_PER_BYTE);
        assert!(tx.stalled());
        // Stalled: one poll.
        tx.drain(|| {
            polls += 1;
            true
        });
        assert_eq!(polls, POLLS_PER_BYTE + 1);
        tx.drain(|| false);
        assert!(!tx.stalled());
        assert_eq!(tx.dropped(), 0);
    }
}
