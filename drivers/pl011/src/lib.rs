// SPDX-License-Identifier: Apache-2.0 OR MIT
//! drv-pl011: the Arm PrimeCell UART (PL011), described once.
//!
//! The register block ([`Registers`]) and its fields, from the PL011
//! Technical Reference Manual (Arm DDI 0183), and what a driver does with
//! them ([`Pl011`]): the kernel's console (`platforms/qemu-virt/src/mmio.rs`,
//! at EL2) and the UART driver partition (`services/uart-pl011`, at EL0)
//! both drive the same device through this crate, so its layout and bits are
//! written in one place.
//!
//! # Where it lives, and why
//!
//! `drivers/` holds device descriptions that both sides of the EL2 boundary
//! use: the kernel must not depend on the partition runtime, nor a partition
//! on the kernel, so the PL011 belongs to neither `kernel/` nor `services/`
//! (Hubris keeps its shared drivers in `drv/` for the same reason, and names
//! them `drv-*`).
//!
//! # No unsafe here
//!
//! This crate never turns an address into a register block: whoever owns
//! the device does, in one of the places allowed to (STYLE.md): the
//! platform's `mmio` module for the kernel, `svc_rt::mmio` for a partition.
//! The decisions that need no device (decoding a received word, the
//! interrupts a driver wants) are plain functions, tested on the host.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

use tock_registers::fields::FieldValue;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{LocalRegisterCopy, register_structs};

pub use bitfields::{CR, DR, FR, INT, LCR_H};

/// The registers' fields. `register_bitfields!` gives each register a
/// module of generated items (its `Register` marker, each field's
/// `SET`/`CLEAR` values) that carry no documentation of their own.
#[expect(
    missing_docs,
    reason = "register_bitfields! generates undocumented items; the fields are documented"
)]
mod bitfields {
    tock_registers::register_bitfields! [u32,
    /// UARTDR: data.
    pub DR [
        /// Overrun: the receive FIFO was full when this byte arrived.
        OE OFFSET(11) NUMBITS(1) [],
        /// Break received.
        BE OFFSET(10) NUMBITS(1) [],
        /// Parity error.
        PE OFFSET(9) NUMBITS(1) [],
        /// Framing error.
        FE OFFSET(8) NUMBITS(1) [],
        /// The byte.
        DATA OFFSET(0) NUMBITS(8) [],
    ],
    /// UARTFR: flags.
    pub FR [
        /// Transmit FIFO empty.
        TXFE OFFSET(7) NUMBITS(1) [],
        /// Receive FIFO full.
        RXFF OFFSET(6) NUMBITS(1) [],
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// Busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) [],
    ],
    /// UARTLCR_H: line control.
    pub LCR_H [
        /// Word length.
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        /// FIFOs enabled.
        FEN OFFSET(4) NUMBITS(1) [],
    ],
    /// UARTCR: control.
    pub CR [
        /// Clear-to-send flow control.
        CTSEN OFFSET(15) NUMBITS(1) [],
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) [],
    ],
    /// The interrupts, as UARTIMSC (mask: a set bit enables), UARTRIS,
    /// UARTMIS and UARTICR (a set bit clears) lay them out.
    pub INT [
        /// Overrun error.
        OE OFFSET(10) NUMBITS(1) [],
        /// Break error.
        BE OFFSET(9) NUMBITS(1) [],
        /// Parity error.
        PE OFFSET(8) NUMBITS(1) [],
        /// Framing error.
        FE OFFSET(7) NUMBITS(1) [],
        /// Receive timeout: bytes wait below the trigger level.
        RT OFFSET(6) NUMBITS(1) [],
        /// Transmit: the FIFO is at or below its trigger level.
        TX OFFSET(5) NUMBITS(1) [],
        /// Receive: the FIFO is at its trigger level.
        RX OFFSET(4) NUMBITS(1) [],
        /// The modem interrupts (DSR, DCD, CTS, RI).
        MODEM OFFSET(0) NUMBITS(4) [],
    ],
    ];
}

