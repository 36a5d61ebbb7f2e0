// SPDX-License-Identifier: Apache-2.0 OR MIT
//! A model of the Arm PL011 UART, as Linux's `amba-pl011` driver uses it.
//!
//! The guest sees a 4 KiB register frame; the monitor turns each trapped access into
//! [`Pl011::read`] or [`Pl011::write`], hands the keyboard's bytes to
//! [`Pl011::push_input`], prints what [`Pl011::take_output`] returns (or passes a sink to
//! [`Pl011::write_with`]), and drives the UART's interrupt line (SPI 1 on QEMU `virt`) from
//! [`Pl011::interrupt_level`] after each of these.
//!
//! Transmission is instant: a byte written to DR is out before the next access, so the
//! transmit FIFO is always empty (FR.TXFE set, TXFF and BUSY clear). Reception has a FIFO of
//! 32 bytes with LCR_H.FEN set and a single holding register without; what does not fit is
//! refused, so the monitor keeps it for later.
//!
//! What Linux 6.1 relies on (`drivers/tty/serial/amba-pl011.c`, `drivers/amba/bus.c`):
//! - The AMBA bus probes the device by reading the PrimeCell ID registers at 0xfe0..0xffc
//!   (`amba_read_periphid`): cell ID 0xb105f00d and peripheral ID 0x00141011, a PL011 of
//!   revision 1 as QEMU reports, for which the driver assumes a 16-byte FIFO.
//! - Without `clocks`/`clock-names = "apb_pclk"` in the device tree it never gets that far
//!   (see [`crate::fdt`]).
//! - Registers are accessed 16 bits wide (`UPIO_MEM`, `readw`/`writew`), and `earlycon`
//!   writes DR with single bytes: 8, 16 and 32-bit accesses all work; a narrow access at an
//!   offset inside a register reads that part of it, and a write there is ignored.
//! - `pl011_console_write` and `pl011_tx_char` poll FR.TXFF before writing DR and wait for
//!   FR.BUSY to clear; both are always clear here.
//! - `pl011_int` reads RIS & IMSC, clears with ICR everything except TXIS, RTIS and RXIS,
//!   reads DR until FR.RXFE on RXIS or RTIS (`pl011_rx_chars`), refills DR on TXIS
//!   (`pl011_tx_chars`, half a FIFO per interrupt without looking at TXFF), and loops until
//!   RIS & IMSC is zero. `pl011_enable_interrupts` clears RXIS/RTIS, drains the FIFO, then sets
//!   IMSC to RXIM | RTIM; `pl011_start_tx_pio` sets TXIM only while it has bytes left to send.
//!
//! So the interrupt bits behave as QEMU's `hw/char/pl011.c` makes them (not copied):
//! - RXIS and RTIS are raised whenever a byte is received and clear when the FIFO empties (or
//!   by ICR): data waiting is always signalled, whether or not the FIFO reached its trigger
//!   level, and with no clock the receive timeout counts as already expired. This is what
//!   lets a driver that reads only in its interrupt handler see every byte.
//! - TXIS is raised by every byte transmitted (the FIFO has drained below its trigger) and
//!   cleared only by ICR, so a driver that enables TXIM with bytes left gets its interrupt at
//!   once and refills.
//!
//! `tests/linux_trace.rs` replays every PL011 access of a Linux 6.1 boot on QEMU, with typed
//! input, and checks each read and the interrupt line against QEMU's model.
//!
//! Not modelled: DMA (DMACR is stored, nothing more; Linux uses DMA only with `dmas` in the
//! device tree), break, parity and framing errors (RSR always reads 0), modem status lines,
//! IrDA. With CR.LBE (loopback) set, transmitted bytes go to the receive FIFO instead of out,
//! and input is refused.

use alloc::vec::Vec;

/// Register offsets in the 4 KiB frame.
pub mod offset {
    /// Data register.
    pub const DR: u64 = 0x000;
    /// Receive status (read) / error clear (write).
    pub const RSR_ECR: u64 = 0x004;
    /// Flag register.
    pub const FR: u64 = 0x018;
    /// IrDA low-power counter.
    pub const ILPR: u64 = 0x020;
    /// Integer baud rate divisor.
    pub const IBRD: u64 = 0x024;
    /// Fractional baud rate divisor.
    pub const FBRD: u64 = 0x028;
    /// Line control.
    pub const LCR_H: u64 = 0x02c;
    /// Control.
    pub const CR: u64 = 0x030;
    /// Interrupt FIFO level select.
    pub const IFLS: u64 = 0x034;
    /// Interrupt mask set/clear.
    pub const IMSC: u64 = 0x038;
    /// Raw interrupt status.
    pub const RIS: u64 = 0x03c;
    /// Masked interrupt status.
    pub const MIS: u64 = 0x040;
    /// Interrupt clear (write-only).
    pub const ICR: u64 = 0x044;
    /// DMA control.
    pub const DMACR: u64 = 0x048;
    /// First of the eight PrimeCell ID registers (periph ID 0..3, cell ID 0..3).
    pub const ID_BASE: u64 = 0xfe0;
}

