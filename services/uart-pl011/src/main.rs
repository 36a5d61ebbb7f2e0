// SPDX-License-Identifier: Apache-2.0 OR MIT
//! uart-pl011: the PL011 UART driver partition.
//!
//! It owns uart0's registers (mapped at IPA = PA by the manifest, reached
//! only through [`svc_rt::mmio::Device`], as the register block `drv_pl011`
//! describes for the kernel's console too) and its interrupt (bound to the
//! `uart-events` notification), and moves bytes between the UART and two
//! rings in shared memory that its one client, the console, fills and
//! drains. The protocol is documented in this crate's library
//! (`svc_uart_pl011`, `src/lib.rs`).
//!
//! Everything is interrupt-driven: the driver sleeps in `wait` on
//! `uart-events` and wakes when the console queued output or the UART
//! interrupted. Receive and receive-timeout interrupts drain the receive FIFO
//! into the receive ring; when the transmit FIFO is full the driver enables the
//! transmit interrupt and sleeps until the FIFO drains, never spinning.
//!
//! It does not touch the line settings (baud rate, word length), which
//! firmware and the kernel's early console chose. It prints only a start-up
//! line, through the kernel's log: it has no console channel, because the
//! console waits on it and must never be waited on in return.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use drv_pl011::{INT, Interrupts, Pl011};
use svc_rt::call;
use svc_rt::hypercall::CapSlot;
use svc_rt::mmio::Device;
use svc_rt::shared::Region;
use svc_uart_pl011::Buffers;

svc_rt::entry!(main);

/// The notification the driver waits on: console signals and uart0's interrupt.
const EVENTS: CapSlot = svc_rt::cap!(UART_EVENTS);
/// Signalled when bytes were added to the receive ring.
const INPUT: CapSlot = svc_rt::cap!(UART_INPUT);
/// Signalled when the console waits for transmit space and there is some.
const SPACE: CapSlot = svc_rt::cap!(UART_SPACE);
/// The device capability, to acknowledge its interrupt.
const UART0: CapSlot = svc_rt::cap!(UART0);

/// Bytes moved per batch between the UART and a ring.
const CHUNK: usize = 64;

/// At most this many bytes are taken from the receive FIFO per wake-up, so a
/// stuck device (a flag that never clears) cannot hold the driver forever.
const RECEIVE_LIMIT: usize = 4096;

struct Driver {
    uart: Pl011<'static>,
    buffers: Buffers,
    /// The interrupts enabled now.
    mask: Interrupts,
    /// Received bytes dropped: error flags, or the receive ring was full.
    dropped: u64,
}

impl Driver {
    fn set_mask(&mut self, mask: Interrupts) {
        if mask.get() != self.mask.get() {
            self.mask = mask;
            self.uart.set_enabled(mask);
        }
    }

    /// Drains the receive FIFO into the receive ring; whether it added bytes.
    fn receive(&mut self) -> bool {
        let mut chunk = [0u8; CHUNK];
        let mut len = 0;
        let mut added = false;
        let mut taken = 0;
        while taken < RECEIVE_LIMIT && !self.uart.receive_empty() {
            taken += 1;
            let Ok(byte) = self.uart.receive() else {
                self.dropped += 1;
                continue;
            };
            chunk[len] = byte;
            len += 1;
            if len == chunk.len() {
                added |= self.deliver(&chunk[..len]);
                len = 0;
            }
        }
        added |= self.deliver(&chunk[..len]);
        self.uart.clear(drv_pl011::receive_causes());
        added
    }

    fn deliver(&mut self, bytes: &[u8]) -> bool {
        let pushed = self.buffers.rx.push(bytes);
        self.dropped += (bytes.len() - pushed) as u64;
        pushed > 0
    }

    /// Says (through the kernel's log) how many received bytes were dropped,
    /// each time the count passes a power of two.
    fn report_drops(&mut self, before: u64) {
        if self.dropped != before
            && self.dropped.ilog2() != before.checked_ilog2().unwrap_or(u32::MAX)
        {
            svc_rt::println!(
                "{} received bytes dropped (errors, or the console did not keep up)",
                self.dropped
            );
        }
    }

    /// Moves queued output into the transmit FIFO until the ring is empty or
    /// the FIFO is full; in that case the transmit interrupt is enabled, so
    /// the driver wakes when there is room. Whether it consumed any bytes.
    fn transmit(&mut self) -> bool {
        let mut consumed = false;
        let mut full = false;
        let mut chunk = [0u8; CHUNK];
        loop {
            let queued = self.buffers.tx.peek(&mut chunk);
            if queued == 0 {
                break;
            }
            let mut sent = 0;
            while sent < queued {
                if self.uart.transmit_full() {
                    full = true;
                    break;
                }
                self.uart.send(chunk[sent]);
                sent += 1;
            }
            self.buffers.tx.advance(sent);
            consumed |= sent > 0;
            if full {
                break;
            }
        }
        // Clear a stale transmit interrupt before (re-)enabling it: it fires
        // again only once the FIFO has drained to its trigger level.
        self.uart.clear(INT::TX::SET);
        self.set_mask(drv_pl011::transmit_mask(self.mask, full));
        consumed
    }

    /// One wake-up's work.
    fn service(&mut self) {
        let dropped = self.dropped;
        let received = self.receive();
        self.report_drops(dropped);
        if received {
            let _ = call::signal(INPUT);
        }
        if self.transmit() && self.buffers.take_waiting() {
            let _ = call::signal(SPACE);
        }
    }
}

fn main(start: svc_rt::Start) -> ! {
    let registers = svc_rt::device!(UART0);
    let uart = Device::new(&start, registers.ipa as usize, registers.size as usize)
        .ok()
        .and_then(|device| device.registers::<drv_pl011::Registers>())
        .unwrap_or_else(|| {
            panic!(
                "uart0's registers ({} bytes at {:#x}) are unusable: they overlap this \
                 partition's RAM, or are too small or misaligned for a PL011",
                registers.size, registers.ipa
            )
        });
    let window = svc_rt::shared!(UART_BUFFERS);
    let buffers = Region::new(&start, window)
        .ok()
        .and_then(Buffers::new)
        .unwrap_or_else(|| {
            panic!(
                "the uart-buffers region ({} bytes at {:#x}) is unusable: it needs {} bytes outside RAM",
                window.size,
                window.ipa,
                svc_uart_pl011::REGION_SIZE
            )
        });
    svc_rt::println!(
        "driving the PL011 at {:#x}, interrupt-driven; output and input through shared rings",
        registers.ipa
    );
    let mut driver = Driver {
        uart: Pl011::new(uart),
        buffers,
        mask: Interrupts::new(0),
        dropped: 0,
    };
    driver.uart.clear(drv_pl011::ALL);
    driver.set_mask(Interrupts::new(u32::from(INT::RX::SET + INT::RT::SET)));
    loop {
        driver.service();
        // Unmask the interrupt if it was delivered; harmless if it was not.
        let _ = call::irq_ack(UART0);
        if call::wait(EVENTS).is_err() {
            call::yield_now();
        }
    }
}
