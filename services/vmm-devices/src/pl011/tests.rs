// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of the PL011 model, several of them replaying what Linux's driver does.

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::{Just, Strategy, any, prop_assert, prop_assert_eq, prop_oneof, proptest};

use super::offset::{
    CR, DMACR, DR, FBRD, FR, IBRD, ICR, IFLS, ILPR, IMSC, LCR_H, MIS, RIS, RSR_ECR,
};
use super::{
    CR_LBE, CR_RXE, CR_TXE, CR_UARTEN, FIFO_DEPTH, FR_BUSY, FR_RXFE, FR_RXFF, FR_TXFE, FR_TXFF,
    INT_RT, INT_RX, INT_TX, LCR_H_FEN, OUTPUT_LIMIT, Pl011,
};

/// The UART as Linux leaves it after `pl011_startup` and `pl011_set_termios`: 115200 8N1
/// with FIFOs, enabled, RX and RT interrupts unmasked.
fn linux_started() -> Pl011 {
    let mut uart = Pl011::new();
    // pl011_hwinit: clear error and receive interrupts, read the mask, unmask RX.
    uart.write(ICR, 2, 0x7f0 | INT_RT | INT_RX);
    let _ = uart.read(IMSC, 2);
    uart.write(IMSC, 2, INT_RT | INT_RX);
    // pl011_startup: IFLS, then CR.
    uart.write(IFLS, 2, 0x12);
    uart.write(CR, 2, CR_UARTEN | CR_RXE | CR_TXE);
    // pl011_set_termios: divisors, then LCR_H with FEN.
    uart.write(IBRD, 2, 13);
    uart.write(FBRD, 2, 1);
    uart.write(LCR_H, 2, 0x60 | LCR_H_FEN);
    // pl011_enable_interrupts: clear RX/RT, drain, unmask RX and RT.
    uart.write(ICR, 2, INT_RT | INT_RX);
    while uart.read(FR, 2) & FR_RXFE == 0 {
        let _ = uart.read(DR, 2);
    }
    uart.write(IMSC, 2, INT_RT | INT_RX);
    uart
}

/// What `pl011_int` does: returns the bytes received.
fn linux_interrupt(uart: &mut Pl011, im: u32, refill: &mut Vec<u8>) -> Vec<u8> {
    let mut received = Vec::new();
    let mut status = uart.read(RIS, 2) & im;
    let mut passes = 256;
    while status != 0 {
        uart.write(ICR, 2, status & !(INT_TX | INT_RT | INT_RX));
        if status & (INT_RT | INT_RX) != 0 {
            while uart.read(FR, 2) & FR_RXFE == 0 {
                received.push(uart.read(DR, 2) as u8);
            }
        }
        if status & INT_TX != 0 {
            for byte in refill.drain(..refill.len().min(8)) {
                uart.write(DR, 2, byte.into());
            }
        }
        passes -= 1;
        if passes == 0 {
            break;
        }
        status = uart.read(RIS, 2) & im;
    }
    received
}

#[test]
fn resets_as_the_trm_says() {
    let mut uart = Pl011::new();
    assert_eq!(uart.read(FR, 4), FR_TXFE | FR_RXFE);
    assert_eq!(uart.read(CR, 4), CR_RXE | CR_TXE);
    assert_eq!(uart.read(IFLS, 4), 0x12);
    assert_eq!(uart.read(IMSC, 4), 0);
    assert_eq!(uart.read(RIS, 4), 0);
    assert_eq!(uart.read(LCR_H, 4), 0);
    assert!(!uart.interrupt_level());
}

#[test]
fn primecell_ids_probe_as_amba_does() {
    let mut uart = Pl011::new();
    // amba_read_periphid: eight words at size - 0x20, one byte each.
    let (mut periph, mut cell) = (0u32, 0u32);
    for i in 0..4 {
        periph |= (uart.read(0xfe0 + 4 * i, 4) & 0xff) << (8 * i);
        cell |= (uart.read(0xff0 + 4 * i, 4) & 0xff) << (8 * i);
    }
    assert_eq!(cell, 0xb105_f00d);
    assert_eq!(periph, 0x0014_1011);
    // Part number 0x011 (PL011), designer 0x41 (Arm), revision 1.
    assert_eq!(periph & 0xfff, 0x011);
    assert_eq!((periph >> 12) & 0xff, 0x41);
    assert_eq!((periph >> 20) & 0xf, 1);
    // 16-bit reads see the same.
    assert_eq!(uart.read(0xffc, 2), 0xb1);
}