/// FR: UART busy transmitting.
pub const FR_BUSY: u32 = 1 << 3;
/// FR: receive FIFO empty.
pub const FR_RXFE: u32 = 1 << 4;
/// FR: transmit FIFO full.
pub const FR_TXFF: u32 = 1 << 5;
/// FR: receive FIFO full.
pub const FR_RXFF: u32 = 1 << 6;
/// FR: transmit FIFO empty.
pub const FR_TXFE: u32 = 1 << 7;
/// LCR_H: FIFOs enabled.
pub const LCR_H_FEN: u32 = 1 << 4;
/// CR: UART enabled.
pub const CR_UARTEN: u32 = 1 << 0;
/// CR: loopback.
pub const CR_LBE: u32 = 1 << 7;
/// CR: transmit enabled.
pub const CR_TXE: u32 = 1 << 8;
/// CR: receive enabled.
pub const CR_RXE: u32 = 1 << 9;
/// Interrupt bit (IMSC, RIS, MIS, ICR): receive.
pub const INT_RX: u32 = 1 << 4;
/// Interrupt bit: transmit.
pub const INT_TX: u32 = 1 << 5;
/// Interrupt bit: receive timeout.
pub const INT_RT: u32 = 1 << 6;

/// Receive FIFO depth with LCR_H.FEN set.
pub const FIFO_DEPTH: usize = 32;

/// The most transmitted bytes [`Pl011::write`] keeps for [`Pl011::take_output`]; beyond
/// this they are dropped and counted ([`Pl011::dropped_output`]).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// Peripheral ID 0..3 then PrimeCell ID 0..3, as QEMU's PL011 reports them.
const ID_REGISTERS: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

const CR_RESET: u32 = CR_RXE | CR_TXE;
const IFLS_RESET: u32 = 0x12;
/// The eleven interrupt bits of IMSC/RIS/MIS/ICR.
const INT_MASK: u32 = 0x7ff;

/// One PL011.
#[derive(Clone, Debug)]
pub struct Pl011 {
    rx: [u8; FIFO_DEPTH],
    rx_head: usize,
    rx_len: usize,
    ilpr: u32,
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ris: u32,
    dmacr: u32,
    output: Vec<u8>,
    dropped: u64,
}

impl Default for Pl011 {
    fn default() -> Self {
        Self::new()
    }
}

impl Pl011 {
    /// A PL011 in its reset state: FIFOs off, UART disabled with TXE and RXE set, every
    /// interrupt masked.
    pub fn new() -> Self {
        Self {
            rx: [0; FIFO_DEPTH],
            rx_head: 0,
            rx_len: 0,
            ilpr: 0,
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            ris: 0,
            dmacr: 0,
            output: Vec::new(),
            dropped: 0,
        }
    }

    /// Back to the reset state (for a guest reset); output not yet taken is discarded.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// The guest reads `size` bytes (1, 2 or 4) at `offset`. Reading DR takes a byte from the
    /// receive FIFO. Unknown offsets and sizes read 0.
    pub fn read(&mut self, offset: u64, size: u8) -> u32 {
        if !matches!(size, 1 | 2 | 4) || offset >= 0x1000 {
            return 0;
        }
        let register = offset & !3;
        let shift = (offset & 3) * 8;
        let value = if register == offset::DR && shift == 0 {
            self.read_data()
        } else {
            self.peek(register)
        };
        let mask = if size == 4 {
            u32::MAX
        } else {
            (1 << (u32::from(size) * 8)) - 1
        };
        (value >> shift) & mask
    }

    /// The guest writes `value` (its low `size` bytes, 1, 2 or 4) at `offset`; transmitted
    /// bytes are kept for [`Pl011::take_output`]. Unknown offsets, sizes, and writes at an
    /// offset inside a register are ignored.
    pub fn write(&mut self, offset: u64, size: u8, value: u32) {
        let mut kept = core::mem::take(&mut self.output);
        let mut dropped = 0;
        self.write_with(offset, size, value, |byte| {
            if kept.len() < OUTPUT_LIMIT {
                kept.push(byte);
            } else {
                dropped += 1;
            }
        });
        self.output = kept;
        self.dropped += dropped;
    }

