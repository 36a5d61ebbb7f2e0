// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The PL011 UART, through tock-registers.
//!
//! The one place in this crate that turns a physical address into a register
//! block. The kernel identity-maps the UART as device memory, so the same
//! address works before and after the MMU is turned on.
//!
//! Every wait on the UART is bounded ([`hv_core::uart::Transmitter`]
//! decides): a partition that owns the UART, or a UART that never drains,
//! costs the kernel dropped output, never a hang.

use hv_core::platform::Uart;
use hv_core::uart::{Decision, Transmitter};
use hv_kernel::console::Console;
use spin::Once;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! [u32,
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) [],
    ],
    LCR_H [
        /// Word length.
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        /// FIFOs enabled.
        FEN OFFSET(4) NUMBITS(1) [],
    ],
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) [],
    ],
];

register_structs! {
    Registers {
        (0x000 => dr: ReadWrite<u32>),
        (0x004 => _reserved0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        (0x02c => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x030 => cr: ReadWrite<u32, CR::Register>),
        (0x034 => _reserved2),
        (0x038 => imsc: ReadWrite<u32>),
        (0x03c => _reserved3),
        (0x044 => icr: WriteOnly<u32>),
        (0x048 => @END),
    }
}

/// A PL011 the kernel prints through.
///
/// # Invariants
/// `registers` points at a PL011 register block that nothing else in the
/// kernel drives.
pub(crate) struct Pl011 {
    registers: &'static Registers,
    /// Whether the UART was found stalled, and what was dropped. Writers
    /// hold the kernel's console lock, so this lock is free but for the
    /// panic path, which then waits with a bound of its own.
    transmitter: spin::Mutex<Transmitter>,
}

// SAFETY: every access is a volatile read or write of a device register; two
// cores writing at once can interleave characters (the kernel's console lock
// prevents that) but cannot break memory safety.
unsafe impl Sync for Pl011 {}

// SAFETY: as for `Sync`: the register block is a device, not memory owned by
// one core, so the handle may move between cores.
unsafe impl Send for Pl011 {}

impl Pl011 {
    fn init(&self) {
        // Keep the line settings firmware chose (the baud rate depends on a
        // clock only firmware knows); only enable what is off.
        if !self.registers.cr.is_set(CR::UARTEN) {
            self.registers
                .lcr_h
                .write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        }
        self.registers.imsc.set(0);
        self.registers.icr.set(0x7ff);
        self.registers
            .cr
            .modify(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    fn put(&self, transmitter: &mut Transmitter, byte: u8) {
        if transmitter.admit(|| self.registers.fr.is_set(FR::TXFF)) == Decision::Send {
            self.registers.dr.set(u32::from(byte));
        }
    }
}

impl Console for Pl011 {
    fn write_bytes(&self, bytes: &[u8]) {
        // Another core panicking while this one prints: a fresh bound.
        let mut spare = Transmitter::new();
        let mut guard = self.transmitter.try_lock();
        let transmitter = guard.as_deref_mut().unwrap_or(&mut spare);
        for &byte in bytes {
            if byte == b'\n' {
                self.put(transmitter, b'\r');
            }
            self.put(transmitter, byte);
        }
        transmitter.drain(|| self.registers.fr.is_set(FR::BUSY));
    }

    fn dropped(&self) -> u64 {
        self.transmitter.try_lock().map_or(0, |t| t.dropped())
    }
}

static CONSOLE: Once<Pl011> = Once::new();

/// The PL011 that `uart` describes, set up as the console. Only the first
/// call's UART is used: the kernel has one console.
pub(crate) fn pl011(uart: &Uart) -> &'static Pl011 {
    CONSOLE.call_once(|| {
        let base = uart.registers.start() as usize;
        // SAFETY: the device tree (or platform.toml, when there is none) says a
        // PL011 sits at `base`; the kernel maps it as device memory and drives
        // it only through this one `Pl011` (the `Once` above), which upholds
        // the type's invariant.
        let registers = unsafe { &*(base as *const Registers) };
        let pl011 = Pl011 {
            registers,
            transmitter: spin::Mutex::new(Transmitter::new()),
        };
        pl011.init();
        pl011
    })
}