#[test]
fn transmits_instantly_with_bytes_and_halfwords() {
    let mut uart = Pl011::new();
    // earlycon writes single bytes; the driver proper writes halfwords.
    uart.write(DR, 1, u32::from(b'o'));
    uart.write(DR, 2, u32::from(b'k'));
    uart.write(DR, 4, 0x0a | 0xff00);
    assert_eq!(uart.take_output(), b"ok\n");
    assert!(uart.take_output().is_empty());
    assert_eq!(uart.read(FR, 2) & (FR_TXFF | FR_BUSY), 0);
    assert_ne!(uart.read(FR, 2) & FR_TXFE, 0);
}

#[test]
fn a_sink_gets_the_bytes_instead() {
    let mut uart = Pl011::new();
    let mut seen = Vec::new();
    uart.write_with(DR, 2, u32::from(b'x'), |byte| seen.push(byte));
    assert_eq!(seen, b"x");
    assert!(uart.take_output().is_empty());
}

#[test]
fn untaken_output_is_bounded_and_counted() {
    let mut uart = Pl011::new();
    for _ in 0..OUTPUT_LIMIT + 10 {
        uart.write(DR, 1, u32::from(b'.'));
    }
    assert_eq!(uart.dropped_output(), 10);
    assert_eq!(uart.take_output().len(), OUTPUT_LIMIT);
}

#[test]
fn every_transmitted_byte_raises_txis_until_icr() {
    let mut uart = linux_started();
    assert_eq!(uart.read(RIS, 2) & INT_TX, 0);
    uart.write(DR, 2, u32::from(b'a'));
    assert_ne!(uart.read(RIS, 2) & INT_TX, 0);
    // Masked: no interrupt.
    assert!(!uart.interrupt_level());
    uart.write(IMSC, 2, INT_RX | INT_RT | INT_TX);
    assert!(uart.interrupt_level());
    assert_eq!(uart.read(MIS, 2), INT_TX);
    uart.write(ICR, 2, INT_TX);
    assert!(!uart.interrupt_level());
}

#[test]
fn linux_refills_from_its_tx_interrupt() {
    let mut uart = linux_started();
    let mut pending: Vec<u8> = (0..40).collect();
    // pl011_start_tx_pio with a stubborn FIFO: it sends some, then unmasks TXIM.
    for byte in pending.drain(..8) {
        uart.write(DR, 2, byte.into());
    }
    let im = INT_RX | INT_RT | INT_TX;
    uart.write(IMSC, 2, im);
    assert!(uart.interrupt_level());
    // Each interrupt sends 8 more, until the buffer is empty and pl011_stop_tx masks TXIM.
    while !pending.is_empty() {
        assert!(uart.interrupt_level());
        let received = linux_interrupt(&mut uart, im, &mut pending);
        assert!(received.is_empty());
    }
    uart.write(IMSC, 2, INT_RX | INT_RT);
    assert!(!uart.interrupt_level());
    assert_eq!(uart.take_output(), (0..40).collect::<Vec<u8>>());
}

#[test]
fn receives_into_a_32_byte_fifo_with_fen() {
    let mut uart = linux_started();
    let input: Vec<u8> = (0..40).collect();
    assert_eq!(uart.input_room(), FIFO_DEPTH);
    assert_eq!(uart.push_input(&input), FIFO_DEPTH);
    assert_eq!(uart.push_input(&input[FIFO_DEPTH..]), 0);
    assert_eq!(uart.read(FR, 2) & (FR_RXFF | FR_RXFE), FR_RXFF);
    assert!(uart.interrupt_level());
    assert_eq!(uart.read(MIS, 2), INT_RX | INT_RT);
    let received = linux_interrupt(&mut uart, INT_RX | INT_RT, &mut Vec::new());
    assert_eq!(received, &input[..FIFO_DEPTH]);
    assert!(!uart.interrupt_level());
    assert_eq!(uart.read(RIS, 2) & (INT_RX | INT_RT), 0);
    assert_eq!(uart.read(FR, 2) & (FR_RXFF | FR_RXFE), FR_RXFE);
    // The rest goes in after.
    assert_eq!(uart.push_input(&input[FIFO_DEPTH..]), 8);
    assert_eq!(
        linux_interrupt(&mut uart, INT_RX | INT_RT, &mut Vec::new()),
        &input[FIFO_DEPTH..]
    );
}