register_structs! {
    /// The PL011's registers, as far as Bulkhead drives them.
    pub Registers {
        (0x000 => dr: ReadWrite<u32, DR::Register>),
        (0x004 => _reserved0),
        (0x018 => fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        (0x024 => ibrd: ReadWrite<u32>),
        (0x028 => fbrd: ReadWrite<u32>),
        (0x02c => lcr_h: ReadWrite<u32, LCR_H::Register>),
        (0x030 => cr: ReadWrite<u32, CR::Register>),
        (0x034 => _reserved2),
        (0x038 => imsc: ReadWrite<u32, INT::Register>),
        (0x03c => _reserved3),
        (0x044 => icr: WriteOnly<u32, INT::Register>),
        (0x048 => @END),
    }
}

/// A set of the UART's interrupts (a value of UARTIMSC or UARTICR).
pub type Interrupts = LocalRegisterCopy<u32, INT::Register>;

/// Every interrupt the PL011 has.
pub const ALL: FieldValue<u32, INT::Register> =
    FieldValue::<u32, INT::Register>::new(0x7ff, 0, 0x7ff);

/// What a driver that receives clears after draining the receive FIFO: the
/// receive and receive-timeout interrupts and the four error interrupts.
#[must_use]
pub fn receive_causes() -> FieldValue<u32, INT::Register> {
    INT::RX::SET + INT::RT::SET + INT::OE::SET + INT::BE::SET + INT::PE::SET + INT::FE::SET
}

/// Why a received word carried no byte: framing, parity, break or overrun
/// (its UARTDR error flags, bits 11:8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceiveError(pub u32);

/// The byte a word read from UARTDR carries, unless it has error flags.
pub fn decode(word: u32) -> Result<u8, ReceiveError> {
    let word = LocalRegisterCopy::<u32, DR::Register>::new(word);
    let errors = word.get() & (DR::OE::SET + DR::BE::SET + DR::PE::SET + DR::FE::SET).mask();
    if errors == 0 {
        Ok(word.read(DR::DATA) as u8)
    } else {
        Err(ReceiveError(errors >> 8))
    }
}

/// The interrupts a transmitting driver leaves enabled: `enabled` with the
/// transmit interrupt on if the transmit FIFO was found full (so it wakes
/// when there is room), off otherwise (so an empty FIFO does not wake it).
#[must_use]
pub fn transmit_mask(enabled: Interrupts, fifo_full: bool) -> Interrupts {
    let mut mask = enabled;
    mask.modify(if fifo_full {
        INT::TX::SET
    } else {
        INT::TX::CLEAR
    });
    mask
}

/// The baud rate divisor registers' values (UARTIBRD, UARTFBRD) for `baud`
/// from a reference clock of `clock_hz`: the divisor `clock / (16 x baud)`
/// in 64ths, rounded to the nearest, split into its integer part (16 bits)
/// and its fraction (6 bits). `None` if it does not fit (a clock too slow or
/// too fast for the rate).
#[must_use]
pub const fn baud_divisors(clock_hz: u32, baud: u32) -> Option<(u32, u32)> {
    if baud == 0 {
        return None;
    }
    // 64 x clock / (16 x baud) = 4 x clock / baud, rounded.
    let sixty_fourths = (4 * clock_hz as u64 + baud as u64 / 2) / baud as u64;
    let integer = sixty_fourths >> 6;
    if integer == 0 || integer > 0xffff {
        return None;
    }
    Some((integer as u32, (sixty_fourths & 0x3f) as u32))
}

/// The console's line speed.
pub const CONSOLE_BAUD: u32 = 115_200;

/// Polls of the busy flag before the line settings change anyway.
const IDLE_POLLS: u32 = 100_000;

/// A PL011 register block, and what can be done with it.
#[derive(Clone, Copy)]
pub struct Pl011<'a> {
    registers: &'a Registers,
}

impl<'a> Pl011<'a> {
    /// The UART whose registers are `registers`.
    #[must_use]
    pub const fn new(registers: &'a Registers) -> Self {
        Self { registers }
    }

    /// Turns the UART on for the kernel's console at [`CONSOLE_BAUD`], 8N1
    /// with FIFOs, from a reference clock of `clock_hz`: waits (a bounded
    /// while) for what it is sending, turns it off, sets the divisors and
    /// the line (writing UARTLCR_H is what makes the divisors take), then
    /// as [`Pl011::enable`]. For boards whose firmware leaves the UART
    /// unprogrammed; a clock the rate cannot be divided from keeps the
    /// firmware's settings.
    pub fn enable_at(&self, clock_hz: u32) {
        if let Some((integer, fraction)) = baud_divisors(clock_hz, CONSOLE_BAUD) {
            let _ = (0..IDLE_POLLS).find(|_| !self.busy());
            self.registers.cr.set(0);
            self.registers.ibrd.set(integer);
            self.registers.fbrd.set(fraction);
            self.registers
                .lcr_h
                .write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        }
        self.enable();
    }

