// SPDX-License-Identifier: Apache-2.0 OR MIT
//! vCPU 1: keyboard input and the kernel's messages. Waits on the driver's
//! `uart-input` notification; takes the bytes from the receive ring, follows
//! Ctrl-A escapes, puts the rest into the focused client's inbox and signals
//! the client's wake-up notification, if it has one.
//!
//! If the manifest makes the console the kernel-log reader (`[system]
//! kernel-log`, naming `uart-input` as its notification: the kernel then sets
//! a bit of its own there), every wake-up also drains the kernel's log with
//! `LogRead` and prints its lines as they are (they already start with
//! `[name] ` or `bulkhead: `), and says how many bytes the kernel had to drop
//! if it did. Either source may have woken it: both are always looked at, so
//! no bit needs to be known.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};

use svc_rt::call;
use svc_rt::hypercall::CapSlot;
use svc_uart_pl011::Buffers;

use crate::output::{self, Text, WhenFull};
use crate::table::{FOCUSABLE, MAX_CLIENTS, Table};

/// Signalled by the driver when it added received bytes (and by the kernel
/// when its log has lines, if the console reads it).
const UART_INPUT: CapSlot = svc_rt::cap!(UART_INPUT);
/// The kernel's log, if the manifest makes the console its reader.
const KERNEL_LOG: Option<CapSlot> = svc_rt::optional_cap!(KERNEL_LOG);

/// The kernel's lines are at most this long (longer ones are printed in pieces).
const KERNEL_LINE: usize = 200;

/// The escape key: Ctrl-A.
const ESCAPE: u8 = 0x01;

/// Bytes of input a client's inbox holds (a power of two).
pub(crate) const INBOX: usize = 256;

/// Set by vCPU 0 once the banner is out and the focus set, so focus lines
/// follow it.
pub(crate) static STARTED: AtomicBool = AtomicBool::new(false);

/// Keyboard bytes waiting for a client: a single-producer (vCPU 1),
/// single-consumer (vCPU 0, answering `OP_READ`) ring in RAM.
pub(crate) struct Inbox {
    bytes: [AtomicU8; INBOX],
    /// Bytes ever added (written by vCPU 1 only).
    head: AtomicU32,
    /// Bytes ever taken (written by vCPU 0 only).
    tail: AtomicU32,
}

impl Inbox {
    const fn new() -> Self {
        Self {
            bytes: [const { AtomicU8::new(0) }; INBOX],
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
        }
    }

    /// vCPU 1: adds a byte; `false` if the inbox is full.
    fn push(&self, byte: u8) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if head.wrapping_sub(tail) as usize >= INBOX {
            return false;
        }
        self.bytes[head as usize % INBOX].store(byte, Ordering::Relaxed);
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// vCPU 0: takes up to `into.len()` bytes; returns how many.
    pub(crate) fn pop(&self, into: &mut [u8]) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Relaxed);
        let waiting = (head.wrapping_sub(tail) as usize).min(INBOX);
        let count = waiting.min(into.len());
        for (i, slot) in into.iter_mut().take(count).enumerate() {
            *slot =
                self.bytes[tail.wrapping_add(i as u32) as usize % INBOX].load(Ordering::Relaxed);
        }
        self.tail
            .store(tail.wrapping_add(count as u32), Ordering::Release);
        count
    }
}

/// Every client's inbox, by client index.
pub(crate) static INBOXES: [Inbox; MAX_CLIENTS] = [const { Inbox::new() }; MAX_CLIENTS];

struct Router<'a> {
    buffers: &'a Buffers,
    clients: &'a Table,
    /// The last byte was Ctrl-A.
    escape: bool,
    /// Clients that got bytes since they were last woken (bit per index).
    to_wake: u32,
}