    /// As [`Pl011::write`], but a transmitted byte goes to `sink`.
    pub fn write_with(&mut self, offset: u64, size: u8, value: u32, mut sink: impl FnMut(u8)) {
        if !matches!(size, 1 | 2 | 4) || offset >= 0x1000 || offset & 3 != 0 {
            return;
        }
        let value = if size == 4 {
            value
        } else {
            value & ((1 << (u32::from(size) * 8)) - 1)
        };
        match offset {
            offset::DR => {
                let byte = value as u8;
                if self.cr & CR_LBE != 0 {
                    self.receive(&[byte]);
                } else {
                    sink(byte);
                }
                self.ris |= INT_TX;
            }
            offset::ILPR => self.ilpr = value & 0xff,
            offset::IBRD => self.ibrd = value & 0xffff,
            offset::FBRD => self.fbrd = value & 0x3f,
            offset::LCR_H => {
                if (self.lcr_h ^ value) & LCR_H_FEN != 0 {
                    // The FIFO changes depth: it starts again empty.
                    self.rx_len = 0;
                    self.rx_head = 0;
                    self.ris &= !(INT_RX | INT_RT);
                }
                self.lcr_h = value & 0xff;
            }
            offset::CR => self.cr = value & 0xffff,
            offset::IFLS => self.ifls = value & 0x3f,
            offset::IMSC => self.imsc = value & INT_MASK,
            offset::ICR => self.ris &= !value,
            offset::DMACR => self.dmacr = value & 0x7,
            // RSR/ECR: a write clears errors, and there never are any. FR, RIS, MIS and the
            // ID registers are read-only.
            _ => {}
        }
    }

    /// Bytes transmitted since the last call, oldest first.
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.output)
    }

    /// How many transmitted bytes [`Pl011::write`] dropped because nobody took the output.
    pub fn dropped_output(&self) -> u64 {
        self.dropped
    }

    /// Offers received bytes to the UART; returns how many it took (from the start of
    /// `bytes`), at most the FIFO's free room: 32 bytes with FIFOs enabled, 1 without.
    /// None while in loopback.
    pub fn push_input(&mut self, bytes: &[u8]) -> usize {
        if self.cr & CR_LBE != 0 {
            return 0;
        }
        self.receive(bytes)
    }

    /// How many more bytes [`Pl011::push_input`] would take now.
    pub fn input_room(&self) -> usize {
        if self.cr & CR_LBE != 0 {
            0
        } else {
            self.capacity() - self.rx_len
        }
    }

    /// The level of the UART's combined interrupt line: some raw interrupt is unmasked.
    pub fn interrupt_level(&self) -> bool {
        self.ris & self.imsc != 0
    }

    fn capacity(&self) -> usize {
        if self.lcr_h & LCR_H_FEN != 0 {
            FIFO_DEPTH
        } else {
            1
        }
    }

    fn receive(&mut self, bytes: &[u8]) -> usize {
        let taken = bytes.len().min(self.capacity() - self.rx_len);
        for &byte in &bytes[..taken] {
            self.rx[(self.rx_head + self.rx_len) % FIFO_DEPTH] = byte;
            self.rx_len += 1;
        }
        if taken > 0 {
            self.ris |= INT_RX | INT_RT;
        }
        taken
    }

    fn read_data(&mut self) -> u32 {
        if self.rx_len == 0 {
            return 0;
        }
        let byte = self.rx[self.rx_head];
        self.rx_head = (self.rx_head + 1) % FIFO_DEPTH;
        self.rx_len -= 1;
        if self.rx_len == 0 {
            self.ris &= !(INT_RX | INT_RT);
        }
        u32::from(byte)
    }

    /// A register's value, without side effects. DR shows the next byte without taking it.
    fn peek(&self, register: u64) -> u32 {
        match register {
            offset::DR if self.rx_len > 0 => u32::from(self.rx[self.rx_head]),
            offset::FR => self.flags(),
            offset::ILPR => self.ilpr,
            offset::IBRD => self.ibrd,
            offset::FBRD => self.fbrd,
            offset::LCR_H => self.lcr_h,
            offset::CR => self.cr,
            offset::IFLS => self.ifls,
            offset::IMSC => self.imsc,
            offset::RIS => self.ris,
            offset::MIS => self.ris & self.imsc,
            offset::DMACR => self.dmacr,
            0xfe0..=0xffc => ID_REGISTERS[((register - offset::ID_BASE) / 4) as usize].into(),
            _ => 0,
        }
    }

    fn flags(&self) -> u32 {
        let mut flags = FR_TXFE;
        if self.rx_len == 0 {
            flags |= FR_RXFE;
        }
        if self.rx_len == self.capacity() {
            flags |= FR_RXFF;
        }
        flags
    }
}

#[cfg(test)]
mod tests;
