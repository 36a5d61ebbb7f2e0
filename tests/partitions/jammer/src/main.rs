// SPDX-License-Identifier: Apache-2.0 OR MIT
//! jammer: attacks the kernel through the console UART it was given
//! (`tests/qemu/jammer.toml`, `cargo xtask test jammed`).
//!
//! The partition that owns `uart0` (and so, as the compiler and the kernel
//! insist, reads the kernel log) waits until the kernel's messages come
//! through the log, then jams the UART: UART and transmitter off, CTS flow
//! control on, so a PL011 on hardware never drains again. It then signals
//! its accomplice (`tests/partitions/accomplice`), which writes to the UART it was
//! not given and faults, so the kernel has a
//! fault to report while ping and pong keep printing through it. jammer
//! gathers the kernel log until the accomplice's stop and ping's last line
//! have come, turns the UART back on and prints what it gathered, then
//! carries on as the console. If the kernel waited on the jammed UART, or
//! printed to it, none of that would happen as the test expects.
//!
//! QEMU's PL011 model transmits whatever its control register says, so a
//! UART that never drains is shown by `hv_core::uart`'s host tests; this
//! shows the kernel and the others carry on, and what the kernel says
//! reaches its reader, while the UART's owner does what it likes with it.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;
use svc_rt::hypercall::CapSlot;
use svc_rt::mmio::Device;
use svc_rt::shared::Window;

svc_rt::entry!(main);

/// The kernel log.
const KERNEL_LOG: CapSlot = svc_rt::cap!(KERNEL_LOG);
/// Where the kernel says its log has lines.
const WAKE: CapSlot = svc_rt::cap!(WAKE);
/// Signalled once the UART is jammed; the accomplice waits on it.
const GO: CapSlot = svc_rt::cap!(GO);
/// The UART.
const UART0: Window = svc_rt::device!(UART0);

// PL011 registers and bits.
const DR: usize = 0x000;
const FR: usize = 0x018;
const CR: usize = 0x030;
const FR_TXFF: u32 = 1 << 5;
const CR_UARTEN: u32 = 1 << 0;
const CR_TXE: u32 = 1 << 8;
const CR_RXE: u32 = 1 << 9;
const CR_CTSEN: u32 = 1 << 15;

/// Kernel-log lines kept to show once the UART is back, and their length.
const KEPT: usize = 12;
const LINE: usize = 200;

fn main(start: svc_rt::Start) -> ! {
    match Device::new(&start, UART0.ipa as usize, UART0.size as usize) {
        Ok(uart) => jam(uart, KERNEL_LOG, WAKE),
        Err(_) => call::fault(0x1, &[]),
    }
}

/// Writes one line straight to the UART (a bounded wait for room).
fn put_line(uart: &Device, parts: &[&[u8]]) {
    for &byte in parts.iter().flat_map(|p| p.iter()).chain(b"\r\n") {
        for _ in 0..100_000 {
            if uart.read32(FR).is_none_or(|fr| fr & FR_TXFF == 0) {
                break;
            }
        }
        uart.write32(DR, u32::from(byte));
    }
}

/// Lines gathered from the kernel log.
struct Gathered {
    partial: [u8; LINE],
    partial_len: usize,
    kept: [([u8; LINE], usize); KEPT],
    kept_count: usize,
    lines: u64,
    accomplice_stopped: bool,
    ping_done: bool,
}

impl Gathered {
    /// Takes what the log holds; returns whether anything came.
    fn drain(&mut self, log: CapSlot, mut forward: impl FnMut(&[u8])) -> bool {
        let mut any = false;
        while let Ok(read) = call::log_read(log) {
            if read.len == 0 {
                break;
            }
            any = true;
            for &byte in read.bytes.iter().take(read.len) {
                if byte != b'\n' && self.partial_len < LINE {
                    self.partial[self.partial_len] = byte;
                    self.partial_len += 1;
                    continue;
                }
                let line = self.partial;
                let len = self.partial_len;
                self.line(&line[..len]);
                forward(&line[..len]);
                self.partial_len = 0;
            }
        }
        any
    }

    fn line(&mut self, line: &[u8]) {
        self.lines += 1;
        let has = |needle: &[u8]| line.windows(needle.len()).any(|w| w == needle);
        if has(b"partition `accomplice` stopped") {
            self.accomplice_stopped = true;
        }
        if has(b"[ping] ping: done") {
            self.ping_done = true;
        }
        if (line.starts_with(b"bulkhead: ") || has(b"ping: done")) && self.kept_count < KEPT {
            let slot = &mut self.kept[self.kept_count];
            slot.0[..line.len()].copy_from_slice(line);
            slot.1 = line.len();
            self.kept_count += 1;
        }
    }
}

/// The partition that owns the UART.
fn jam(uart: Device, log: CapSlot, wake: CapSlot) -> ! {
    let mut gathered = Gathered {
        partial: [0; LINE],
        partial_len: 0,
        kept: [([0; LINE], 0); KEPT],
        kept_count: 0,
        lines: 0,
        accomplice_stopped: false,
        ping_done: false,
    };
    // Until the kernel's messages come through its log, it may still be
    // printing its boot report: wait for the first.
    while !gathered.drain(log, |line| put_line(&uart, &[line])) {
        let _ = call::wait(wake);
    }
    put_line(
        &uart,
        &[b"[jammer] jamming the UART: CTS flow control on, UART and transmitter off"],
    );
    uart.write32(CR, CR_CTSEN);
    let jammed = uart.read32(CR).unwrap_or(0);
    let _ = call::signal(GO);
    while !(gathered.accomplice_stopped && gathered.ping_done) {
        let _ = call::wait(wake);
        gathered.drain(log, |_| {});
    }
    uart.write32(CR, CR_UARTEN | CR_TXE | CR_RXE);
    let mut digits = [0u8; 20];
    let mut hex = [0u8; 8];
    put_line(
        &uart,
        &[
            b"[jammer] the UART is back on; while it was jammed (control register ",
            hex32(jammed, &mut hex),
            b") the kernel log carried ",
            decimal(gathered.lines, &mut digits),
            b" lines, among them:",
        ],
    );
    for (line, len) in &gathered.kept[..gathered.kept_count] {
        put_line(&uart, &[b"[jammer] | ", &line[..*len]]);
    }
    loop {
        gathered.drain(log, |line| put_line(&uart, &[line]));
        let _ = call::wait(wake);
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

/// `value` as eight hexadecimal digits.
fn hex32(value: u32, digits: &mut [u8; 8]) -> &[u8] {
    for (i, digit) in digits.iter_mut().enumerate() {
        let nibble = (value >> (28 - 4 * i)) & 0xf;
        *digit = b"0123456789abcdef"[nibble as usize];
    }
    digits
}