    /// Turns the UART on for the kernel's console: keeps the line settings
    /// firmware chose (the baud rate depends on a clock only firmware
    /// knows), choosing 8 bits with FIFOs only if the UART was off; masks
    /// and clears every interrupt; enables transmit and receive.
    pub fn enable(&self) {
        if !self.registers.cr.is_set(CR::UARTEN) {
            self.registers
                .lcr_h
                .write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        }
        self.registers.imsc.set(0);
        self.registers.icr.write(ALL);
        self.registers
            .cr
            .modify(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Whether the transmit FIFO is full.
    #[must_use]
    pub fn transmit_full(&self) -> bool {
        self.registers.fr.is_set(FR::TXFF)
    }

    /// Whether the UART is still sending.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.registers.fr.is_set(FR::BUSY)
    }

    /// Whether the receive FIFO is empty.
    #[must_use]
    pub fn receive_empty(&self) -> bool {
        self.registers.fr.is_set(FR::RXFE)
    }

    /// Queues `byte` for sending (the caller saw room: [`Self::transmit_full`]).
    pub fn send(&self, byte: u8) {
        self.registers.dr.write(DR::DATA.val(u32::from(byte)));
    }

    /// Takes the next word from the receive FIFO (the caller saw one:
    /// [`Self::receive_empty`]), [`decode`]d.
    pub fn receive(&self) -> Result<u8, ReceiveError> {
        decode(self.registers.dr.get())
    }

    /// Enables exactly the interrupts in `enabled` (UARTIMSC).
    pub fn set_enabled(&self, enabled: Interrupts) {
        self.registers.imsc.set(enabled.get());
    }

    /// Clears the interrupts in `causes` (UARTICR).
    pub fn clear(&self, causes: FieldValue<u32, INT::Register>) {
        self.registers.icr.write(causes);
    }
}

#[cfg(test)]
mod tests {
    use super::{
        ALL, INT, Interrupts, ReceiveError, baud_divisors, decode, receive_causes, transmit_mask,
    };

    #[test]
    fn divisors_for_the_consoles_of_both_boards() {
        // The Pi 4's 48 MHz: 26 + 3/64, 115,176 baud (0.02 percent slow).
        assert_eq!(baud_divisors(48_000_000, 115_200), Some((26, 3)));
        // QEMU virt's 24 MHz apb_pclk.
        assert_eq!(baud_divisors(24_000_000, 115_200), Some((13, 1)));
        assert_eq!(baud_divisors(3_000_000, 115_200), Some((1, 40)));
        assert_eq!(baud_divisors(48_000_000, 0), None);
        // Too slow a clock for the rate, and a divisor past 16 bits.
        assert_eq!(baud_divisors(1_000_000, 115_200), None);
        assert_eq!(baud_divisors(u32::MAX, 300), None);
    }

    #[test]
    fn a_clean_word_is_its_byte() {
        assert_eq!(decode(0x41), Ok(b'A'));
        assert_eq!(decode(0xff), Ok(0xff));
        // Bits above the error flags are reserved and ignored.
        assert_eq!(decode(0xf000 | 0x0a), Ok(b'\n'));
    }

    #[test]
    fn a_word_with_error_flags_is_dropped() {
        assert_eq!(decode(0x100 | 0x41), Err(ReceiveError(0b0001)));
        assert_eq!(decode(0x800), Err(ReceiveError(0b1000)));
        assert_eq!(decode(0xf41), Err(ReceiveError(0b1111)));
    }

    #[test]
    fn the_interrupt_sets_match_the_manual() {
        assert_eq!(u32::from(ALL), 0x7ff);
        // RX, RT and the four errors (bits 4, 6 and 7 to 10).
        assert_eq!(u32::from(receive_causes()), 0x7d0);
        assert_eq!(u32::from(INT::TX::SET), 1 << 5);
    }

    #[test]
    fn the_transmit_interrupt_follows_the_fifo() {
        let receiving = Interrupts::new(u32::from(INT::RX::SET + INT::RT::SET));
        let full = transmit_mask(receiving, true);
        assert!(full.is_set(INT::TX) && full.is_set(INT::RX) && full.is_set(INT::RT));
        let drained = transmit_mask(full, false);
        assert_eq!(drained.get(), receiving.get());
        assert_eq!(transmit_mask(receiving, false).get(), receiving.get());
    }

    #[test]
    fn the_register_block_is_laid_out_as_the_manual_says() {
        assert_eq!(size_of::<super::Registers>(), 0x48);
        assert_eq!(core::mem::offset_of!(super::Registers, fr), 0x18);
        assert_eq!(core::mem::offset_of!(super::Registers, lcr_h), 0x2c);
        assert_eq!(core::mem::offset_of!(super::Registers, cr), 0x30);
        assert_eq!(core::mem::offset_of!(super::Registers, imsc), 0x38);
        assert_eq!(core::mem::offset_of!(super::Registers, icr), 0x44);
    }
}
