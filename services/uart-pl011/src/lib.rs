// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The interface of the `uart-pl011` driver: two byte rings in shared memory
//! and three notifications. The driver's program is `src/main.rs`; this
//! library is what its client (the console) links to speak to it.
//!
//! # Why rings and notifications, not an endpoint
//!
//! The driver must wait for its interrupt (a notification) and for output
//! to send, and a partition cannot wait on an endpoint and a notification at
//! once. So the driver waits on one notification only, and everything else
//! reaches it as bits on that notification and bytes in shared memory. It
//! never calls anyone, so it can never be blocked by its client.
//!
//! # The channels (see `systems/demo.toml`)
//!
//! | channel | kind | who | meaning |
//! |---|---|---|---|
//! | `uart-buffers` | shared memory, at least [`REGION_SIZE`] | driver and console, both read-write | the rings below |
//! | `uart-events` | notification | the driver waits; the console signals; uart0's interrupt is bound to it | "look again": output was queued, or the UART interrupted |
//! | `uart-input` | notification | the console waits; the driver signals | input bytes were added to the receive ring |
//! | `uart-space` | notification | the console waits; the driver signals | the transmit ring has room again (only when [`Buffers::set_waiting`] asked) |
//!
//! # The region
//!
//! | offset | what |
//! |---:|---|
//! | [`TX_OFFSET`] | transmit ring ([`svc_rt::ring`]), [`TX_CAPACITY`] bytes: the console produces, the driver consumes |
//! | [`RX_OFFSET`] | receive ring, [`RX_CAPACITY`] bytes: the driver produces, the console consumes |
//! | [`WAITING_OFFSET`] | a 32-bit word: 1 while the console waits for transmit space |
//!
//! # The protocol
//!
//! - **Output.** The console pushes bytes into the transmit ring, then
//!   signals `uart-events`. The driver moves bytes from the ring into the
//!   UART's transmit FIFO until the ring is empty or the FIFO is full; if the
//!   FIFO filled, it enables the transmit interrupt and waits for it instead
//!   of spinning. Bytes go out exactly as queued (the console sends `\r\n`).
//! - **Back-pressure.** When the transmit ring lacks room, the console stores
//!   1 in the waiting word, issues a sequentially consistent fence, looks at
//!   the ring again, and only then waits on `uart-space`. The driver, after
//!   consuming bytes, fences, reads the word, and if it is 1 clears it and
//!   signals `uart-space`. The fences on both sides mean that either the
//!   console sees the room or the driver sees the word: no lost wake-up.
//! - **Input.** On a receive or receive-timeout interrupt the driver drains
//!   the receive FIFO into the receive ring (dropping bytes with framing,
//!   parity, break or overrun errors, and bytes that find the ring full) and
//!   signals `uart-input` if it added any.
//! - **Interrupts.** The kernel masks uart0's interrupt when it fires; the
//!   driver clears the causes it handled in the UART, then acknowledges with
//!   `irq_ack` after every wake-up (acknowledging an interrupt that is not
//!   masked is harmless), so it needs no knowledge of which bit is which.
#![no_std]

use core::sync::atomic::{Ordering, fence};

use svc_rt::ring::Ring;
use svc_rt::shared::Region;

/// Capacity of the transmit ring (console to driver), bytes.
pub const TX_CAPACITY: usize = 4096;
/// Capacity of the receive ring (driver to console), bytes.
pub const RX_CAPACITY: usize = 1024;
/// Where the transmit ring starts in the region.
pub const TX_OFFSET: usize = 0;
/// Where the receive ring starts in the region.
pub const RX_OFFSET: usize = TX_OFFSET + Ring::footprint(TX_CAPACITY);
/// Where the console's "waiting for transmit space" word is.
pub const WAITING_OFFSET: usize = RX_OFFSET + Ring::footprint(RX_CAPACITY);
/// The least size of the `uart-buffers` region.
pub const REGION_SIZE: usize = WAITING_OFFSET + 64;

/// The two rings and the waiting word, in the shared region.
#[derive(Clone, Copy, Debug)]
pub struct Buffers {
    /// Console to driver: bytes to transmit.
    pub tx: Ring,
    /// Driver to console: bytes received.
    pub rx: Ring,
    region: Region,
}

impl Buffers {
    /// The buffers in `region`; `None` if it is smaller than [`REGION_SIZE`].
    #[must_use]
    pub fn new(region: Region) -> Option<Self> {
        if region.size() < REGION_SIZE {
            return None;
        }
        Some(Self {
            tx: Ring::new(region, TX_OFFSET, TX_CAPACITY)?,
            rx: Ring::new(region, RX_OFFSET, RX_CAPACITY)?,
            region,
        })
    }

    /// Console: says it is about to wait for transmit space. Check the ring
    /// again after this, and wait on `uart-space` only if it is still full.
    pub fn set_waiting(&self) {
        self.region.store32(WAITING_OFFSET, 1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Driver: after consuming transmit bytes, whether the console waits for
    /// space (and, if so, forget it: the caller signals `uart-space`).
    #[must_use]
    pub fn take_waiting(&self) -> bool {
        fence(Ordering::SeqCst);
        if self.region.load32(WAITING_OFFSET, Ordering::SeqCst) == Some(0) {
            return false;
        }
        self.region.store32(WAITING_OFFSET, 0, Ordering::SeqCst);
        true
    }
}