#[test]
fn holds_one_byte_without_fifos() {
    let mut uart = Pl011::new();
    assert_eq!(uart.push_input(b"ab"), 1);
    assert_eq!(uart.input_room(), 0);
    assert_eq!(uart.read(FR, 4) & (FR_RXFF | FR_RXFE), FR_RXFF);
    assert_eq!(uart.read(DR, 4), u32::from(b'a'));
    assert_eq!(uart.push_input(b"b"), 1);
    assert_eq!(uart.read(DR, 4), u32::from(b'b'));
    // An empty FIFO reads 0.
    assert_eq!(uart.read(DR, 4), 0);
}

#[test]
fn icr_clears_receive_interrupts_until_more_data_arrives() {
    let mut uart = linux_started();
    uart.push_input(b"xy");
    uart.write(ICR, 2, INT_RX | INT_RT);
    assert!(!uart.interrupt_level());
    uart.push_input(b"z");
    assert!(uart.interrupt_level());
}

#[test]
fn toggling_fen_empties_the_fifo() {
    let mut uart = linux_started();
    uart.push_input(b"abc");
    uart.write(LCR_H, 2, 0x60);
    assert_ne!(uart.read(FR, 2) & FR_RXFE, 0);
    assert!(!uart.interrupt_level());
    // Rewriting the same FEN keeps the data.
    uart.write(LCR_H, 2, 0x60 | LCR_H_FEN);
    uart.push_input(b"abc");
    uart.write(LCR_H, 2, 0x70 | LCR_H_FEN);
    assert_eq!(uart.read(DR, 2), u32::from(b'a'));
}

#[test]
fn loopback_sends_output_to_input() {
    let mut uart = linux_started();
    uart.write(CR, 2, CR_UARTEN | CR_RXE | CR_TXE | CR_LBE);
    assert_eq!(uart.push_input(b"outside"), 0);
    assert_eq!(uart.input_room(), 0);
    uart.write(DR, 2, u32::from(b'L'));
    assert!(uart.take_output().is_empty());
    assert_eq!(uart.read(DR, 2), u32::from(b'L'));
}

#[test]
fn stores_configuration_registers_with_their_widths() {
    let mut uart = Pl011::new();
    for (register, written, read) in [
        (ILPR, 0xffff_ffff, 0xff),
        (IBRD, 0xffff_ffff, 0xffff),
        (FBRD, 0xffff_ffff, 0x3f),
        (LCR_H, 0xffff_ffff, 0xff),
        (CR, 0xffff_ffff, 0xffff),
        (IFLS, 0xffff_ffff, 0x3f),
        (IMSC, 0xffff_ffff, 0x7ff),
        (DMACR, 0xffff_ffff, 0x7),
    ] {
        uart.write(register, 4, written);
        assert_eq!(uart.read(register, 4), read, "{register:#x}");
    }
    // Read-only and write-only registers.
    uart.write(FR, 4, 0);
    assert_eq!(uart.read(FR, 4) & FR_TXFE, FR_TXFE);
    uart.write(RIS, 4, 0x7ff);
    uart.write(MIS, 4, 0x7ff);
    assert_eq!(uart.read(RIS, 4), 0);
    assert_eq!(uart.read(ICR, 4), 0);
    uart.write(RSR_ECR, 4, 0xff);
    assert_eq!(uart.read(RSR_ECR, 4), 0);
}

#[test]
fn narrow_accesses_inside_a_register() {
    let mut uart = Pl011::new();
    uart.write(IBRD, 4, 0x1234);
    assert_eq!(uart.read(IBRD + 1, 1), 0x12);
    assert_eq!(uart.read(IBRD, 1), 0x34);
    // A write inside a register is ignored.
    uart.write(IBRD + 1, 1, 0xff);
    assert_eq!(uart.read(IBRD, 4), 0x1234);
    // A 16-bit write replaces the whole register with its low half.
    uart.write(IBRD, 2, 0xabcd_5678);
    assert_eq!(uart.read(IBRD, 4), 0x5678);
    // Reading DR's upper byte does not take a byte from the FIFO.
    uart.push_input(b"q");
    assert_eq!(uart.read(DR + 1, 1), 0);
    assert_eq!(uart.read(DR, 2), u32::from(b'q'));
}

