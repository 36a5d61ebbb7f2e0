// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Queuing whole lines to the UART driver.
//!
//! Both vCPUs print (vCPU 0 the clients' lines, vCPU 1 focus changes and
//! the kernel's lines), and
//! the driver's transmit ring has one producer, so a lock ([`QUEUING`], an
//! atomic flag in RAM) is held while one line is copied in, and only when
//! the whole line fits: a line is never split, and nobody waits while holding
//! the lock. When the ring is full, vCPU 0 sleeps on `uart-space` (the
//! driver's back-pressure protocol, see `svc_uart_pl011`); vCPU 1, which
//! prints rarely, yields and tries again.

use core::sync::atomic::{AtomicBool, Ordering};

use svc_rt::call;
use svc_rt::hypercall::CapSlot;
use svc_uart_pl011::Buffers;

/// Signalled after queuing output: the driver's notification.
const UART_EVENTS: CapSlot = svc_rt::cap!(UART_EVENTS);
/// Waited on for transmit space.
const UART_SPACE: CapSlot = svc_rt::cap!(UART_SPACE);

/// Held while a vCPU copies a line into the transmit ring.
static QUEUING: AtomicBool = AtomicBool::new(false);

/// The longest line queued: a 24-byte name in brackets, a space, the text,
/// `\r\n`.
pub(crate) const LINE_MAX: usize = 256;

/// What a vCPU does while the transmit ring is full.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Sleep on `uart-space` (vCPU 0 only: one waiter per notification).
    Sleep,
    /// Yield and try again.
    Yield,
}

/// A line being composed: `[name] text\r\n`, cut to [`LINE_MAX`].
struct Line {
    bytes: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    fn push(&mut self, byte: u8) {
        // Keep room for "\r\n".
        if self.len < LINE_MAX - 2 {
            self.bytes[self.len] = byte;
            self.len += 1;
        }
    }

    /// Appends `text` as a terminal may safely show it: carriage returns
    /// dropped, other control characters (but tab) shown as `.`.
    fn push_text(&mut self, text: &[u8]) {
        for &byte in text {
            match byte {
                b'\r' => {}
                b'\t' => self.push(byte),
                0..=0x1f | 0x7f => self.push(b'.'),
                _ => self.push(byte),
            }
        }
    }
}

/// Queues `[name] text` as one line, waiting for room as `when_full` says.
pub(crate) fn line(buffers: &Buffers, name: &str, text: &[u8], when_full: WhenFull) {
    queue(buffers, Some(name), text, when_full);
}

/// Queues `text` as one line without a prefix: a line of the kernel's own,
/// which already says whose it is.
pub(crate) fn kernel_line(buffers: &Buffers, text: &[u8], when_full: WhenFull) {
    queue(buffers, None, text, when_full);
}

fn queue(buffers: &Buffers, name: Option<&str>, text: &[u8], when_full: WhenFull) {
    let mut line = Line {
        bytes: [0; LINE_MAX],
        len: 0,
    };
    if let Some(name) = name {
        line.push(b'[');
        line.push_text(name.as_bytes());
        line.push_text(b"] ");
    }
    line.push_text(text);
    line.bytes[line.len] = b'\r';
    line.bytes[line.len + 1] = b'\n';
    line.len += 2;
    let bytes = &line.bytes[..line.len];
    loop {
        if QUEUING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            call::yield_now();
            continue;
        }
        let queued = buffers.tx.free() >= bytes.len() && buffers.tx.push(bytes) == bytes.len();
        QUEUING.store(false, Ordering::Release);
        if queued {
            let _ = call::signal(UART_EVENTS);
            return;
        }
        match when_full {
            WhenFull::Sleep => {
                buffers.set_waiting();
                if buffers.tx.free() < bytes.len() {
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