impl Router<'_> {
    fn say(&self, text: &Text) {
        output::line(
            self.buffers,
            self.clients,
            "console",
            text.as_bytes(),
            WhenFull::Yield,
        );
    }

    fn deliver(&mut self, byte: u8) {
        let focus = output::focused();
        if let Some(inbox) = INBOXES.get(focus)
            && inbox.push(byte)
        {
            self.to_wake |= 1 << focus;
        }
    }

    fn key(&mut self, byte: u8) {
        if !self.escape {
            if byte == ESCAPE {
                self.escape = true;
            } else {
                self.deliver(byte);
            }
            return;
        }
        self.escape = false;
        if byte == ESCAPE {
            self.deliver(byte);
            return;
        }
        let chosen = Table::index_of_key(byte).filter(|&i| i < self.clients.len());
        let mut text = Text::new();
        match chosen.and_then(|i| Some((i, self.clients.get(i)?))) {
            Some((index, client)) => {
                text.push(b"focus: ");
                text.push(&[byte]);
                text.push(b" ");
                text.push(client.name.as_bytes());
                output::focus(
                    self.buffers,
                    self.clients,
                    index,
                    text.as_bytes(),
                    WhenFull::Yield,
                );
            }
            None => {
                let last = self.clients.len().min(FOCUSABLE);
                text.push(b"Ctrl-A then 1");
                if last > 1 {
                    text.push(b" to ");
                    text.push(&[Table::key(last - 1).unwrap_or(b'?')]);
                }
                text.push(b" gives a partition the keyboard; Ctrl-A Ctrl-A types Ctrl-A");
                self.say(&text);
            }
        }
    }

    /// Signals every client that got bytes and can be woken.
    fn wake(&mut self) {
        for index in 0..self.clients.len() {
            if self.to_wake & (1 << index) != 0
                && let Some(slot) = self.clients.get(index).and_then(|c| c.wake)
            {
                let _ = call::signal(slot);
            }
        }
        self.to_wake = 0;
    }
}

/// A kernel line being gathered from `LogRead`'s 40-byte pieces.
struct KernelLine {
    bytes: [u8; KERNEL_LINE],
    len: usize,
}

impl KernelLine {
    /// Takes everything the kernel's log holds, printing each whole line.
    fn drain(&mut self, buffers: &Buffers, clients: &Table, log: CapSlot) {
        loop {
            let Ok(read) = call::log_read(log) else {
                return;
            };
            if read.dropped > 0 {
                let mut text = Text::new();
                text.push(b"the kernel's log was full: ");
                let mut digits = [0u8; 20];
                text.push(decimal(read.dropped, &mut digits));
                text.push(b" bytes of its messages were lost");
                output::line(
                    buffers,
                    clients,
                    "console",
                    text.as_bytes(),
                    WhenFull::Yield,
                );
            }
            if read.len == 0 {
                return;
            }
            for &byte in read.bytes.iter().take(read.len) {
                if byte == b'\n' || self.len == KERNEL_LINE {
                    output::kernel_line(buffers, clients, &self.bytes[..self.len], WhenFull::Yield);
                    self.len = 0;
                }
                if byte != b'\n' {
                    self.bytes[self.len] = byte;
                    self.len += 1;
                }
            }
        }
    }
}

/// `value` in decimal, written into the end of `digits`.
fn decimal(mut value: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            return &digits[start..];
        }
    }
}

/// vCPU 1's loop.
pub(crate) fn run(buffers: &Buffers, clients: &Table) -> ! {
    while !STARTED.load(Ordering::Acquire) {
        call::yield_now();
    }
    let mut router = Router {
        buffers,
        clients,
        escape: false,
        to_wake: 0,
    };
    let mut kernel = KernelLine {
        bytes: [0; KERNEL_LINE],
        len: 0,
    };
    loop {
        if let Some(log) = KERNEL_LOG {
            kernel.drain(buffers, clients, log);
        }
        if call::wait(UART_INPUT).is_err() {
            call::yield_now();
        }
        let mut chunk = [0u8; 64];
        loop {
            let count = buffers.rx.pop(&mut chunk);
            if count == 0 {
                break;
            }
            for &byte in &chunk[..count] {
                router.key(byte);
            }
            // Wake as we go, so a long paste does not wait for the end.
            router.wake();
        }
    }
}