#[test]
fn unknown_offsets_and_sizes_do_nothing() {
    let mut uart = Pl011::new();
    for offset in [0x008, 0x01c, 0x04c, 0x100, 0xfdc, 0x1000, u64::MAX] {
        uart.write(offset, 4, u32::MAX);
        assert_eq!(uart.read(offset, 4), 0, "{offset:#x}");
    }
    uart.write(DR, 8, u32::from(b'x'));
    uart.write(DR, 3, u32::from(b'x'));
    uart.write(DR, 0, u32::from(b'x'));
    assert!(uart.take_output().is_empty());
    uart.push_input(b"a");
    assert_eq!(uart.read(DR, 8), 0);
    assert_eq!(uart.read(FR, 8), 0);
    assert_eq!(uart.read(DR, 1), u32::from(b'a'));
}

#[test]
fn reset_forgets_everything() {
    let mut uart = linux_started();
    uart.push_input(b"abc");
    uart.write(DR, 2, 1);
    uart.reset();
    assert_eq!(uart.read(FR, 4), FR_TXFE | FR_RXFE);
    assert!(uart.take_output().is_empty());
    assert_eq!(uart.read(LCR_H, 4), 0);
}

#[derive(Clone, Debug)]
enum Op {
    Read(u64, u8),
    Write(u64, u8, u32),
    Push(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    let offset = prop_oneof![
        (0u64..0x13).prop_map(|i| i * 4),
        0u64..0x1100,
        Just(u64::MAX),
    ];
    let size = prop_oneof![Just(1u8), Just(2), Just(4), any::<u8>()];
    prop_oneof![
        (offset.clone(), size.clone()).prop_map(|(o, s)| Op::Read(o, s)),
        (offset, size, any::<u32>()).prop_map(|(o, s, v)| Op::Write(o, s, v)),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Push),
    ]
}

proptest! {
    #[test]
    fn random_accesses_keep_the_fifo_consistent(ops in proptest::collection::vec(op(), 0..200)) {
        let mut uart = Pl011::new();
        let mut model: Vec<u8> = vec![];
        for op in ops {
            match op {
                Op::Read(offset, size) => {
                    let popped = offset == DR && matches!(size, 1 | 2 | 4) && !model.is_empty();
                    let value = uart.read(offset, size);
                    if popped {
                        prop_assert_eq!(value, u32::from(model.remove(0)));
                    }
                }
                Op::Write(offset, size, value) => {
                    let fen_before = uart.read(LCR_H, 4) & LCR_H_FEN;
                    uart.write(offset, size, value);
                    if uart.read(LCR_H, 4) & LCR_H_FEN != fen_before {
                        model.clear();
                    }
                    if uart.read(CR, 4) & CR_LBE != 0 {
                        // Loopback may have added the byte: resynchronise from FR.
                        model.clear();
                        while uart.read(FR, 4) & FR_RXFE == 0 {
                            let _ = uart.read(DR, 4);
                        }
                    }
                }
                Op::Push(bytes) => {
                    let room = uart.input_room();
                    let taken = uart.push_input(&bytes);
                    prop_assert_eq!(taken, room.min(bytes.len()));
                    model.extend_from_slice(&bytes[..taken]);
                }
            }
            let capacity = if uart.read(LCR_H, 4) & LCR_H_FEN != 0 { FIFO_DEPTH } else { 1 };
            prop_assert!(model.len() <= capacity);
            let flags = uart.read(FR, 4);
            prop_assert_eq!(flags & FR_RXFE != 0, model.is_empty());
            prop_assert_eq!(flags & FR_RXFF != 0, model.len() == capacity);
            let ris = uart.read(RIS, 4);
            if model.is_empty() {
                prop_assert_eq!(ris & (INT_RX | INT_RT), 0);
            }
            prop_assert_eq!(uart.interrupt_level(), ris & uart.read(IMSC, 4) != 0);
        }
    }
}
